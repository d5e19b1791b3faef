#!/usr/bin/env bash
# Installs the Debian 12 packages snapback needs to build, test and
# benchmark, then the npm packages of the MCP tests (tests/mcp, from its
# lock file).  Skips apt when everything is already there, and npm when
# tests/mcp/node_modules was installed from the current lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

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
# Node.js and npm run the MCP SDK tests.  A machine may have them from
# elsewhere (a nodejs package that bundles npm); Debian's are taken only
# when the commands are missing, since both cannot be installed at once.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The MCP tests' packages, exactly as the lock file pins them.  The stamp
# holds the lock file's hash, so an unchanged lock file costs nothing.
lock=tests/mcp/package-lock.json
stamp=tests/mcp/node_modules/.snapback-lock-sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "deps: npm ci in tests/mcp" >&2
  (cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
