#!/usr/bin/env python3
"""changeset-bench.py - change sets and batches of snapbackd, over HTTP.

Usage: bench/changeset-bench.py [BUILD_DIR] [ROUNDS] [--smoke]
  defaults: build-release 3.  Needs wrk (scripts/deps.sh installs it).  Starts its own snapbackd on loopback (--in-memory, 2 threads)
  and prints one table of medians:

  - batch: POST /_batch of 100 puts, against the same 100 puts sent one by
    one on one keep-alive connection (the baseline of the ratio);
  - change-set rollback of 1,000 and of 100,000 documents: the time of the
    POST /_changesets/{id}/rollback request, seen by the client, and the
    same for its dry run;
  - reads during rollbacks: wrk GETs of one document for a few seconds
    while change sets of 100,000 documents are rolled back one after the
    other, against the same wrk run with nothing else going on.

--smoke runs each scenario once with small sizes, for CI: the figures mean
nothing then, but the script and the endpoints it uses cannot rot.
"""
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
SMOKE = "--smoke" in sys.argv
BUILD = ARGS[0] if ARGS else "build-release"
ROUNDS = 1 if SMOKE else int(ARGS[1]) if len(ARGS) > 1 else 3
BIG = 2_000 if SMOKE else 100_000
SMALL = 100 if SMOKE else 1_000
WRK_SECS = 1 if SMOKE else 5
BATCH_MAX = 1000  # documented limit of POST /_batch


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.conn.request(method, path, data, h)
        r = self.conn.getresponse()
        payload = r.read()
        return r.status, payload


def expect(status, payload, want, what):
    if status != want:
        sys.exit("%s: %d %s" % (what, status, payload[:300]))


def doc(i, text):
    return {"id": "p%d" % i, "description": text + " " + "x" * 120}


def write_docs(c, n, change_set, text, first=0):
    """Puts documents first..first+n-1 under one change set, in batches."""
    for lo in range(first, first + n, BATCH_MAX):
        ops = [{"op": "put", "collection": "products", "id": "p%d" % i,
                "document": doc(i, text)}
               for i in range(lo, min(first + n, lo + BATCH_MAX))]
        st, body = c.request("POST", "/_batch", ops, {"X-Change-Set": change_set})
        expect(st, body, 200, "batch")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_batch(c, rounds):
    ops = [{"op": "put", "collection": "batch", "id": "b%d" % i,
            "document": {"id": "b%d" % i, "n": i}} for i in range(100)]
    body = json.dumps(ops).encode()
    batch, single = [], []
    for _ in range(rounds):
        batch.append(timed(lambda: expect(*c.request("POST", "/_batch", body), 200, "batch")))

        def singles():
            for op in ops:
                st, b = c.request("PUT", "/batch/" + op["id"], op["document"])
                expect(st, b, 200, "put")
        single.append(timed(singles))
    return statistics.median(batch), statistics.median(single)


def bench_rollback(c, n, rounds, tag):
    real, dry = [], []
    for r in range(rounds):
        cs = "bench-%s-%d" % (tag, r)
        write_docs(c, n, cs, "rewritten %d" % r)
        dry.append(timed(lambda: expect(*c.request(
            "POST", "/_changesets/%s/rollback?dry_run=true" % cs), 200, "dry run")))
        real.append(timed(lambda: expect(*c.request(
            "POST", "/_changesets/%s/rollback" % cs,
            headers={"X-Change-Set": "undo-" + cs}), 200, "rollback")))
    return statistics.median(real), statistics.median(dry)


def wrk_get(port):
    out = subprocess.run(
        ["wrk", "-t1", "-c32", "-d%ds" % WRK_SECS,
         "http://127.0.0.1:%d/products/p1" % port],
        check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec"):
            return float(line.split()[1])
    sys.exit("wrk printed no rate:\n" + out)


def bench_reads(port, rounds):
    """wrk alone, then wrk while 100,000-document change sets are rolled
    back and forth (each rollback's own change set is the next one undone)."""
    alone, during, done = [], [], []
    for r in range(rounds):
        alone.append(wrk_get(port))
        stop = threading.Event()

        def churn():
            c = Client(port)
            target = "reads-%d" % r
            write_docs(c, BIG, target, "churn %d" % r)
            ready.set()
            k = 0
            while not stop.is_set():
                undo = "reads-%d-undo-%d" % (r, k)
                expect(*c.request("POST", "/_changesets/%s/rollback" % target,
                                  headers={"X-Change-Set": undo}), 200, "rollback")
                target, k = undo, k + 1
            done.append(k)
        ready = threading.Event()
        t = threading.Thread(target=churn)
        t.start()
        ready.wait()
        during.append(wrk_get(port))
        stop.set()
        t.join()
    return statistics.median(alone), statistics.median(during), min(done)


def main():
    if shutil.which("wrk") is None:
        sys.exit("changeset-bench: wrk is missing; scripts/deps.sh installs it")
    port = free_port()
    work = tempfile.mkdtemp()
    log = open(os.path.join(work, "snapbackd.log"), "w")
    srv = subprocess.Popen(
        [os.path.join(BUILD, "server", "snapbackd"), "--listen",
         "127.0.0.1:%d" % port, "--in-memory", "--threads", "2"],
        stderr=log)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        c = Client(port)
        write_docs(c, BIG, "seed", "original")
        b, s = bench_batch(c, 5 * ROUNDS)
        small, small_dry = bench_rollback(c, SMALL, ROUNDS, "small")
        big, big_dry = bench_rollback(c, BIG, ROUNDS, "big")
        alone, during, rollbacks = bench_reads(port, ROUNDS)
    finally:
        srv.terminate()
        srv.wait()
        log.close()
        shutil.rmtree(work)

    print("%-52s %12s %10s" % ("scenario (median)", "time", "ratio"))
    print("%-52s %10.2f ms %10s" % ("POST /_batch of 100 puts", b * 1e3, "%.2f" % (b / s)))
    print("%-52s %10.2f ms %10s" % ("the same 100 PUTs one by one (baseline)", s * 1e3, "1.00"))
    print("%-52s %10.2f ms" % ("change-set rollback of %d documents" % SMALL, small * 1e3))
    print("%-52s %10.2f ms" % ("  its dry run", small_dry * 1e3))
    print("%-52s %10.2f ms" % ("change-set rollback of %d documents" % BIG, big * 1e3))
    print("%-52s %10.2f ms" % ("  its dry run", big_dry * 1e3))
    print("%-52s %9.0f/s %10s" % ("GET, nothing else running (baseline)", alone, "1.00"))
    print("%-52s %9.0f/s %10s" % ("GET during %d-document rollbacks" % BIG, during,
                                  "%.2f" % (during / alone)))
    print("(%d rounds; at least %d rollbacks ran during each read run; wrk -t1 -c32 -d%ds;"
          " %d cores, %s)" % (ROUNDS, rollbacks, WRK_SECS, os.cpu_count(), os.uname().release))
    if rollbacks == 0:
        sys.exit("no rollback completed during a read run: lengthen it")


if __name__ == "__main__":
    main()
