#!/usr/bin/env bash
# Installs the Debian 12 packages snapback needs to build, test and
# benchmark.  Skips apt entirely when everything is already there.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libjemalloc-dev liburcu-dev libxxhash-dev libcmocka-dev libbenchmark-dev
  libjansson-dev libh2o-evloop-dev libssl-dev zlib1g-dev
  curl python3 procps wrk
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
