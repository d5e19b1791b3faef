#!/usr/bin/env bash
# Installs the dependencies, builds snapback in release mode and runs
# snapbackd in the foreground on 127.0.0.1:8000, with the documents of
# `users` keyed by their "email" field.  Extra arguments go to snapbackd
# (./scripts/run.sh --help lists them).  Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-release -j"$(nproc)" --target snapbackd
exec ./build-release/server/snapbackd --key users=email "$@"
