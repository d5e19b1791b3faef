#!/usr/bin/env bash
# http-bench.sh - snapbackd under wrk on loopback, next to nginx answering a
# fixed body of the same size: nginx is the practical HTTP limit of the
# machine, so the ratios are what to read, not the absolute figures.
#
# Usage: bench/http-bench.sh [BUILD_DIR] [ROUNDS] [SECONDS]
#   defaults: build-release 3 10.  SNAPBACKD_OPTS: snapbackd's persistence
#   options (default --in-memory; e.g. "--fsync always").  Needs wrk and
#   nginx-light (installed with apt-get when missing).  Prints one table of
#   medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-release}
ROUNDS=${2:-3}
SECS=${3:-10}
CONNS=${CONNS:-64}
SB_PORT=18801
NGX_PORT=18802
WORK=$(mktemp -d)
BODY='{"id":"bench","name":"'$(head -c 76 /dev/zero | tr '\0' x)'"}'  # 100 bytes

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
[ -x /usr/sbin/nginx ] || need nginx nginx-light

cleanup() {
  [ -n "${SB_PID:-}" ] && kill "$SB_PID" 2>/dev/null && wait "$SB_PID" 2>/dev/null
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# nginx: 2 workers, no access log, the same body as snapbackd's document.
mkdir -p "$WORK/tmp"
cat >"$WORK/nginx.conf" <<CONF
daemon on; worker_processes 2; pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $WORK/tmp/b; proxy_temp_path $WORK/tmp/p;
  fastcgi_temp_path $WORK/tmp/f; uwsgi_temp_path $WORK/tmp/u; scgi_temp_path $WORK/tmp/s;
  server { listen 127.0.0.1:$NGX_PORT;
    location / { default_type application/json; return 200 '$BODY'; } }
}
CONF
/usr/sbin/nginx -p "$WORK" -e "$WORK/error.log" -c "$WORK/nginx.conf"

# SNAPBACKD_OPTS picks the persistence mode; by default the store is kept
# in memory, to measure the HTTP path alone (docs/benchmarks.md has the
# durable figures too).
# shellcheck disable=SC2086 # a list of options on purpose
"$BUILD/server/snapbackd" --listen 127.0.0.1:$SB_PORT --data-dir "$WORK/data" \
  ${SNAPBACKD_OPTS:---in-memory} 2>"$WORK/snapbackd.log" &
SB_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$SB_PORT/_health" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT -H 'Content-Type: application/json' -d "$BODY" \
  "http://127.0.0.1:$SB_PORT/bench/bench" >/dev/null
# The rollback scenario's documents, 16 versions each (see put-rollback.lua).
urls=()
for v in $(seq 16); do for d in $(seq 0 63); do urls+=("http://127.0.0.1:$SB_PORT/bench/rb-$d"); done; done
curl -sf -X PUT -H 'Content-Type: application/json' -d '{"name":"seed"}' "${urls[@]}" >/dev/null

SB=http://127.0.0.1:$SB_PORT
run() { # name url [script]
  local out rps
  if [ -n "${3:-}" ]; then
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -s "bench/http/$3" "$2")
  else
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "$2")
  fi
  # Only put_rollback may see refusals: when two connections reorder a
  # pair, two rollbacks meet and the second may find its target trimmed
  # (409 history_exhausted).  Their share is printed with the table.
  local bad total
  bad=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  total=$(echo "$out" | awk '/requests in/ {print $1}')
  if [ -n "$bad" ] && [ "$1" != put_rollback ]; then
    echo "$1: non-2xx answers:" >&2; echo "$out" >&2; exit 1
  fi
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  echo "$1 $rps ${bad:-0} $total" >>"$WORK/results"
}

for r in $(seq "$ROUNDS"); do
  echo "round $r/$ROUNDS" >&2
  run nginx "http://127.0.0.1:$NGX_PORT/"
  run get "$SB/bench/bench"
  run put "$SB/bench/bench" put.lua
  run put_rollback "$SB/" put-rollback.lua
done

median() { grep "^$1 " "$WORK/results" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
NGX=$(median nginx)
printf '%-34s %12s %14s\n' scenario "req/s (median)" "ratio to nginx"
printf '%-34s %12.0f %14s\n' "nginx fixed 100-byte body" "$NGX" 1.00
for s in get put put_rollback; do
  m=$(median "$s")
  printf '%-34s %12.0f %14.2f\n' "snapbackd $s" "$m" "$(awk -v a="$m" -v b="$NGX" 'BEGIN {print a / b}')"
done
awk '$1 == "put_rollback" {b += $3; t += $4} END {if (t) printf "put_rollback: %.3f%% of answers were 409 history_exhausted\n", 100 * b / t}' "$WORK/results"
echo "(wrk -t2 -c$CONNS -d${SECS}s, $ROUNDS rounds alternating, $(nproc) cores, $(uname -r))"
