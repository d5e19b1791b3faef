#!/usr/bin/env bash
# Installs the dependencies, then builds and runs every test: a release
# build with warnings as errors, an AddressSanitizer + UBSan build and a
# ThreadSanitizer build, each running the whole ctest suite; a clang
# ASan + UBSan build running the unit tests and the libFuzzer harness for a
# bounded minute; the embedding example built against the installed library
# through pkg-config; each benchmark once, briefly, and the side-by-side
# comparison in its smoke mode, so none of them rots (no timing is checked);
# and the formatting check.
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

echo "== formatting (clang-format, .clang-format files)"
git ls-files '*.c' '*.h' '*.cc' | xargs clang-format --dry-run --Werror

echo "== release build and tests"
build build-release -DCMAKE_BUILD_TYPE=Release
(cd build-release && ctest --output-on-failure -j"$JOBS")

echo "== AddressSanitizer + UBSan"
build build-asan -DCMAKE_BUILD_TYPE=Debug -DSNAPBACK_SANITIZE=address -DSNAPBACK_BENCH=OFF
(cd build-asan && ctest --output-on-failure -j"$JOBS")

echo "== ThreadSanitizer"
build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNAPBACK_SANITIZE=thread -DSNAPBACK_BENCH=OFF
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --output-on-failure -j"$JOBS")

echo "== clang ASan + UBSan: unit tests, then the fuzzer for ${FUZZ_SECONDS:-60} s"
./scripts/fuzz.sh --build-only
(cd build-fuzz && ctest --output-on-failure -R '^test_')
./scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

echo "== install and embed through pkg-config"
PREFIX=$(mktemp -d)
trap 'rm -rf "$PREFIX"' EXIT
cmake --install build-release --prefix "$PREFIX" >/dev/null
PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig:$PREFIX/lib/x86_64-linux-gnu/pkgconfig" \
  sh -c 'cc -std=c11 -Wall -Wextra -Werror -o "$1/embed" examples/embed.c $(pkg-config --cflags --libs snapback)' _ "$PREFIX"
LD_LIBRARY_PATH="$PREFIX/lib:$PREFIX/lib/x86_64-linux-gnu" "$PREFIX/embed" | grep -q '^jose@email.com rev=3 {"name":"José","email":"jose@email.com"}$'
echo "embedding example: ok"

echo "== benchmarks, smoke run"
./bench/run-core.sh --brief build-release/bench
./build-release/bench/recovery_bench "$PREFIX/recovery" 20000
./bench/changeset-bench.py build-release 1 --smoke

echo "== side-by-side comparison with etcd, Redis, the prototype and nginx, smoke run"
SNAPBACKD="$ROOT/build-release/server/snapbackd" SNAPBACKD_OPTS="--threads 2 --in-memory" \
  ./bench/compare --smoke

echo "all tests passed"
