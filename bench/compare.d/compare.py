#!/usr/bin/env python3
"""compare.py - the helpers of bench/compare that are easier in Python.

  compare.py http HOST:PORT < TSV     request lines -> drive.c records (HTTP)
  compare.py resp < TSV               command lines -> drive.c records (RESP)
  compare.py fill KEYS VERSIONS BYTES PATH_PREFIX
                                      TSV of the memory fill: version 1 of every
                                      key, then version 2, ... (PUT, JSON values
                                      of exactly BYTES bytes)
  compare.py value I V BYTES          one of those values
  compare.py json FIELD.PATH          a field of the JSON document on stdin
  compare.py body100 TEXT             {"name":"TEXT..."} padded to 100 bytes
  compare.py job SYSTEM PHASE ROUND [REV [SHA...]]
                                      TSV of scenario 5 (1000 keys of one job)
  compare.py job-check SYSTEM PORT    verify the 1000 keys hold their seed
  compare.py etcd-cycle PORT          seed scenario 4's etcd keys, print its TSV
  compare.py report RESULTS OUT_DIR LABEL
                                      medians, ratios: table on stdout,
                                      OUT_DIR/compare.csv, OUT_DIR/compare.dat

TSV lines for `http`: GROUP, METHOD, PATH, BODY (may be empty), tab-separated,
then optionally extra header lines, "|"-separated.
For `resp`: GROUP, then the command's arguments. GROUP is the cycle a
connection replays in drive.c's loop mode (0 for everything otherwise).
"""
import base64
import http.client
import json
import socket
import statistics
import sys

JOB_KEYS = 1000
ETCD_TXN_OPS = 125  # etcd 3.4 refuses a txn of more than --max-txn-ops (128)


def record(group, data):
    return b"%d %d\n%s" % (group, len(data), data)


def cmd_http(hostport):
    out = sys.stdout.buffer
    host = hostport.encode()
    for line in sys.stdin.buffer:
        # GROUP METHOD PATH BODY [HEADERS]: HEADERS, "|"-separated.
        group, method, path, body, *extra = line.rstrip(b"\n").split(b"\t", 4)
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, host)
        for h in extra[0].split(b"|") if extra else []:
            head += h + b"\r\n"
        if body:
            head += b"Content-Type: application/json\r\n"
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        out.write(record(int(group), head + body))


def cmd_resp():
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        group, *args = line.rstrip(b"\n").split(b"\t")
        msg = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        out.write(record(int(group), msg))


# The memory fill's values: the same shape and size as the peers' fillers
# use, so that every system holds the same bytes.
def value(i, v, size):
    head = '{"email":"user%06d@example.com","version":%d,"name":"' % (i, v)
    pad = size - len(head) - 2
    if pad < 0:
        sys.exit("value size too small")
    return head + "x" * pad + '"}'


def cmd_fill(keys, versions, size, prefix):
    out = sys.stdout
    for v in range(1, int(versions) + 1):
        out.write("".join("0\tPUT\t%suser%06d@example.com\t%s\n" % (prefix, i, value(i, v, int(size)))
                          for i in range(int(keys))))


def cmd_json(path):
    doc = json.load(sys.stdin)
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    print(doc)


def body100(text):
    return '{"name":"%s%s"}' % (text, "x" * (100 - 11 - len(text)))


def b64(text):
    return base64.b64encode(text.encode()).decode()


def etcd_put(key, val):
    return '{"key":"%s","value":"%s"}' % (b64(key), b64(val))


# Scenario 5. Key i of the job holds seed(i); the job of round r writes
# job(i, r) over it; undoing the job must bring back seed(i) everywhere.
def seed(i):
    return body100("job-%04d-seed-" % i)


def job(i, r):
    return body100("job-%04d-round-%d-" % (i, r))


def job_key(system, i):
    return {"snapbackd": "/bench/job-%04d" % i, "etcd": "job/%04d" % i,
            "redis": "job:%04d" % i, "prototype": "job-%04d@example.com" % i}[system]


def cmd_job(system, phase, rnd, rev="0", *shas):
    rnd = int(rnd)
    out = []
    keys = range(JOB_KEYS)
    if system == "snapbackd":
        # The job's writes name its change set; the undo is one request.
        if phase == "seed":
            out = ["0\tPUT\t%s\t%s" % (job_key(system, i), seed(i)) for i in keys]
        elif phase == "write":
            out = ["0\tPUT\t%s\t%s\tX-Change-Set: job-round-%d" % (job_key(system, i), job(i, rnd), rnd)
                   for i in keys]
        elif phase == "undo":
            out = ["0\tPOST\t/_changesets/job-round-%d/rollback\t" % rnd]
    elif system == "prototype":
        if phase == "seed":
            out = ['0\tPOST\t/users\t{"name":"%s","email":"%s"}'
                   % (json.loads(seed(i))["name"], job_key(system, i)) for i in keys]
        elif phase == "write":
            out = ["0\tPUT\t/users/%s\t%s" % (job_key(system, i), job(i, rnd)) for i in keys]
        elif phase == "undo":
            out = ["0\tPOST\t/users/%s/rollback\t" % job_key(system, i) for i in keys]
    elif system == "etcd":
        if phase in ("seed", "write"):
            out = ["0\tPOST\t/v3/kv/put\t%s" % etcd_put(job_key(system, i),
                                                         seed(i) if phase == "seed" else job(i, rnd))
                   for i in keys]
        elif phase == "undo-read":
            # What a client does per key: read the key as of the revision
            # before the job (then write that value back: undo-write).
            out = ['0\tPOST\t/v3/kv/range\t{"key":"%s","revision":"%s"}'
                   % (b64(job_key(system, i)), rev) for i in keys]
        elif phase == "undo-write":
            # The values are the ones undo-read returns (this script wrote
            # them), so they are not parsed out of the answers.
            out = ["0\tPOST\t/v3/kv/put\t%s" % etcd_put(job_key(system, i), seed(i)) for i in keys]
        elif phase == "batch-read":
            out = ['0\tPOST\t/v3/kv/range\t{"key":"%s","range_end":"%s","revision":"%s","limit":"%d"}'
                   % (b64("job/"), b64("job0"), rev, JOB_KEYS)]
        elif phase == "batch-write":
            for start in range(0, JOB_KEYS, ETCD_TXN_OPS):
                ops = ",".join('{"request_put":%s}' % etcd_put(job_key(system, i), seed(i))
                               for i in range(start, min(start + ETCD_TXN_OPS, JOB_KEYS)))
                out.append('0\tPOST\t/v3/kv/txn\t{"success":[%s]}' % ops)
    elif system == "redis":
        put_sha, many_sha = (shas + ("", ""))[:2]
        if phase in ("seed", "write"):
            out = ["0\tEVALSHA\t%s\t1\t%s\t%s" % (put_sha, job_key(system, i),
                                                  seed(i) if phase == "seed" else job(i, rnd))
                   for i in keys]
        elif phase == "undo":
            out = ["0\tEVALSHA\t%s\t%d\t%s" % (many_sha, JOB_KEYS,
                                              "\t".join(job_key(system, i) for i in keys))]
    if not out:
        sys.exit("job: unknown phase %s for %s" % (phase, system))
    print("\n".join(out))


def redis_call(sock, *args):
    sock.sendall(b"*%d\r\n" % len(args) +
                 b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    f = sock.makefile("rb")
    line = f.readline()
    if line.startswith(b"$"):
        n = int(line[1:])
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if line.startswith(b"-"):
        sys.exit("redis: " + line.decode().strip())
    return line[1:].strip().decode()


def cmd_job_check(system, port):
    """Every key of the job must hold its seed again; exits 1 if not."""
    port = int(port)
    got = {}
    if system == "redis":
        with socket.create_connection(("127.0.0.1", port)) as s:
            for i in range(JOB_KEYS):
                got[i] = redis_call(s, b"GET", job_key(system, i).encode())
    else:
        c = http.client.HTTPConnection("127.0.0.1", port)
        if system == "etcd":
            body = '{"key":"%s","range_end":"%s"}' % (b64("job/"), b64("job0"))
            c.request("POST", "/v3/kv/range", body)
            for kv in json.loads(c.getresponse().read())["kvs"]:
                i = int(base64.b64decode(kv["key"]).decode().split("/")[1])
                got[i] = base64.b64decode(kv["value"]).decode()
        else:
            for i in range(JOB_KEYS):
                path = job_key(system, i)
                if system == "prototype":
                    path = "/users/" + path
                c.request("GET", path)
                r = c.getresponse()
                got[i] = r.read().decode()
    bad = 0
    for i in range(JOB_KEYS):
        want = seed(i)
        have = got.get(i)
        if system == "prototype" and have:
            have = json.loads(have).get("name")
            want = json.loads(want)["name"]
        if have != want:
            if not bad:
                print("job-check %s: key %d holds %r, want %r" % (system, i, have, want),
                      file=sys.stderr)
            bad += 1
    if bad:
        sys.exit("job-check %s: %d of %d keys not restored" % (system, bad, JOB_KEYS))


def cmd_etcd_cycle(port):
    """Scenario 4 for etcd: put value A on 64 keys, remember each revision,
    and print the cycle wrk replays per key: the update (value B), then the
    rollback as an etcd user does it, a read of the key as of the revision
    that held A and a put of that value."""
    c = http.client.HTTPConnection("127.0.0.1", int(port))
    lines = []
    for k in range(64):
        key, a, b = "rb/%02d" % k, body100("rb-%02d-A-" % k), body100("rb-%02d-B-" % k)
        c.request("POST", "/v3/kv/put", etcd_put(key, a))
        rev = json.loads(c.getresponse().read())["header"]["revision"]
        lines += ["POST\t/v3/kv/put\t%s" % etcd_put(key, b),
                  'POST\t/v3/kv/range\t{"key":"%s","revision":"%s"}' % (b64(key), rev),
                  "POST\t/v3/kv/put\t%s" % etcd_put(key, a)]
    print("\n".join(lines))


# --- report -------------------------------------------------------------

SYSTEMS = ["snapbackd", "etcd", "redis", "prototype", "nginx"]
PEERS = ["etcd", "redis", "prototype", "nginx"]
CHART_LABELS = {"get": "1. read", "put": "2. update", "old": "3. read old",
                "rollback": "4. update+undo", "job": "5. undo a job"}

# scenario id -> (label, unit, higher is better)
SCENARIOS = [
    ("get", "1. read the current value", "req/s", True),
    ("put", "2. update, keeping history", "req/s", True),
    ("old", "3. read an old version", "req/s", True),
    ("rollback", "4. update + roll back one step", "pairs/s", True),
    ("job", "5. roll back 1000 keys of one job", "keys/s", True),
    ("job_ms", "5. (same) wall time", "ms", False),
    ("job_batched", "5b. same, batched where possible", "keys/s", True),
    ("mem_rss", "6. RSS, 100k keys x 8 x 200 B", "MiB", False),
    ("mem_store", "6b. store's own count", "MiB", False),
]


def cmd_report(results, out_dir, label):
    runs, notes = {}, {}
    with open(results) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            scen, system, _round, val, note = (line.rstrip("\n").split("\t") + [""])[:5]
            if val in ("", "NA"):
                notes[(scen, system)] = note
                continue
            runs.setdefault((scen, system), []).append(float(val))
            if note:
                notes[(scen, system)] = note
    med = {k: statistics.median(v) for k, v in runs.items()}

    def cell(scen, system):
        if (scen, system) in med:
            v = med[(scen, system)]
            return "%.1f" % v if v < 100 else "%.0f" % v
        return notes.get((scen, system), "")

    def ratio(scen, peer):
        a, b = med.get((scen, "snapbackd")), med.get((scen, peer))
        if a is None or b is None or b == 0:
            return ""
        return "%.2f" % (a / b)

    header = ["scenario", "unit"] + SYSTEMS + ["snapbackd/" + p for p in PEERS]
    rows = []
    for scen, name, unit, _hib in SCENARIOS:
        if not any((scen, s) in med or (scen, s) in notes for s in SYSTEMS):
            continue
        rows.append([name, unit] + [cell(scen, s) for s in SYSTEMS] +
                    [ratio(scen, p) for p in PEERS])

    with open(out_dir + "/compare.csv", "w") as f:
        f.write("# %s\n" % label)
        for r in [header] + rows:
            f.write(",".join('"%s"' % c if ("," in c or " " in c or "(" in c) else c
                             for c in r) + "\n")

    # Plain-text table: fixed columns; long notes are kept whole.
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    print("(%s; ratios are snapbackd / peer: above 1 is better for snapbackd in"
          " req/s, pairs/s, keys/s; below 1 is better in ms and MiB)" % label)
    for (scen, system), vals in sorted(runs.items()):
        if len(vals) > 1:
            print("  rounds %-12s %-10s %s" % (scen, system,
                                               " / ".join("%.0f" % v for v in vals)))

    # Chart data: throughput scenarios only, one column per system;
    # NaN for what a system cannot do (gnuplot leaves the bar out).
    with open(out_dir + "/compare.dat", "w") as f:
        f.write("scenario " + " ".join(SYSTEMS) + "\n")
        for scen, name, unit, hib in SCENARIOS:
            if not hib or scen == "job_batched":
                continue
            vals = [("%.1f" % med[(scen, s)]) if (scen, s) in med else "NaN" for s in SYSTEMS]
            f.write('"%s" %s\n' % (CHART_LABELS[scen], " ".join(vals)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "http":
        cmd_http(*args)
    elif cmd == "resp":
        cmd_resp()
    elif cmd == "fill":
        cmd_fill(*args)
    elif cmd == "value":
        print(value(int(args[0]), int(args[1]), int(args[2])))
    elif cmd == "json":
        cmd_json(*args)
    elif cmd == "body100":
        print(body100(args[0]))
    elif cmd == "job":
        cmd_job(*args)
    elif cmd == "job-check":
        cmd_job_check(*args)
    elif cmd == "etcd-cycle":
        cmd_etcd_cycle(*args)
    elif cmd == "report":
        cmd_report(*args)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
