#!/usr/bin/env bash
# Builds the libFuzzer harness over snapbackd's request handling (and, in
# the same clang ASan + UBSan build, the unit tests) and runs it for SECONDS
# (default 60); --build-only stops after the build.  New inputs go to a scratch corpus; the seeds in
# tests/fuzz/corpus are only read.  A crash leaves crash-* in build-fuzz/ and
# makes this script fail; docs/fuzzing.md says how to turn it into a test.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}

CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug \
  -DSNAPBACK_FUZZ=ON -DSNAPBACK_SANITIZE=address -DSNAPBACK_WERROR=ON -DSNAPBACK_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)"
[ "$SECONDS_TO_RUN" = --build-only ] && exit 0
mkdir -p build-fuzz/corpus
cd build-fuzz
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$PWD/../tests/lsan.supp" \
  ./tests/fuzz/fuzz_api -max_total_time="$SECONDS_TO_RUN" -max_len=4096 \
  -print_final_stats=1 corpus ../tests/fuzz/corpus
