#!/usr/bin/env bash
# durability-bench.sh - acknowledged writes per second of snapbackd with its
# log on disk: --fsync always at 1, 16 and 64 concurrent clients (group
# commit is what lets many clients beat one), batch and never at 64; Redis
# with appendonly yes / appendfsync always at the same concurrency as the
# reference; and the time to recover 1 million logged versions.
#
# Usage: bench/durability-bench.sh [BUILD_DIR] [SECONDS]
#   defaults: build-release 5.  Needs wrk and redis-server (apt-get installs
#   them when missing).  The data directories live under $TMPDIR (/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
SECS=${2:-5}
PORT=18811
RPORT=18812
WORK=$(mktemp -d)

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need redis-server redis-server

cleanup() {
  [ -n "${SB_PID:-}" ] && kill "$SB_PID" 2>/dev/null && wait "$SB_PID" 2>/dev/null
  [ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

sb_run() { # mode clients
  rm -rf "$WORK/data"
  "$BUILD/server/snapbackd" --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --fsync "$1" \
    --threads 2 2>"$WORK/sb.log" &
  SB_PID=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/_health" >/dev/null && break; sleep 0.1; done
  local t=2; [ "$2" -lt 2 ] && t=1
  local out
  out=$(wrk -t$t -c"$2" -d"${SECS}s" -s bench/http/put.lua "http://127.0.0.1:$PORT/bench/bench")
  if echo "$out" | grep -q Non-2xx; then echo "$out" >&2; exit 1; fi
  printf '%-40s %10.0f\n' "snapbackd --fsync $1, $2 clients" \
    "$(echo "$out" | awk '/^Requests\/sec/ {print $2}')"
  kill "$SB_PID"; wait "$SB_PID" || true; SB_PID=
}

redis_run() { # clients
  printf '%-40s %10.0f\n' "redis appendfsync always, $1 clients" \
    "$(redis-benchmark -p $RPORT -q -t set -d 100 -c "$1" -n $((1000 * $1 + 4000)) \
        | tr '\r' '\n' | awk '/^SET: [0-9.]+ requests per second/ {v = $2} END {print v}')"
}

printf '%-40s %10s\n' "acknowledged writes (100-byte PUT/SET)" "per second"
for c in 1 16 64; do sb_run always $c; done
sb_run batch 64
sb_run never 64

mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port $RPORT --dir "$WORK/redis" --save '' \
  --appendonly yes --appendfsync always --daemonize yes --pidfile "$WORK/redis.pid" \
  --logfile "$WORK/redis/log" >/dev/null
for _ in $(seq 50); do redis-cli -p $RPORT ping >/dev/null 2>&1 && break; sleep 0.1; done
for c in 1 16 64; do redis_run $c; done

"$BUILD/bench/recovery_bench" "$WORK/recovery" 1000000
echo "($(nproc) cores, $(uname -r), $(df -T "$WORK" | awk 'NR==2 {print $2}') on $(df "$WORK" | awk 'NR==2 {print $1}'))"
