"""Several clients writing and rolling back at once.

Each writer thread owns a few documents, which it checks against a model of
the undo semantics after every request, and shares a few more with the other
writers, where it can only check that each answer is one of the valid ones.
A reader lists and reads all the while.  At the end every document's history
must be consistent, the owned ones must equal their models, and no two
writes may have been given the same revision.

Set SNAPBACK_SEED to replay a run; the seed is printed on failure.
"""

import os
import random
import threading

import harness
from harness import request, rev_of

HISTORY = 16
WRITERS = 4
OWN_DOCS = 3
OWN_WRITES = HISTORY - 4  # an owned document is never trimmed
SHARED_DOCS = 2
OPS = 400
COLL = "/conc"


class Model:
    """One document's versions under the undo rules of the store.

    Every version records the version it logically follows; a write follows
    the current version, a rollback to T follows what T follows.  ROOT is
    the absence before the first write; nothing precedes it.
    """

    ROOT = -1

    def __init__(self):
        self.state = []    # per version: the document, or None when absent
        self.follows = []  # per version: index of the version it follows
        self.current = self.ROOT

    def _state(self, i):
        return None if i == self.ROOT else self.state[i]

    def _follows(self, i):
        return None if i == self.ROOT else self.follows[i]

    def _add(self, state, follows):
        self.state.append(state)
        self.follows.append(follows)
        self.current = len(self.state) - 1

    def put(self, doc):
        status = 201 if self._state(self.current) is None else 200
        self._add(doc, self.current)
        return status

    def delete(self):
        if self._state(self.current) is None:
            return 404
        self._add(None, self.current)
        return 204

    def rollback(self, steps):
        """Returns (status, restored doc or None, available steps on 409)."""
        if not self.state:
            return 404, None, None
        target = self.current
        for done in range(steps):
            if self._follows(target) is None:
                return 409, None, done
            target = self._follows(target)
        self._add(self._state(target), self._follows(target))
        doc = self._state(target)
        return (204 if doc is None else 200), doc, None

    def writes(self):
        return len(self.state)


class ConcurrencyTest(harness.ServerTest):
    def setUp(self):
        self.seed = int(os.environ.get("SNAPBACK_SEED", random.randrange(1 << 30)))
        self.errors = []
        self.revs = []  # (rev, thread, id) of every successful write
        self.lock = threading.Lock()

    def fail_in_thread(self, msg):
        with self.lock:
            self.errors.append(msg)

    def check(self, cond, msg, resp):
        if not cond:
            raise AssertionError("%s: %r" % (msg, resp))

    def record(self, resp, who, id_):
        if resp.status in (200, 201, 204):
            with self.lock:
                self.revs.append((rev_of(resp), who, id_))

    def writer(self, srv, who, models):
        rng = random.Random(self.seed * 100 + who)
        conn = srv.connect()
        try:
            for n in range(OPS):
                if rng.random() < 0.5:
                    self.own_op(conn, rng, who, n, models)
                else:
                    self.shared_op(conn, rng, who, n)
        except Exception as e:  # reported by the main thread
            self.fail_in_thread("writer %d: %s" % (who, e))
        finally:
            conn.close()

    def own_op(self, conn, rng, who, n, models):
        id_ = "t%d-%d" % (who, rng.randrange(OWN_DOCS))
        m = models[id_]
        path = "%s/%s" % (COLL, id_)
        op = rng.choice(("put", "put", "delete", "rollback"))
        if m.writes() >= OWN_WRITES:
            op = "read"
        if op == "put":
            doc = {"id": id_, "n": n, "by": who}
            r = request(conn, "PUT", path, doc)
            self.check(r.status == m.put(doc), "own put", r)
            self.check(r.json() == doc, "own put body", r)
        elif op == "delete":
            r = request(conn, "DELETE", path)
            self.check(r.status == m.delete(), "own delete", r)
        elif op == "rollback":
            steps = rng.randint(1, 3)
            r = request(conn, "POST", path + "/rollback", {"steps": steps})
            status, doc, available = m.rollback(steps)
            self.check(r.status == status, "own rollback of %d" % steps, r)
            if status == 200:
                self.check(r.json() == doc, "own rollback body", r)
            elif status == 409:
                self.check(r.json()["available"] == available, "own rollback available", r)
        else:
            r = request(conn, "GET", path)
            doc = m.state[m.current]
            self.check(r.status == (404 if doc is None else 200), "own read", r)
            if doc is not None:
                self.check(r.json() == doc, "own read body", r)
            return
        self.record(r, who, id_)

    def shared_op(self, conn, rng, who, n):
        id_ = "shared-%d" % rng.randrange(SHARED_DOCS)
        path = "%s/%s" % (COLL, id_)
        op = rng.choice(("put", "put", "delete", "rollback", "rollback"))
        if op == "put":
            doc = {"id": id_, "n": n, "by": who}
            r = request(conn, "PUT", path, doc)
            self.check(r.status in (200, 201) and r.json() == doc, "shared put", r)
        elif op == "delete":
            r = request(conn, "DELETE", path)
            self.check(r.status in (204, 404), "shared delete", r)
            if r.status == 404:
                self.check(r.json()["error"] == "not_found", "shared delete error", r)
        else:
            r = request(conn, "POST", path + "/rollback", {"steps": rng.randint(1, 2)})
            self.check(r.status in (200, 204, 404, 409), "shared rollback", r)
            if r.status == 200:
                self.check(r.json()["id"] == id_, "shared rollback body", r)
            elif r.status == 409:
                body = r.json()
                self.check(body["error"] == "history_exhausted" and body["available"] >= 0,
                           "shared rollback error", r)
            elif r.status == 404:
                self.check(r.json()["error"] == "not_found", "shared rollback error", r)
        self.record(r, who, id_)

    def reader(self, srv, stop):
        conn = srv.connect()
        try:
            while not stop.is_set():
                r = request(conn, "GET", COLL + "?limit=5")
                self.check(r.status == 200 and isinstance(r.json(), list), "list", r)
                for d in r.json():
                    self.check(d["id"].startswith(("t", "shared-")), "listed doc", r)
                r = request(conn, "GET", COLL + "/shared-0/versions")
                self.check(r.status in (200, 404), "versions", r)
        except Exception as e:
            self.fail_in_thread("reader: %s" % e)
        finally:
            conn.close()

    def check_history(self, srv, conn, id_):
        r = request(conn, "GET", "%s/%s/versions" % (COLL, id_))
        self.assertStatus(r, 200)
        versions = r.json()
        revs = [v["version"] for v in versions]
        self.assertTrue(all(a > b for a, b in zip(revs, revs[1:])), (id_, revs))
        self.assertLessEqual(len(versions), HISTORY, id_)
        current = request(conn, "GET", "%s/%s" % (COLL, id_))
        if versions[0]["doc"] is None:
            self.assertStatus(current, 404)
        else:
            self.assertEqual(current.json(), versions[0]["doc"], id_)
            self.assertEqual(rev_of(current), revs[0], id_)
        return versions

    def test_writers_and_readers(self):
        models = {"t%d-%d" % (w, d): Model() for w in range(WRITERS) for d in range(OWN_DOCS)}
        with harness.Server("--history", str(HISTORY), "--threads", "2") as srv:
            self.server = srv
            stop = threading.Event()
            reader = threading.Thread(target=self.reader, args=(srv, stop))
            writers = [threading.Thread(target=self.writer, args=(srv, w, models))
                       for w in range(WRITERS)]
            reader.start()
            for t in writers:
                t.start()
            for t in writers:
                t.join(60)
            stop.set()
            reader.join(60)
            self.assertFalse(any(t.is_alive() for t in writers + [reader]), "a client hung")
            self.assertEqual(self.errors, [], "seed %d%s" % (self.seed, srv.stderr()))

            conn = srv.connect()
            for id_, m in models.items():
                if not m.writes():
                    continue
                versions = self.check_history(srv, conn, id_)
                expected = list(reversed(m.state))[:HISTORY]
                self.assertEqual([v["doc"] for v in versions], expected,
                                 "%s, seed %d" % (id_, self.seed))
            for d in range(SHARED_DOCS):
                id_ = "shared-%d" % d
                if any(i == id_ for _, _, i in self.revs):
                    self.check_history(srv, conn, id_)
            conn.close()

            revs = [r for r, _, _ in self.revs]
            self.assertEqual(len(set(revs)), len(revs), "a revision was given twice")


if __name__ == "__main__":
    harness.main()
