#!/usr/bin/env bash
# Installs the dependencies, then builds and runs every test: a release
# build with warnings as errors, an AddressSanitizer + UBSan build and a
# ThreadSanitizer build, each running the whole ctest suite; the embedding
# example built against the installed library through pkg-config; and each
# benchmark once, briefly, so none of them rots (no timing is checked).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)

./scripts/deps.sh

build() { # dir, extra cmake args...
  local dir=$1; shift
  cmake -S "$ROOT" -B "$dir" -DSNAPBACK_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
}

echo "== release build and tests"
build build-release -DCMAKE_BUILD_TYPE=Release
(cd build-release && ctest --output-on-failure -j"$JOBS")

echo "== AddressSanitizer + UBSan"
build build-asan -DCMAKE_BUILD_TYPE=Debug -DSNAPBACK_SANITIZE=address -DSNAPBACK_BENCH=OFF
(cd build-asan && ctest --output-on-failure -j"$JOBS")

echo "== ThreadSanitizer"
build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPBACK_SANITIZE=thread -DSNAPBACK_BENCH=OFF
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --output-on-failure -j"$JOBS")

echo "== install and embed through pkg-config"
PREFIX=$(mktemp -d)
trap 'rm -rf "$PREFIX"' EXIT
cmake --install build-release --prefix "$PREFIX" >/dev/null
PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig:$PREFIX/lib/x86_64-linux-gnu/pkgconfig" \
  sh -c 'cc -std=c11 -Wall -Wextra -Werror -o "$1/embed" examples/embed.c $(pkg-config --cflags --libs snapback)' _ "$PREFIX"
LD_LIBRARY_PATH="$PREFIX/lib:$PREFIX/lib/x86_64-linux-gnu" "$PREFIX/embed" | grep -q '^jose@email.com rev=3 {"name":"José","email":"jose@email.com"}$'
echo "embedding example: ok"

echo "== benchmarks, smoke run"
./bench/run-core.sh --smoke build-release

echo "all tests passed"
