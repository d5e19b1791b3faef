"""Durability of snapbackd: what it acknowledged survives restarts and crashes.

- A clean restart brings back everything a client can observe, byte for
  byte, in every fsync mode.
- A SIGKILL in the middle of a write load loses no acknowledged write
  (--fsync always), and the next server starts on whatever the crash left.
- A second server on a data directory in use is refused.
- A log damaged before its end is refused unless --repair is given; a log
  cut in its last record (a torn write) is trimmed with one warning.
- --in-memory writes no file.

Set SNAPBACK_SEED to replay the random choices of a run; the seed is printed
when the file starts.  (The crash points themselves cannot be replayed.)
"""

import http.client
import json
import os
import random
import re
import struct
import sys
import tempfile
import threading
import time
import urllib.parse

import harness
from harness import request, rev_of

LOG_NAME = "wal-0000000000000001.log"  # the first (and, for now, only) log file
RECORD_HEAD = struct.Struct("<4sIQ")  # magic "SBR1", body length, checksum
JSON = {"Content-Type": "application/json"}
SEED = int(os.environ.get("SNAPBACK_SEED", random.randrange(1 << 30)))

# The restart test: ids spread over two collections, one with its own key.
HISTORY = 4  # small, so that the rings of busy documents wrap
COLLS = {
    "users": ["u%d@x.io" % i for i in range(10)],
    "notes": ["n%d" % i for i in range(10)],
}
KEY_FIELD = {"users": "email", "notes": "id"}

# The crash test.
# Revisions jump by this much when the log was not closed cleanly
# (core/src/wal.h, WAL_CRASH_GAP).
CRASH_GAP = 1 << 32
CRASH_ITERATIONS = 20
CRASH_BUDGET = 60.0  # seconds; past it the test stops iterating and says so
CRASH_HISTORY = 65535  # the most there is: nothing acknowledged is ever trimmed
WRITERS = 4


def doc_path(coll, id_):
    return "/%s/%s" % (coll, urllib.parse.quote(id_, safe=""))


def log_records(path):
    """The (offset, size) of each record of a log file, parsed from its format."""
    with open(path, "rb") as f:
        data = f.read()
    records, at = [], 0
    while at < len(data):
        magic, body_len, _checksum = RECORD_HEAD.unpack_from(data, at)
        assert magic == b"SBR1", "no record at offset %d of %s" % (at, path)
        records.append((at, RECORD_HEAD.size + body_len))
        at += RECORD_HEAD.size + body_len
    assert at == len(data), "%s ends inside a record" % path
    return records


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def log_lines(text, level):
    return [line for line in text.splitlines() if line.startswith("level=%s " % level)]


class DurabilityTest(harness.ServerTest):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="snapback-durability-")
        self.data = os.path.join(self.tmp.name, "data")
        self.servers = []

    def tearDown(self):
        for srv in self.servers:  # a failed test may leave one running
            if srv.alive():
                srv.kill()
        self.tmp.cleanup()

    def start(self, *options):
        """A server on this test's data directory."""
        self.server = harness.Server(*options, data_dir=self.data)
        self.servers.append(self.server)
        return self.server

    def fail_with(self, msg):
        self.fail("%s (SNAPBACK_SEED=%d)%s" % (msg, SEED, self.server.stderr()))

    # ------------------------------------------------------------------
    # 1. Clean restarts

    def write_mix(self, conn, rng, state, count):
        """Makes `count` writes; checks each is given the next store revision.

        `state` carries, across calls, the last revision, which documents
        exist ("live") or were ever written, and the kinds of answers seen.
        """
        made = 0
        while made < count:
            coll = rng.choice(sorted(COLLS))
            id_ = rng.choice(COLLS[coll])
            path = doc_path(coll, id_)
            live = state["live"].get(path, False)
            # Compact, so that the stored bytes equal the sent ones; 1.50 keeps its text.
            body = '{"%s":%s,"n":%d,"price":%d.50}' % (KEY_FIELD[coll], json.dumps(id_),
                                                      state["rev"], made)
            sent, x = body, rng.random()
            if not live and x < 0.4:
                kind, r = "create", request(conn, "POST", "/" + coll, body, JSON)
                expect = (201,)
            elif not live and (x < 0.8 or path not in state["written"]):
                kind, r = "put", request(conn, "PUT", path, body, JSON)
                expect = (201,)
            elif live and x < 0.55:
                kind, r = "put", request(conn, "PUT", path, body, JSON)
                expect = (200,)
            elif live and x < 0.65:
                kind, r = "delete", request(conn, "DELETE", path)
                expect, sent = (204,), None
            elif x < 0.85:
                kind, r = "steps", request(conn, "POST", path + "/rollback",
                                           {"steps": rng.randint(1, 3)})
                expect, sent = (200, 204, 409), None
            else:
                kind, r = "to_version", request(
                    conn, "POST", path + "/rollback",
                    {"to_version": rng.randint(1, max(1, state["rev"]))})
                expect, sent = (200, 204, 409), None
            if r.status not in expect:
                self.fail_with("%s: %r, expected one of %s" % (path, r, expect))
            state["kinds"].add((kind, r.status))
            if r.status == 409:
                self.assertIsInstance(r.json().get("available"), int, r)
                continue  # nothing changed, no revision used
            if sent is not None:
                self.assertEqual(r.body, sent.encode(), "a write answers what it stored")
            self.assertEqual(rev_of(r), state["rev"] + 1, "revisions have no gaps: %r" % r)
            state["rev"] += 1
            state["live"][path] = r.status != 204
            state["written"].add(path)
            made += 1

    def snapshot(self, conn, max_rev):
        """Everything a client can observe of the store, as raw answers."""
        snap = {}

        def take(key, method, path, body=None):
            r = request(conn, method, path, body, JSON if body is not None else None)
            self.assertLess(r.status, 500, "%s %s: %r" % (method, path, r))
            snap[key] = (r.status, r.header("etag"), r.header("link"), r.body)
            return r

        for coll, ids in sorted(COLLS.items()):
            # The scan order follows a hash that is only fixed for the life of
            # one server (api.md), so the listing is kept as a sorted set of
            # documents (each document's bytes are compared by the GETs below).
            path, listed = "/%s?limit=7" % coll, []  # small pages: several of them
            while path:
                r = request(conn, "GET", path)
                self.assertEqual(r.status, 200, r)
                listed += [json.dumps(d, sort_keys=True) for d in r.json()]
                link = r.header("link")
                path = re.match(r'^<([^>]*)>; rel="next"$', link).group(1) if link else None
            self.assertEqual(len(listed), len(set(listed)), "a document listed twice")
            snap[("list", coll)] = sorted(listed)
            for id_ in ids:
                p = doc_path(coll, id_)
                take(("get", p), "GET", p)
                take(("versions", p), "GET", p + "/versions")
                # One past the last revision shows the store's revision came back.
                for rev in range(1, max_rev + 2):
                    take(("as_of", p, rev), "GET", "%s?as_of=%d" % (p, rev))
                r = take(("rollback", p), "POST", p + "/rollback", {"steps": 1000})
                self.assertIn(r.status, (404, 409), r)  # 404: never written
        return snap

    def assertSameSnapshot(self, before, after, what):
        self.assertEqual(sorted(before), sorted(after), what)
        for key in sorted(before):
            if before[key] != after[key]:
                self.fail_with("%s: %r differs:\nbefore %r\nafter  %r" % (
                    what, key, before[key], after[key]))

    def assertCleanRecovery(self, srv, records):
        """The restarted server replayed `records` records and complained of nothing."""
        log = srv.log()
        self.assertEqual(log_lines(log, "warn") + log_lines(log, "error"), [], log)
        m = re.search(r"replayed (\d+) records .* revision (\d+)", log)
        self.assertTrue(m, "no recovery line" + srv.stderr())
        self.assertEqual((int(m.group(1)), int(m.group(2))), (records, records), log)

    def round_trip(self, mode):
        options = ("--history", str(HISTORY), "--key", "users=email", "--fsync", mode)
        rng = random.Random(SEED)
        state = {"rev": 0, "live": {}, "written": set(), "kinds": set()}

        srv = self.start(*options)
        conn = srv.connect()
        # The mix must do what it is for: every kind of write, and wrapped
        # rings (an as_of answered 410 because its version was dropped). A
        # random mix can miss a rare kind, so it goes on until it has them all.
        wanted = {("create", 201), ("put", 201), ("put", 200), ("delete", 204),
                  ("steps", 200), ("steps", 409), ("to_version", 200)}
        self.write_mix(conn, rng, state, 90)
        while not wanted <= state["kinds"] and state["rev"] < 1000:
            self.write_mix(conn, rng, state, 10)
        self.assertEqual(wanted - state["kinds"], set(), "SNAPBACK_SEED=%d" % SEED)
        before = self.snapshot(conn, state["rev"])
        self.assertIn(410, [v[0] for k, v in before.items() if k[0] == "as_of"])
        conn.close()
        srv.stop()  # asserts exit status 0

        for round_ in (1, 2):
            srv = self.start(*options)
            self.assertCleanRecovery(srv, state["rev"])
            conn = srv.connect()
            after = self.snapshot(conn, state["rev"])
            self.assertSameSnapshot(before, after, "%s, restart %d" % (mode, round_))
            if round_ == 2:
                break
            # Revisions go on after the recovered ones (write_mix checks it).
            self.write_mix(conn, rng, state, 40)
            before = self.snapshot(conn, state["rev"])
            conn.close()
            srv.stop()
        conn.close()
        srv.stop()

    def test_restart_fsync_always(self):
        self.round_trip("always")

    def test_restart_fsync_batch(self):
        self.round_trip("batch")

    def test_restart_fsync_never(self):
        self.round_trip("never")

    # ------------------------------------------------------------------
    # 2. Crashes

    def crash_writer(self, srv, who, iteration, acks, errors):
        """Writes until the server dies; records every acknowledged write."""
        rng = random.Random(SEED * 1000 + iteration * WRITERS + who)
        own = ["w%d-%d" % (who, i) for i in range(3)]
        conn = srv.connect()
        n = 0
        while True:
            id_ = rng.choice(own) if rng.random() < 0.75 else rng.choice(["s0", "s1"])
            path = "/crash/" + id_
            if rng.random() < 0.2:
                method, target, body = "POST", path + "/rollback", {"steps": rng.randint(1, 2)}
                ok = (200, 204)
            else:
                body = '{"id":"%s","w":%d,"it":%d,"n":%d}' % (id_, who, iteration, n)
                method, target, ok = "PUT", path, (200, 201)
            n += 1
            try:
                r = request(conn, method, target, body, JSON)
            except (OSError, http.client.HTTPException):
                conn.close()
                return  # the server is gone; this write was never acknowledged
            if method == "PUT" and r.status in ok and r.body != body.encode():
                errors.append("PUT %s answered %r, not what was sent" % (target, r))
            if r.status in ok:
                doc = json.loads(r.body) if r.status != 204 else None
                acks.append((id_, rev_of(r), method, doc))
            elif not (method == "POST" and r.status in (404, 409)):  # nothing to undo
                errors.append("%s %s: %r" % (method, target, r))

    def check_acks(self, srv, acks, recent):
        """Every acknowledged write is in its document's history, unchanged."""
        conn = srv.connect()
        by_doc, seen = {}, set()
        for ack in acks:
            by_doc.setdefault(ack[0], []).append(ack)
        for id_, doc_acks in sorted(by_doc.items()):
            last = max(rev for _id, rev, _method, _doc in doc_acks)
            r = request(conn, "GET", "/crash/%s/versions" % id_)
            self.assertEqual(r.status, 200, "%s: %r%s" % (id_, r, srv.stderr()))
            history = r.json()
            revs = [v["version"] for v in history]
            self.assertEqual(revs, sorted(set(revs), reverse=True),
                             "%s: revisions must strictly decrease" % id_)
            self.assertFalse(seen & set(revs), "a revision in two documents")
            seen |= set(revs)
            self.assertGreaterEqual(revs[0], last, "%s lost its last write" % id_)
            cur = request(conn, "GET", "/crash/" + id_)
            self.assertIn(cur.status, (200, 404), cur)
            if cur.status == 200:
                self.assertEqual(rev_of(cur), revs[0], id_)
            by_rev = {v["version"]: v for v in history}
            for _id, rev, method, doc in doc_acks:
                v = by_rev.get(rev)
                if v is None:
                    self.fail_with("acknowledged %s of %s at %d is lost" % (method, id_, rev))
                self.assertEqual(v["doc"], doc, "%s at %d" % (id_, rev))
                self.assertEqual(v["op"] == "rollback", method == "POST", v)
        # The same, one version at a time, for the writes of the last load.
        for id_, rev, _method, doc in recent:
            r = request(conn, "GET", "/crash/%s/versions/%d" % (id_, rev))
            self.assertEqual(r.status, 200, "%s at %d: %r" % (id_, rev, r))
            self.assertEqual(r.json()["doc"], doc)
        conn.close()

    def assertRecoveredQuietly(self, srv):
        """A crash may leave at most one torn record behind, and no error;
        the revisions jump past any a lost write may have shown."""
        log = srv.log()
        self.assertEqual(log_lines(log, "error"), [], log)
        warns = log_lines(log, "warn")
        # The jump's own line says "records were dropped" too: tell the two
        # apart by the start of the message.
        torn = [w for w in warns if 'msg="recovery: dropped' in w]
        jumps = [w for w in warns if "not closed cleanly" in w]
        self.assertLessEqual(len(torn), 1, log)
        self.assertEqual(len(jumps), 1, log)
        self.assertEqual(len(warns), len(torn) + len(jumps), log)
        for line in warns:
            self.assertIn("module=store", line)

    def test_crash_keeps_acknowledged_writes(self):
        options = ("--history", str(CRASH_HISTORY), "--fsync", "always")
        rng = random.Random(SEED)
        acks, deadline, done, torn = [], time.monotonic() + CRASH_BUDGET, 0, 0
        srv = self.start(*options)
        while done < CRASH_ITERATIONS and time.monotonic() < deadline:
            # Writers run, then the server dies in the middle of their work.
            recent, errors = [], []
            threads = [threading.Thread(target=self.crash_writer,
                                        args=(srv, who, done, recent, errors))
                       for who in range(WRITERS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 0.3))
            srv.kill()
            for t in threads:
                t.join(harness.WAIT)
                self.assertFalse(t.is_alive(), "a writer hangs after the crash")
            self.assertEqual(errors, [], "unexpected answers before the crash" + srv.stderr())
            self.assertTrue(recent, "no write was acknowledged before the crash")
            self.assertEqual(log_lines(srv.log(), "error"), [], srv.stderr())
            acks += recent
            done += 1

            # The next server must start on what the crash left, and have it all.
            srv = self.start(*options)
            self.assertRecoveredQuietly(srv)
            torn += len(log_lines(srv.log(), "warn"))
            self.check_acks(srv, acks, recent)
            top = max(rev for _id, rev, _m, _d in acks)
            conn = srv.connect()
            r = request(conn, "PUT", "/crash/after", '{"n":%d}' % done, JSON)
            conn.close()
            self.assertIn(r.status, (200, 201), r)
            self.assertGreater(rev_of(r), top, "revisions must go on after a crash")

        srv.stop()
        if done < CRASH_ITERATIONS:
            self.skipTest("only %d of %d crashes fit in %.0f s (all passed; %d acknowledged "
                          "writes)" % (done, CRASH_ITERATIONS, CRASH_BUDGET, len(acks)))

    # ------------------------------------------------------------------
    # 3. One server per data directory

    def test_second_server_refused(self):
        first = self.start()
        conn = first.connect()
        self.assertEqual(request(conn, "PUT", "/c/a", '{"v":1}', JSON).status, 201)
        size = os.path.getsize(os.path.join(self.data, LOG_NAME))

        rc, err = harness.run_to_exit("--data-dir", self.data)
        self.assertNotEqual(rc, 0, err)
        self.assertIn("Another process has the data directory open.", err)
        self.assertRegex(err, r"level=error .*error=")
        self.assertEqual(os.path.getsize(os.path.join(self.data, LOG_NAME)), size,
                         "the refused server must not touch the log")

        # The first one serves on, reads and writes.
        self.assertTrue(first.alive())
        r = request(conn, "PUT", "/c/a", '{"v":2}', JSON)
        self.assertEqual((r.status, r.body), (200, b'{"v":2}'))
        self.assertEqual(request(conn, "GET", "/c/a").body, b'{"v":2}')
        conn.close()
        first.stop()

        # Once it is gone, the directory is free again.
        second = self.start()
        conn = second.connect()
        r = request(conn, "GET", "/c/a")
        self.assertEqual((r.status, r.body, rev_of(r)), (200, b'{"v":2}', 2))
        conn.close()
        second.stop()

    # ------------------------------------------------------------------
    # 4. Damaged logs

    def write_ten(self):
        """Ten creates, d0 to d9 at revisions 1 to 10; returns the log's records."""
        srv = self.start()
        conn = srv.connect()
        for i in range(10):
            r = request(conn, "PUT", "/c/d%d" % i, '{"i":%d}' % i, JSON)
            self.assertEqual((r.status, rev_of(r)), (201, i + 1), r)
        conn.close()
        srv.stop()
        records = log_records(os.path.join(self.data, LOG_NAME))
        self.assertEqual(len(records), 10)
        return records

    def assertServes(self, srv, first_n, revs=None):
        """d0 .. d(first_n - 1) exist as written, the others not at all;
        `revs` maps a document to its revision when it is not i + 1."""
        conn = srv.connect()
        listed = request(conn, "GET", "/c?limit=1000")
        self.assertEqual(listed.status, 200, listed)
        self.assertEqual(sorted(d["i"] for d in listed.json()), list(range(first_n)))
        for i in range(10):
            r = request(conn, "GET", "/c/d%d" % i)
            if i < first_n:
                self.assertEqual((r.status, r.body, rev_of(r)),
                                 (200, b'{"i":%d}' % i, (revs or {}).get(i, i + 1)))
            else:
                self.assertEqual(r.status, 404, r)
        conn.close()

    def refuse_then_repair(self, record_index):
        records = self.write_ten()
        log = os.path.join(self.data, LOG_NAME)
        start, size = records[record_index]
        flip_byte(log, start + RECORD_HEAD.size + 4)  # inside the body (its revision)

        # Intact records follow the damage: no crash does that, so no start.
        rc, err = harness.run_to_exit("--data-dir", self.data)
        self.assertEqual(rc, 1, err)
        self.assertIn(LOG_NAME, err)
        m = re.search(r"offset (\d+)", err)
        self.assertTrue(m, err)
        self.assertTrue(start <= int(m.group(1)) < start + size,
                        "offset %s is not in the damaged record [%d, %d)"
                        % (m.group(1), start, start + size))

        # --repair keeps what precedes the damaged record.
        srv = self.start("--repair")
        warns = log_lines(srv.log(), "warn")
        self.assertEqual(len(warns), 2, srv.log())
        self.assertIn("dropped", warns[0])
        self.assertIn("not closed cleanly", warns[1])
        self.assertServes(srv, record_index)
        conn = srv.connect()
        # Revisions jump past those of the dropped records, which clients
        # may have seen: an old ETag never names a new version.
        r = request(conn, "PUT", "/other/new", '{"i":99}', JSON)
        self.assertEqual((r.status, rev_of(r)), (201, record_index + 1 + CRASH_GAP), r)
        conn.close()
        srv.stop()

        # The repair is on disk: an ordinary start finds a sound log.
        srv = self.start()
        self.assertEqual(log_lines(srv.log(), "warn") + log_lines(srv.log(), "error"), [])
        self.assertServes(srv, record_index)
        conn = srv.connect()
        self.assertEqual(request(conn, "GET", "/other/new").body, b'{"i":99}')
        conn.close()
        srv.stop()

    def test_damaged_first_record(self):
        self.refuse_then_repair(0)

    def test_damaged_fifth_record(self):
        self.refuse_then_repair(4)

    def test_torn_last_record(self):
        records = self.write_ten()
        log = os.path.join(self.data, LOG_NAME)
        start, size = records[-1]
        os.truncate(log, start + size // 2)  # what a crash in mid-append leaves

        # A torn tail was never acknowledged: it is cut, without --repair.
        srv = self.start()
        warns = log_lines(srv.log(), "warn")
        self.assertEqual(len(warns), 2, srv.log())
        self.assertRegex(warns[0], r"module=store .*dropped %d bytes at offset %d .*%s"
                         % (size // 2, start, LOG_NAME))
        self.assertIn("not closed cleanly", warns[1])
        self.assertEqual(log_lines(srv.log(), "error"), [], srv.log())
        self.assertServes(srv, 9)
        self.assertEqual(os.path.getsize(log), start, "the torn record is cut off the file")

        # New records go where the torn one was, so the log stays sound.
        conn = srv.connect()
        r = request(conn, "PUT", "/c/d9", '{"i":9}', JSON)
        self.assertEqual((r.status, rev_of(r)), (201, 10 + CRASH_GAP), r)
        conn.close()
        srv.stop()
        srv = self.start()
        self.assertEqual(log_lines(srv.log(), "warn"), [], srv.log())
        self.assertServes(srv, 10, revs={9: 10 + CRASH_GAP})
        srv.stop()

    # ------------------------------------------------------------------
    # 5. In memory

    def test_in_memory_writes_no_file(self):
        cwd = os.path.join(self.tmp.name, "cwd")
        os.mkdir(cwd)
        srv = harness.Server("--in-memory", cwd=cwd)
        self.servers.append(srv)
        self.assertIn("data_dir=none", srv.log())
        conn = srv.connect()
        for i in range(20):
            self.assertEqual(request(conn, "PUT", "/c/d%d" % i, '{"i":%d}' % i, JSON).status, 201)
        self.assertEqual(request(conn, "POST", "/c/d0/rollback").status, 204)
        self.assertEqual(request(conn, "GET", "/c/d1").body, b'{"i":1}')
        conn.close()
        srv.stop()
        self.assertEqual(os.listdir(cwd), [])


if __name__ == "__main__":
    print("SNAPBACK_SEED=%d" % SEED, file=sys.stderr)
    harness.main()
