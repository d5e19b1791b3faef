#!/bin/sh
# Runs the core benchmarks and the memory-overhead measurement.
#
#   run-core.sh [--brief|--full] [BIN_DIR] [extra Google Benchmark flags]
#
# --brief: each benchmark for 0.01 s, a smoke test for CI; the numbers mean
#          nothing.  (Google Benchmark 1.7.1 takes --benchmark_min_time as a
#          plain number of seconds.)
# --full:  the defaults (0.5 s per benchmark), three repetitions, and the
#          medians reported; use a Release build on an otherwise idle host.
# BIN_DIR is the build's bench/ directory (default: build-bench/bench next
# to this script's parent).
#
# Both modes run every case, the change-set ones included: those
# (cs_rollback_*, get_during_cs_rollback_100k, get_beside_idle_writer_100k,
# get_beside_busy_thread_100k) build a change set over every document
# untimed before each iteration and report only the rollback's time (or the
# reader's window) as manual_time; in --brief mode they still run one whole
# iteration each, about 2 s in all.
set -eu

mode=full
case "${1:-}" in
--brief) mode=brief; shift ;;
--full) mode=full; shift ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build-bench/bench}
[ $# -gt 0 ] && shift

if [ "$mode" = brief ]; then
    flags="--benchmark_min_time=0.01"
else
    flags="--benchmark_repetitions=3 --benchmark_report_aggregates_only=true"
fi

# shellcheck disable=SC2086 # flags is a list of words on purpose
"$bin/core_bench" $flags "$@"
echo
"$bin/mem_overhead"
