"""Change sets, batches, snapshot listings, idempotency keys and X-Revision.

What docs/api.md promises about them, checked against the real server:

- The scenario change sets exist for: an agent rewrites 1000 product
  descriptions, a person then edits 3 of them; undoing the agent's change
  set is planned (dry run), refused, forced, and the forced undo is undone.
- A random mix of creates, updates, deletes, rollbacks and batches under one
  change set is undone exactly, checked against a model of the documents.
- Readers listing a collection never see part of a batch or of a change-set
  rollback, and every page of a listing shows the revision its first page
  showed.
- Bad input is refused with its documented code and changes nothing.
- Change sets, and the versions they keep for their undo, survive a restart
  and a compaction, and outlive the --history ring.
- An idempotency key replays the first answer and writes nothing.
- X-Revision is on every response, X-Change-Set on every write.

Set SNAPBACK_SEED to replay the random choices of a run; the seed is printed
when the file starts and in the failure messages of the random test.
"""

import copy
import http.client
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
import urllib.parse

import harness
from harness import request, rev_of

SEED = int(os.environ.get("SNAPBACK_SEED", random.randrange(1 << 30)))
SLOW = 120.0  # seconds: the bound on one answer about 10,000 documents (not a timing check)
AUTO_ID = re.compile(r"^auto-[0-9a-f]{20}$")
UNDO_ID = re.compile(r"^undo-[0-9a-f]{20}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
LINK = re.compile(r'^<([^>]*)>; rel="next"$')
SNAP = re.compile(r"^snap-([0-9a-fA-F]+)\.snap$")
WAL = re.compile(r"^wal-([0-9a-fA-F]+)\.log$")
SUMMARY = ("documents", "clean", "conflicts", "lost", "unchanged", "restored")
CS_INFO = ("id", "actor", "first_time", "last_time", "first_revision", "last_revision",
           "writes", "documents", "restorable")


def dumps(doc):
    """Compact JSON: exactly the bytes the server stores for `doc`."""
    return json.dumps(doc, separators=(",", ":"))


def check(cond, msg):
    """An assertion that reader threads can use too."""
    if not cond:
        raise AssertionError(msg)


def xrev(resp):
    """The X-Revision of a response, which every response must carry."""
    value = resp.header("x-revision")
    check(value is not None and re.fullmatch(r"[0-9]+", value) is not None,
          "no valid X-Revision header: %r" % resp)
    return int(value)


def write_headers(cs=None, actor=None, key=None):
    hdrs = {}
    if cs is not None:
        hdrs["X-Change-Set"] = cs
    if actor is not None:
        hdrs["X-Actor"] = actor
    if key is not None:
        hdrs["Idempotency-Key"] = key
    return hdrs


def call(conn, method, path, body=None, headers=None):
    """harness.request with a JSON body given as an object, a list or text."""
    hdrs = dict(headers or {})
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
        if not isinstance(body, (str, bytes)):
            body = dumps(body)
    return request(conn, method, path, body, hdrs)


def walk(conn, coll, limit=1000, as_of=None, between_pages=None):
    """Lists a collection page by page, following the Link headers.

    All pages must show one snapshot: the first page's X-Revision R is
    carried by every Link as as_of=R and answered by every later page.
    `between_pages`, when given, is called once, after the first page.
    Returns (documents, R, number of pages).
    """
    path = "/%s?limit=%d" % (coll, limit)
    if as_of is not None:
        path += "&as_of=%d" % as_of
    docs, rev, pages = [], None, 0
    while path is not None:
        r = request(conn, "GET", path)
        check(r.status == 200, "GET %s: %r" % (path, r))
        page_rev = xrev(r)
        if rev is None:
            rev = page_rev
        check(page_rev == rev, "page %d of /%s is at revision %d, its first page at %d"
              % (pages + 1, coll, page_rev, rev))
        page = r.json()
        check(isinstance(page, list), "a listing is an array: %r" % r)
        docs += page
        pages += 1
        link, path = r.header("link"), None
        if link is not None:
            m = LINK.match(link)
            check(m is not None, "malformed Link %r" % link)
            path = m.group(1)
            url = urllib.parse.urlsplit(path)
            query = urllib.parse.parse_qs(url.query)
            check(url.path == "/" + coll and query.get("as_of") == [str(rev)],
                  "Link %r does not keep the snapshot as_of=%d" % (link, rev))
            check(page, "a page with a next link is not empty")
        if pages == 1 and between_pages is not None:
            between_pages()
    return docs, rev, pages


class DocModel:
    """One document's versions under the store's undo rules.

    Every version records the version it logically follows: a write follows
    the current version, a rollback to T follows what T follows.  ROOT is
    the absence before the first write; nothing precedes it.
    """

    ROOT = -1

    def __init__(self):
        self.states, self.follows, self.revs = [], [], []
        self.current = self.ROOT

    def state(self, i=None):
        i = self.current if i is None else i
        return None if i == self.ROOT else self.states[i]

    def _follows(self, i):
        return None if i == self.ROOT else self.follows[i]

    def add(self, version, rev):
        state, follows = version
        self.states.append(state)
        self.follows.append(follows)
        self.revs.append(rev)
        self.current = len(self.states) - 1

    def expect(self, kind, arg):
        """What `kind` would do now: (status, error code or None, the
        (state, follows) of the version it would add, steps available)."""
        cur = self.state()
        if kind == "create":
            if cur is not None:
                return 409, "already_exists", None, None
            return 201, None, (arg, self.current), None
        if kind == "put":
            return (201 if cur is None else 200), None, (arg, self.current), None
        if kind == "delete":
            if cur is None:
                return 404, "not_found", None, None
            return 204, None, (None, self.current), None
        if not self.states:
            return 404, "not_found", None, None
        if kind == "steps":
            target = self.current
            for done in range(arg):
                if self._follows(target) is None:
                    return 409, "history_exhausted", None, done
                target = self._follows(target)
        else:  # to_version: `arg` is the revision of one of its versions
            target = self.revs.index(arg)
        state = self.state(target)
        return (204 if state is None else 200), None, (state, self._follows(target)), None


class ChangeSetCase(harness.ServerTest):
    """Starts servers and connections for a test and stops them after it."""

    def setUp(self):
        self.servers, self.conns = [], []

    def tearDown(self):
        for conn in self.conns:
            conn.close()
        problems = []
        for srv in self.servers:  # each must still exit with status 0
            try:
                srv.stop()
            except AssertionError as e:
                problems.append(str(e))
        if problems:
            self.fail("\n".join(problems))

    def start(self, *options, data_dir=None):
        self.server = harness.Server(*options, data_dir=data_dir)
        self.servers.append(self.server)
        self.conn = self.connect()
        return self.server

    def connect(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=SLOW)
        self.conns.append(conn)
        return conn

    def call(self, method, path, body=None, headers=None, conn=None):
        return call(conn or self.conn, method, path, body, headers)

    def ok(self, resp, status):
        self.assertStatus(resp, status)
        return resp

    def revision(self):
        """The store's revision now, as a listing of a never-written collection reports it."""
        return xrev(self.ok(self.call("GET", "/never_written?limit=1"), 200))

    def batch(self, ops, status=200, **hdrs):
        return self.ok(self.call("POST", "/_batch", ops, write_headers(**hdrs)), status)

    def undo(self, target, status, query="", **hdrs):
        """POST /_changesets/{target}/rollback{query}; `hdrs` as write_headers()."""
        r = self.call("POST", "/_changesets/%s/rollback%s" % (target, query), None,
                      write_headers(**hdrs))
        return self.ok(r, status)

    def changeset(self, cs):
        return self.ok(self.call("GET", "/_changesets/" + cs), 200).json()

    def doc_state(self, coll, id_):
        """(ETag revision, document) now; (None, None) when absent."""
        r = self.call("GET", "/%s/%s" % (coll, id_))
        if r.status == 404:
            self.assertError(r, 404, "not_found")
            return None, None
        self.ok(r, 200)
        return rev_of(r), r.json()

    def documents(self, coll):
        """The documents of a collection now, by id (one consistent listing)."""
        docs, _rev, _pages = walk(self.conn, coll)
        by_id = {d["id"]: d for d in docs}
        self.assertEqual(len(by_id), len(docs), "a document listed twice")
        return by_id

    def history(self, coll, id_):
        r = self.call("GET", "/%s/%s/versions" % (coll, id_))
        return r.status, r.body

    def assertRollback(self, body, cs, dry_run, forced, applied, summary=None):
        """Checks the shape of a change-set rollback answer and that its
        summary counts its documents; returns the documents by (collection, id)."""
        self.assertEqual(body["change_set"], cs, body)
        self.assertEqual((body["dry_run"], body["forced"], body["applied"]),
                         (dry_run, forced, applied), body)
        docs = body["documents"]
        by_key = {(d["collection"], d["id"]): d for d in docs}
        self.assertEqual(len(by_key), len(docs), "a document planned twice")
        counts = {s: sum(1 for d in docs if d["state"] == s)
                  for s in ("clean", "conflict", "lost", "unchanged")}
        self.assertEqual(sum(counts.values()), len(docs), "unknown state in %r" % docs[:5])
        written = [d["revision"] for d in docs if d["revision"] is not None]
        got = body["summary"]
        self.assertEqual(sorted(got), sorted(SUMMARY))
        self.assertEqual(got, {"documents": len(docs), "clean": counts["clean"],
                               "conflicts": counts["conflict"], "lost": counts["lost"],
                               "unchanged": counts["unchanged"], "restored": len(written)})
        if summary is not None:
            self.assertEqual(got, summary)
        for d in docs:
            self.assertEqual("later" in d and d["later"] != [], d["state"] == "conflict", d)
        if written:
            self.assertTrue(applied)
            self.assertRegex(body["rollback_change_set"], r"^[A-Za-z0-9._:-]{1,128}$")
            # One batch: consecutive revisions, the last one answered.
            self.assertEqual(sorted(written), list(range(min(written), max(written) + 1)))
            self.assertEqual(body["revision"], max(written))
        else:
            self.assertIsNone(body["revision"], body)
        if not applied:
            self.assertIsNone(body["rollback_change_set"], body)
            self.assertEqual(written, [])
        return by_key


# ----------------------------------------------------------------------
# 1. The scenario


class OriginScenarioTest(ChangeSetCase):
    def test_undo_an_agent_around_a_persons_edits(self):
        self.start()
        ids = ["p%04d" % n for n in range(1000)]
        original = {i: {"id": i, "name": "Product %d" % n,
                        "description": "Product %d, as its supplier describes it." % n,
                        "price": 100 + n} for n, i in enumerate(ids)}

        # 1000 products in one batch.
        r = self.batch([{"op": "create", "collection": "products", "document": original[i]}
                        for i in ids], cs="import", actor="loader")
        body = r.json()
        self.assertEqual((body["change_set"], r.header("x-change-set")), ("import", "import"))
        self.assertEqual(xrev(r), body["revision"])
        created = {}
        for n, (i, res) in enumerate(zip(ids, body["results"])):
            self.assertEqual(res, {"op": "create", "collection": "products", "id": i,
                                   "status": 201, "revision": body["revision"] - 999 + n,
                                   "deleted": False})
            created[i] = res["revision"]
        self.assertEqual(len(body["results"]), 1000)

        # agent-42 rewrites every description, one PUT at a time.
        agent, agent_rev = {}, {}
        for i in ids:
            agent[i] = dict(original[i], description="Rewritten by the assistant: buy %s!" % i)
            r = self.call("PUT", "/products/" + i, dumps(agent[i]),
                          write_headers("agent-42", "assistant"))
            self.ok(r, 200)
            self.assertEqual(r.body, dumps(agent[i]).encode())
            self.assertEqual(r.header("x-change-set"), "agent-42")
            agent_rev[i] = rev_of(r)

        # human-7 then fixes three of them by hand.
        edited = [ids[7], ids[500], ids[999]]
        human, human_rev = dict(agent), {}
        for i in edited:
            human[i] = dict(agent[i], description="Checked by hand: %s." % i)
            r = self.call("PUT", "/products/" + i, dumps(human[i]),
                          write_headers("human-7", "alice"))
            self.ok(r, 200)
            human_rev[i] = rev_of(r)
        self.assertEqual(self.documents("products"), human)
        top = self.revision()
        self.assertEqual(top, human_rev[edited[-1]])

        # What agent-42 recorded.
        info = self.changeset("agent-42")
        self.assertEqual({k: info[k] for k in ("id", "actor", "first_revision", "last_revision",
                                               "writes", "restorable")},
                         {"id": "agent-42", "actor": "assistant",
                          "first_revision": agent_rev[ids[0]],
                          "last_revision": agent_rev[ids[-1]], "writes": 1000,
                          "restorable": True})
        self.assertRegex(info["first_time"], TIME)
        self.assertRegex(info["last_time"], TIME)
        self.assertEqual(sorted(d["id"] for d in info["documents"]), ids)
        for d in info["documents"]:
            self.assertEqual(d, {"collection": "products", "id": d["id"],
                                 "revisions": [agent_rev[d["id"]]],
                                 "before_revision": created[d["id"]], "restorable": True})

        # The dry run: 997 clean documents, 3 conflicts naming human-7's edits.
        r = self.undo("agent-42", 200, "?dry_run=true")
        self.assertEqual(xrev(r), top)
        summary = {"documents": 1000, "clean": 997, "conflicts": 3, "lost": 0,
                   "unchanged": 0, "restored": 0}
        plan = self.assertRollback(r.json(), "agent-42", True, False, False, summary)
        human_later = {i: [{"revision": human_rev[i], "op": "update", "change_set": "human-7",
                            "actor": "alice"}] for i in edited}
        for i in ids:
            d = plan[("products", i)]
            self.assertEqual(
                (d["state"], d["from_revision"], d["from_deleted"], d["to_revision"],
                 d["to_deleted"], d["to"], d["revision"]),
                ("conflict" if i in human_rev else "clean", human_rev.get(i, agent_rev[i]),
                 False, created[i], False, original[i], None), i)
            if i in human_rev:
                self.assertEqual(d["later"], human_later[i])
                self.assertIs(d["later_truncated"], False)

        # Without force: refused, with the same plan, and nothing changes.
        r = self.undo("agent-42", 409)
        body = self.assertError(r, 409, "change_set_conflict")
        refused = self.assertRollback(body, "agent-42", False, False, False, summary)
        self.assertEqual(refused, plan)
        self.assertEqual(xrev(r), top)
        self.assertEqual(self.revision(), top)
        self.assertEqual(self.documents("products"), human)
        for i in edited:
            self.assertEqual(self.doc_state("products", i), (human_rev[i], human[i]))

        # Forced: all 1000 go back, the 3 edits are overwritten and listed.
        r = self.undo("agent-42", 200, "?force=true", actor="reviewer")
        body = r.json()
        undo_id = body["rollback_change_set"]
        self.assertRegex(undo_id, UNDO_ID)
        self.assertEqual(r.header("x-change-set"), undo_id)
        done = self.assertRollback(body, "agent-42", False, True, True,
                                   dict(summary, restored=1000))
        self.assertEqual(body["revision"], top + 1000)
        self.assertEqual(xrev(r), top + 1000)
        overwritten = {d["id"]: d["later"] for d in done.values() if d["state"] == "conflict"}
        self.assertEqual(overwritten, human_later)
        self.assertEqual(self.documents("products"), original)
        for i in ids:
            self.assertEqual(self.doc_state("products", i),
                             (done[("products", i)]["revision"], original[i]))
        newest = self.ok(self.call("GET", "/products/%s/versions" % edited[0]), 200).json()[0]
        self.assertEqual({k: newest.get(k) for k in ("version", "op", "change_set", "restored",
                                                    "doc")},
                         {"version": done[("products", edited[0])]["revision"], "op": "rollback",
                          "change_set": undo_id, "restored": created[edited[0]],
                          "doc": original[edited[0]]})
        info = self.changeset(undo_id)
        self.assertEqual((info["actor"], info["writes"], len(info["documents"])),
                         ("reviewer", 1000, 1000))
        for d in info["documents"]:
            self.assertEqual((d["before_revision"], d["revisions"]),
                             (human_rev.get(d["id"], agent_rev[d["id"]]),
                              [done[("products", d["id"])]["revision"]]))

        # Undoing the undo restores each document to its state just before
        # the undo wrote it: the agent's text, and human-7's three edits
        # (which the forced undo had overwritten).
        r = self.undo(undo_id, 200)
        body = r.json()
        redo_id = body["rollback_change_set"]
        self.assertRegex(redo_id, UNDO_ID)
        self.assertNotEqual(redo_id, undo_id)
        redone = self.assertRollback(body, undo_id, False, False, True,
                                     {"documents": 1000, "clean": 1000, "conflicts": 0,
                                      "lost": 0, "unchanged": 0, "restored": 1000})
        self.assertEqual(self.documents("products"), human)

        # agent-42 now conflicts everywhere; `later` lists newest first.
        r = self.undo("agent-42", 200, "?dry_run=true")
        plan = self.assertRollback(r.json(), "agent-42", True, False, False,
                                   {"documents": 1000, "clean": 0, "conflicts": 1000,
                                    "lost": 0, "unchanged": 0, "restored": 0})
        for i in ids:
            later = [{"revision": redone[("products", i)]["revision"], "op": "rollback",
                      "change_set": redo_id, "actor": None},
                     {"revision": done[("products", i)]["revision"], "op": "rollback",
                      "change_set": undo_id, "actor": "reviewer"}] + human_later.get(i, [])
            self.assertEqual(plan[("products", i)]["later"], later, i)


# ----------------------------------------------------------------------
# 2. A random change set, undone exactly


class RandomMixTest(ChangeSetCase):
    DOCS = 30
    OPS = 60
    ROUNDS = 3
    WORDS = ("red", "green", "blue", "café", "naïve", "x\ny", 'q"t', "")

    def test_random_change_sets_are_undone_exactly(self):
        # A deep ring: the model does not model trimming.
        self.start("--history", "1000")
        rng = random.Random(SEED)
        try:
            for round_ in range(self.ROUNDS):
                self.mix_round(rng, round_)
        except AssertionError as e:
            raise AssertionError("%s (SNAPBACK_SEED=%d)" % (e, SEED)) from e

    def new_doc(self, rng, id_, round_):
        return {"id": id_, "round": round_, "text": rng.choice(self.WORDS),
                "n": rng.randrange(1 << 40)}

    def random_op(self, rng, model, id_, round_):
        """A random operation on one document: (kind, argument)."""
        x = rng.random()
        older = [rev for rev in model.revs[:-1] if rev > 0]  # 0: not yet known
        if x < 0.35:
            return "put", self.new_doc(rng, id_, round_)
        if x < 0.5:
            return "create", self.new_doc(rng, id_, round_)
        if x < 0.65:
            return "delete", None
        if x < 0.9 or not older:
            return "steps", rng.randint(1, 3)
        return "to_version", rng.choice(older)

    def one(self, coll, id_, models, kind, arg, hdrs, written):
        """Sends one single-document write and checks it against the model."""
        m = models[id_]
        status, code, version, available = m.expect(kind, arg)
        path = "/%s/%s" % (coll, id_)
        if kind == "create":
            r = self.call("POST", "/" + coll, arg, hdrs)
        elif kind == "put":
            r = self.call("PUT", path, arg, hdrs)
        elif kind == "delete":
            r = self.call("DELETE", path, None, hdrs)
        elif kind == "steps":
            r = self.call("POST", path + "/rollback", {"steps": arg}, hdrs)
        else:
            r = self.call("POST", path + "/rollback", {"to_version": arg}, hdrs)
        what = "%s %s %r: %r" % (kind, path, arg, r)
        if code is not None:
            body = self.assertError(r, status, code)
            if code == "history_exhausted":
                self.assertEqual(body["available"], available, what)
            return
        self.assertEqual(r.status, status, what)
        self.assertEqual(r.header("x-change-set"), hdrs["X-Change-Set"], what)
        if status != 204:
            self.assertEqual(r.json(), version[0], what)
        m.add(version, rev_of(r))
        if written is not None:
            written.setdefault(id_, []).append(rev_of(r))

    def several(self, rng, coll, ids, models, hdrs, written, round_):
        """Sends a batch of 2 to 5 random operations; the model says whether
        it applies and, if not, which operation fails and how."""
        trial, ops, plan, failure = {}, [], [], None
        for index in range(rng.randint(2, 5)):
            id_ = rng.choice(ids)
            m = trial.setdefault(id_, copy.deepcopy(models[id_]))
            kind, arg = self.random_op(rng, m, id_, round_)
            op = {"create": {"op": "create", "collection": coll, "document": arg},
                  "put": {"op": "put", "collection": coll, "id": id_, "document": arg},
                  "delete": {"op": "delete", "collection": coll, "id": id_},
                  "steps": {"op": "rollback", "collection": coll, "id": id_, "steps": arg},
                  "to_version": {"op": "rollback", "collection": coll, "id": id_,
                                 "to_version": arg}}[kind]
            ops.append(op)
            if failure is not None:
                continue
            status, code, version, _available = m.expect(kind, arg)
            if code is not None:
                failure = (index, status, code, op["op"])
                continue
            m.add(version, 0)
            plan.append((id_, kind, arg, op["op"], status, version[0] is None))

        r = self.call("POST", "/_batch", ops, hdrs)
        if failure is not None:
            index, status, code, name = failure
            body = self.assertError(r, status, code)
            self.assertEqual((body.get("index"), body.get("operation")), (index, name), ops)
            self.assertTrue(body["message"].startswith("operation %d: " % index), body)
            return
        self.ok(r, 200)
        body = r.json()
        self.assertEqual((body["change_set"], r.header("x-change-set")),
                         (hdrs["X-Change-Set"],) * 2)
        self.assertEqual(xrev(r), body["revision"])
        first = body["revision"] - len(ops) + 1
        self.assertEqual(len(body["results"]), len(ops))
        for n, ((id_, kind, arg, name, status, deleted), res) in enumerate(
                zip(plan, body["results"])):
            self.assertEqual(res, {"op": name, "collection": coll, "id": id_, "status": status,
                                   "revision": first + n, "deleted": deleted}, ops)
            _status, _code, version, _available = models[id_].expect(kind, arg)
            models[id_].add(version, res["revision"])
            written.setdefault(id_, []).append(res["revision"])

    def mix_round(self, rng, round_):
        coll, cs, actor = "mix%d" % round_, "mix-%d" % round_, "mixer %d" % round_
        ids = ["d%02d" % n for n in range(self.DOCS)]
        models = {i: DocModel() for i in ids}

        # Before the change set: never written, live, updated, deleted.
        setup = write_headers("setup-%d" % round_)
        for id_ in ids:
            x = rng.random()
            if x < 0.2:
                continue
            self.one(coll, id_, models, "put", self.new_doc(rng, id_, round_), setup, None)
            if x >= 0.6:
                self.one(coll, id_, models, "put", self.new_doc(rng, id_, round_), setup, None)
            if x >= 0.8:
                self.one(coll, id_, models, "delete", None, setup, None)
        before = {i: models[i].state() for i in ids}
        before_rev = {i: models[i].revs[-1] if models[i].revs else None for i in ids}

        # The change set.
        hdrs, written = write_headers(cs, actor), {}
        for _ in range(self.OPS):
            if rng.random() < 0.15:
                self.several(rng, coll, ids, models, hdrs, written, round_)
            else:
                id_ = rng.choice(ids)
                kind, arg = self.random_op(rng, models[id_], id_, round_)
                self.one(coll, id_, models, kind, arg, hdrs, written)
        after = {i: models[i].state() for i in ids}
        self.assertTrue(written, "the mix wrote nothing")
        self.assertEqual(self.documents(coll),
                         {i: d for i, d in after.items() if d is not None})

        # What it recorded.
        info = self.changeset(cs)
        revs = sorted(rev for doc_revs in written.values() for rev in doc_revs)
        self.assertEqual((info["id"], info["actor"], info["writes"], info["first_revision"],
                          info["last_revision"], info["restorable"]),
                         (cs, actor, len(revs), revs[0], revs[-1], True))
        recorded = {d["id"]: d for d in info["documents"]}
        self.assertEqual(sorted(recorded), sorted(written))
        for id_, doc_revs in written.items():
            self.assertEqual(recorded[id_], {"collection": coll, "id": id_,
                                             "revisions": doc_revs,
                                             "before_revision": before_rev[id_],
                                             "restorable": True})

        # The plan: nobody else wrote, so every document is clean, or
        # unchanged when it is absent now as it was before.
        r = self.undo(cs, 200, "?dry_run=true")
        plan = self.assertRollback(r.json(), cs, True, False, False)
        self.assertEqual(sorted(i for _c, i in plan), sorted(written))
        for id_ in written:
            d = plan[(coll, id_)]
            if before[id_] is None and after[id_] is None:
                want = ("unchanged",)
            elif before[id_] == after[id_]:
                want = ("clean", "unchanged")
            else:
                want = ("clean",)
            self.assertIn(d["state"], want, d)
            self.assertEqual((d["from_revision"], d["from_deleted"], d["to_revision"],
                              d["to_deleted"], d["to"]),
                             (models[id_].revs[-1], after[id_] is None, before_rev[id_],
                              before[id_] is None, before[id_]), d)

        # Applied: every document is as it was before the change set.
        r = self.undo(cs, 200)
        body = r.json()
        done = self.assertRollback(body, cs, False, False, True)
        for key, d in done.items():
            self.assertEqual(d["state"], plan[key]["state"], d)
            self.assertEqual(d["revision"] is not None, d["state"] == "clean", d)
        for id_ in ids:
            self.assertEqual(self.doc_state(coll, id_)[1], before[id_], id_)
            if id_ in written and done[(coll, id_)]["revision"] is not None:
                newest = self.ok(self.call("GET", "/%s/%s/versions" % (coll, id_)), 200).json()[0]
                self.assertEqual((newest["version"], newest["op"], newest["doc"]),
                                 (done[(coll, id_)]["revision"], "rollback", before[id_]), id_)
        self.assertEqual(self.documents(coll),
                         {i: d for i, d in before.items() if d is not None})

        # Undoing the undo brings the change set's outcome back.
        undo_id = body["rollback_change_set"]
        if undo_id is None:  # the mix ended where it began everywhere
            return
        r = self.undo(undo_id, 200)
        redone = self.assertRollback(r.json(), undo_id, False, False, True)
        self.assertEqual({d["state"] for d in redone.values()}, {"clean"})
        for id_ in ids:
            self.assertEqual(self.doc_state(coll, id_)[1], after[id_], id_)


# ----------------------------------------------------------------------
# 3. Atomicity as readers see it


class AtomicityTest(ChangeSetCase):
    READERS = 2

    def write_gen(self, coll, ids, gen, cs, op="put"):
        """Writes {"id", "gen"} to every document, 1000 per batch;
        returns the (first, last) revisions of the last batch."""
        for at in range(0, len(ids), 1000):
            chunk = ids[at:at + 1000]
            ops = [{"op": op, "collection": coll, "document": {"id": i, "gen": gen}}
                   if op == "create" else
                   {"op": op, "collection": coll, "id": i, "document": {"id": i, "gen": gen}}
                   for i in chunk]
            body = self.batch(ops, cs=cs).json()
        return body["revision"] - len(chunk) + 1, body["revision"]

    def assertOneGen(self, docs, count, gen):
        self.assertEqual(len(docs), count)
        self.assertEqual(len({d["id"] for d in docs}), count, "a document listed twice")
        self.assertEqual({d["gen"] for d in docs}, {gen})

    def watch(self, coll, count, limits, change):
        """Readers list `coll` over and over, with each page size of
        `limits` in turn, while change() runs.  change() returns the states
        it made, as (first revision, last revision, gen) of each batch or
        rollback.  Each reader lists at least once before change() starts
        and once after it ends, so both the first and the last state are
        seen.  Returns the listings seen, as (revision, set of gens)."""
        cond = threading.Condition()
        done = [0] * self.READERS
        seen, errors, stop = [], [], threading.Event()

        def reader(k):
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=SLOW)
            try:
                n = 0
                while not stop.is_set():
                    docs, rev, _pages = walk(conn, coll, limits[n % len(limits)])
                    ids = {d["id"] for d in docs}
                    check(len(docs) == count and len(ids) == count,
                          "a listing at %d has %d documents, %d ids" % (rev, len(docs), len(ids)))
                    with cond:
                        seen.append((rev, frozenset(d["gen"] for d in docs)))
                        done[k] += 1
                        cond.notify_all()
                    n += 1
            except Exception as e:  # reported by the main thread
                with cond:
                    errors.append("reader %d: %s" % (k, e))
                    cond.notify_all()
            finally:
                conn.close()

        def wait_for(counts):
            with cond:
                ok = cond.wait_for(lambda: errors or all(
                    done[k] >= counts[k] for k in range(self.READERS)), timeout=SLOW)
            self.assertTrue(ok, "readers did not progress")
            self.assertEqual(errors, [])

        threads = [threading.Thread(target=reader, args=(k,)) for k in range(self.READERS)]
        for t in threads:
            t.start()
        try:
            wait_for([1] * self.READERS)
            states = change()
            with cond:
                marks = [n + 2 for n in done]  # the next listing starts after change()
            wait_for(marks)
        finally:
            stop.set()
            for t in threads:
                t.join(SLOW)
        self.assertEqual(errors, [])
        self.assertFalse(any(t.is_alive() for t in threads), "a reader hangs")
        return seen, states

    def assertListingsWhole(self, seen, states):
        """Each listing is at the last revision of one state, with its gen only."""
        gen_at = {last: gen for _first, last, gen in states}
        for rev, gens in seen:
            self.assertIn(rev, gen_at, "a listing at revision %d, inside a batch "
                          "(states: %r)" % (rev, states))
            self.assertEqual(gens, {gen_at[rev]}, "listing at revision %d" % rev)
        self.assertTrue({rev for rev, _gens in seen} >= {states[0][1], states[-1][1]},
                        "the readers missed the first or the last state")

    def test_change_set_rollback_is_seen_whole(self):
        self.start()
        ids = ["d%05d" % n for n in range(10000)]
        self.write_gen("atom", ids, 0, "load", op="create")
        _first, gen1 = self.write_gen("atom", ids, 1, "gen-1")

        # A listing begun before the rollback ends in the same snapshot.
        reader, undone = self.connect(), {}

        def roll_back():
            undone["body"] = self.undo("gen-1", 200).json()

        docs, rev, pages = walk(reader, "atom", 1000, between_pages=roll_back)
        self.assertEqual((rev, pages), (gen1, 10))
        self.assertOneGen(docs, 10000, 1)
        body = undone["body"]
        self.assertRollback(body, "gen-1", False, False, True,
                            {"documents": 10000, "clean": 10000, "conflicts": 0, "lost": 0,
                             "unchanged": 0, "restored": 10000})
        docs, rev, pages = walk(reader, "atom", 1000)
        self.assertEqual(rev, body["revision"])
        self.assertOneGen(docs, 10000, 0)
        # The old snapshot stays readable by revision.
        docs, rev, _pages = walk(reader, "atom", 1000, as_of=gen1)
        self.assertEqual(rev, gen1)
        self.assertOneGen(docs, 10000, 1)

        # Readers list while the undo is undone, and that undo, 5 times.
        states = [(body["revision"] - 9999, body["revision"], 0)]

        def rollbacks():
            cs = body["rollback_change_set"]
            for n in range(5):
                done = self.undo(cs, 200).json()
                self.assertEqual(done["summary"]["restored"], 10000)
                states.append((done["revision"] - 9999, done["revision"], 1 - n % 2))
                cs = done["rollback_change_set"]
            return states

        seen, states = self.watch("atom", 10000, [1000, 300], rollbacks)
        self.assertListingsWhole(seen, states)

    def test_batches_are_seen_whole(self):
        self.start()
        ids = ["b%04d" % n for n in range(1000)]
        states = [self.write_gen("batches", ids, 0, "b-0", op="create") + (0,)]

        # A listing begun before a batch ends in the same snapshot.
        reader = self.connect()
        docs, rev, pages = walk(reader, "batches", 100,
                                between_pages=lambda: states.append(
                                    self.write_gen("batches", ids, 1, "b-1") + (1,)))
        self.assertEqual((rev, pages), (states[0][1], 10))
        self.assertOneGen(docs, 1000, 0)
        docs, rev, pages = walk(reader, "batches", 100)
        self.assertEqual(rev, states[1][1])
        self.assertOneGen(docs, 1000, 1)

        def batches():
            for gen in range(2, 22):
                states.append(self.write_gen("batches", ids, gen, "b-%d" % gen) + (gen,))
            return states[1:]

        seen, made = self.watch("batches", 1000, [100, 1000, 7], batches)
        self.assertListingsWhole(seen, made)


# ----------------------------------------------------------------------
# 4. Bad input


class BadInputTest(ChangeSetCase):
    def setUp(self):
        super().setUp()
        self.start()
        for i in ("a", "b", "c", "e"):
            self.ok(self.call("PUT", "/bad/" + i, {"id": i, "v": 1}), 201)
        self.ok(self.call("PUT", "/bad/a", {"id": "a", "v": 2}, write_headers("cs-a")), 200)

    def unchanged(self):
        """Everything the tests here may have touched, as raw answers."""
        snap = {"rev": self.revision()}
        for i in ("a", "b", "c", "e", "n", "x"):
            snap[i] = self.history("bad", i)
        snap["list"] = self.documents("bad")
        return snap

    def test_unknown_change_set(self):
        before = self.unchanged()
        self.assertError(self.call("GET", "/_changesets/nobody"), 404, "change_set_not_found")
        for query in ("", "?dry_run=true", "?force=true"):
            self.assertError(self.call("POST", "/_changesets/nobody/rollback" + query),
                             404, "change_set_not_found")
        self.assertError(self.call("GET", "/_changesets/" + "n" * 128), 404,
                         "change_set_not_found")
        self.assertEqual(self.unchanged(), before)

    def test_malformed_change_set_ids(self):
        before = self.unchanged()
        bad_ids = ["", "a b", "a/b", "a,b", "a*b", "é", "a\tb", "x" * 129]
        for bad in bad_ids:
            h = {"X-Change-Set": bad.encode()}
            for method, path, body in (("PUT", "/bad/x", {"id": "x"}), ("POST", "/bad",
                                                                       {"id": "x"}),
                                       ("DELETE", "/bad/b", None),
                                       ("POST", "/bad/a/rollback", None),
                                       ("POST", "/_batch", [{"op": "delete",
                                                             "collection": "bad", "id": "b"}]),
                                       ("POST", "/_changesets/cs-a/rollback", None)):
                self.assertError(self.call(method, path, body, h), 400, "invalid_change_set")
        for bad in ("a%20b", "a%2Fb", "%C3%A9", "a%2Cb", "x" * 129, "a%09b"):
            self.assertError(self.call("GET", "/_changesets/" + bad), 400, "invalid_change_set")
            self.assertError(self.call("POST", "/_changesets/%s/rollback" % bad), 400,
                             "invalid_change_set")
        self.assertEqual(self.unchanged(), before)

        # Every allowed character, and the longest id.
        for good in ("Az09._:-", "y" * 128):
            r = self.ok(self.call("PUT", "/bad/g", {"id": "g", "cs": good},
                                  write_headers(good)), 201 if good[0] == "A" else 200)
            self.assertEqual(r.header("x-change-set"), good)
            self.assertEqual(self.changeset(good)["id"], good)

    def test_same_change_set(self):
        before = self.unchanged()
        r = self.undo("cs-a", 422, cs="cs-a")
        self.assertError(r, 422, "same_change_set")
        self.assertEqual(self.unchanged(), before)

    def test_malformed_actor_and_idempotency_key(self):
        before = self.unchanged()
        for name, code in (("X-Actor", "invalid_actor"),
                           ("Idempotency-Key", "invalid_idempotency_key")):
            for bad in (b"", b"\xc3\xa9", b"a\tb", b"k" * 129):
                h = {name: bad}
                for method, path, body in (("PUT", "/bad/x", {"id": "x"}),
                                           ("POST", "/bad", {"id": "x"}),
                                           ("DELETE", "/bad/b", None),
                                           ("POST", "/bad/a/rollback", None),
                                           ("POST", "/_batch", [{"op": "delete",
                                                                 "collection": "bad",
                                                                 "id": "b"}]),
                                           ("POST", "/_changesets/cs-a/rollback", None)):
                    self.assertError(self.call(method, path, body, h), 400, code)
        self.assertEqual(self.unchanged(), before)
        # The widest allowed: 128 bytes of printable ASCII, space and ~ included.
        # (Not beginning or ending with a space, which HTTP strips.)
        printable = "".join(chr(c) for c in range(0x20, 0x7f))
        wide = ("a" + printable * 2)[:127] + "z"
        self.assertEqual(len(wide), 128)
        self.ok(self.call("PUT", "/bad/w", {"id": "w"},
                          {"X-Actor": wide, "Idempotency-Key": wide, "X-Change-Set": "wide"}), 201)
        self.assertEqual(self.changeset("wide")["actor"], wide)

    def test_empty_and_oversize_batches(self):
        before = self.unchanged()
        self.assertError(self.call("POST", "/_batch", []), 400, "empty_batch")
        ops = [{"op": "put", "collection": "bad", "id": "n%d" % n, "document": {}}
               for n in range(1001)]
        self.assertError(self.call("POST", "/_batch", ops), 413, "batch_too_large")
        self.assertEqual(self.unchanged(), before)
        self.assertError(self.call("GET", "/bad/n0"), 404, "not_found")

    def test_invalid_operations(self):
        before = self.unchanged()
        good = [{"op": "create", "collection": "bad", "document": {"id": "n"}},
                {"op": "put", "collection": "bad", "id": "x", "document": {"v": 1}},
                {"op": "delete", "collection": "bad", "id": "b"}]
        bad_ops = [
            5, "put", None, [],
            {"collection": "bad", "id": "x", "document": {}},                 # no op
            {"op": "frobnicate", "collection": "bad", "id": "x"},
            {"op": "put", "collection": "bad", "id": "x"},                    # no document
            {"op": "put", "id": "x", "document": {}},                         # no collection
            {"op": "delete", "collection": "bad"},                            # no id
            {"op": "create", "collection": "bad"},
            {"op": "create", "collection": "bad", "document": {"id": "y"}, "id": "y"},
            {"op": "put", "collection": "bad", "id": "x", "document": {}, "extra": 1},
            {"op": "put", "collection": "bad", "id": 5, "document": {}},
            {"op": "put", "collection": 7, "id": "x", "document": {}},
            {"op": "put", "collection": "bad", "id": "x", "document": [1]},
            {"op": "put", "collection": "bad", "id": "x", "document": {}, "if_match": "5"},
            {"op": "put", "collection": "bad", "id": "x", "document": {},
             "if_none_match": "x"},
            {"op": "delete", "collection": "bad", "id": "b", "if_none_match": "*"},
            {"op": "rollback", "collection": "bad", "id": "a"},
            {"op": "rollback", "collection": "bad", "id": "a", "steps": 1, "to_version": 1},
            {"op": "rollback", "collection": "bad", "id": "a", "steps": "1"},
            {"op": "rollback", "collection": "bad", "id": "a", "document": {}, "steps": 1},
            {"op": 1, "collection": "bad", "id": "a"},
        ]
        for bad in bad_ops:
            for index in (0, 3):
                with self.subTest(op=bad, index=index):
                    ops = [bad] if index == 0 else good + [bad]
                    body = self.assertError(self.call("POST", "/_batch", ops), 400,
                                            "invalid_batch")
                    self.assertTrue(body["message"].startswith("operation %d: " % index), body)
        for body in ({}, {"ops": good}, '{"op":"delete","collection":"bad","id":"b"}'):
            with self.subTest(body=body):
                self.assertError(self.call("POST", "/_batch", body), 400, "invalid_batch")
        self.assertEqual(self.unchanged(), before)

    def test_failed_batches_leave_no_documents_behind(self):
        """A batch that fails after creating documents keeps none of them,
        in the listing or in memory: a client sending such batches with ever
        new ids must not grow the server."""
        def failing_batch(k):
            ops = [{"op": "put", "collection": "grow", "id": "g%d-%d" % (k, i),
                    "document": {"v": i}} for i in range(999)]
            ops.append({"op": "delete", "collection": "bad", "id": "absent"})
            self.assertError(self.call("POST", "/_batch", ops), 404, "not_found")

        for k in range(5):  # warm-up: buffers, arenas
            failing_batch(k)
        rss_warm = self.server.rss_kb()
        for k in range(5, 105):  # 100,000 ids that were never written
            failing_batch(k)
        rss_after = self.server.rss_kb()
        self.assertEqual(self.ok(self.call("GET", "/grow"), 200).json(), [])
        self.ok(self.call("PUT", "/grow/g7-7", {"v": 1}), 201)
        self.assertEqual(self.ok(self.call("GET", "/grow"), 200).json(), [{"v": 1}])
        # AddressSanitizer holds freed memory in quarantine (256 MiB) and
        # ThreadSanitizer keeps shadow state: the bound holds in the plain
        # build, where it is checked.
        if os.environ.get("SNAPBACK_SANITIZE"):
            return
        self.assertLessEqual(rss_after - rss_warm, 2048,
                             "VmRSS grew from %d kB to %d kB over 100 failed batches"
                             % (rss_warm, rss_after))

    def test_failing_operation_applies_nothing(self):
        before = self.unchanged()
        a_rev = self.doc_state("bad", "a")[0]
        top = self.revision()
        fine = [{"op": "put", "collection": "bad", "id": "a", "document": {"id": "a", "v": 3}},
                {"op": "delete", "collection": "bad", "id": "b"},
                {"op": "create", "collection": "bad", "document": {"id": "n", "v": 1}},
                {"op": "rollback", "collection": "bad", "id": "a", "steps": 1}]
        failing = [
            ({"op": "create", "collection": "bad", "document": {"id": "e"}}, 409,
             "already_exists"),
            ({"op": "put", "collection": "bad", "id": "c", "document": {},
              "if_match": a_rev + 1000}, 412, "precondition_failed"),
            ({"op": "put", "collection": "bad", "id": "c", "document": {},
              "if_none_match": "*"}, 412, "precondition_failed"),
            ({"op": "delete", "collection": "bad", "id": "x"}, 404, "not_found"),
            ({"op": "delete", "collection": "bad", "id": "c", "if_match": a_rev}, 412,
             "precondition_failed"),
            ({"op": "rollback", "collection": "bad", "id": "x", "steps": 1}, 404, "not_found"),
            ({"op": "rollback", "collection": "bad", "id": "c", "steps": 1,
              "if_match": a_rev}, 412, "precondition_failed"),
            ({"op": "rollback", "collection": "bad", "id": "c", "steps": 5}, 409,
             "history_exhausted"),
            ({"op": "rollback", "collection": "bad", "id": "c", "to_version": top + 1000}, 422,
             "future_revision"),
            ({"op": "create", "collection": "bad", "document": {"name": "x"}}, 422,
             "missing_key"),
            ({"op": "put", "collection": "bad", "id": "c", "document": {"id": "d"}}, 422,
             "key_mismatch"),
            # An operation sees the ones before it: "n" exists from op 2 on.
            ({"op": "create", "collection": "bad", "document": {"id": "n"}}, 409,
             "already_exists"),
        ]
        for op, status, code in failing:
            with self.subTest(op=op):
                r = self.call("POST", "/_batch", fine + [op], write_headers("failing"))
                body = self.assertError(r, status, code)
                self.assertEqual((body.get("index"), body.get("operation")), (4, op["op"]),
                                 body)
                self.assertTrue(body["message"].startswith("operation 4: "), body)
                self.assertEqual(xrev(r), top)
        self.assertEqual(self.unchanged(), before)
        self.assertError(self.call("GET", "/_changesets/failing"), 404, "change_set_not_found")

        # Nor does a failed write leave a new collection behind.
        listed = self.ok(self.call("GET", "/_collections"), 200).json()
        r = self.call("POST", "/_batch", [{"op": "put", "collection": "ghost", "id": "g",
                                           "document": {"id": "g"}}, failing[3][0]])
        self.assertError(r, 404, "not_found")
        r = self.call("PUT", "/ghost2/g", {"id": "g"}, {"If-Match": '"1"'})
        self.assertError(r, 412, "precondition_failed")
        self.assertEqual(self.ok(self.call("GET", "/_collections"), 200).json(), listed)

    def test_bad_parameters(self):
        before = self.unchanged()
        for query in ("since=yesterday", "since=2026-13-01T00:00:00Z", "since=",
                      "since=2026-12-03T10:00:00", "since=2026-12-03", "limit=0", "limit=1001",
                      "limit=-1", "limit=abc", "limit=", "limit=1.5", "before=0", "before=-1",
                      "before=x", "before="):
            with self.subTest(query=query):
                self.assertError(self.call("GET", "/_changesets?" + query), 400,
                                 "invalid_parameter")
        for actor in ("", "a%09b", "%C3%A9", "a" * 129):
            self.assertError(self.call("GET", "/_changesets?actor=" + actor), 400,
                             "invalid_actor")
        self.assertError(self.call("GET", "/_changesets?step=1"), 400, "unknown_parameter")
        self.assertError(self.call("GET", "/_changesets/cs-a?limit=1"), 400, "unknown_parameter")
        for query in ("dry_run=yes", "dry_run=1", "dry_run=", "force=yes", "force=0",
                      "force=truex", "dry_run=true&force=on"):
            with self.subTest(query=query):
                self.assertError(self.call("POST", "/_changesets/cs-a/rollback?" + query), 400,
                                 "invalid_parameter")
        self.assertError(self.call("POST", "/_changesets/cs-a/rollback?steps=1"), 400,
                         "unknown_parameter")
        for body in ("{}", '{"force":true}', "[]"):
            self.assertError(self.call("POST", "/_changesets/cs-a/rollback", body), 400,
                             "unexpected_body")
        for as_of in ("0", "x", "-1", ""):
            self.assertError(self.call("GET", "/bad?as_of=" + as_of), 400, "invalid_parameter")
        self.assertError(self.call("GET", "/bad?as_of=%d" % (before["rev"] + 1000)), 422,
                         "future_revision")
        self.assertEqual(self.unchanged(), before)
        # The valid forms of the same parameters are taken.
        for query in ("since=2000-01-01T00:00:00Z", "since=2000-01-01T00:00:00.123456Z",
                      "limit=1", "limit=1000", "before=1", "actor=a%20b"):
            self.ok(self.call("GET", "/_changesets?" + query), 200)
        self.ok(self.call("POST", "/_changesets/cs-a/rollback?dry_run=false&force=false"), 200)
        self.ok(self.call("POST", "/_changesets/cs-a/rollback?dry_run=true&force=true"), 200)
        self.assertEqual(self.doc_state("bad", "a")[1], {"id": "a", "v": 1})


class PrunedHistoryTest(ChangeSetCase):
    def test_rollback_of_a_pruned_change_set(self):
        self.start("--history", "2", "--retain", "2s")
        z1 = rev_of(self.ok(self.call("PUT", "/old/z", {"id": "z", "v": 1}), 201))
        for v in (2, 3):
            self.ok(self.call("PUT", "/old/z", {"id": "z", "v": v}), 200)

        # X updates A and C and creates B; after the retention, A is written
        # three times by others.
        for i in ("a", "c"):
            self.ok(self.call("PUT", "/p/" + i, {"id": i, "by": "w"}, write_headers("w")), 201)
        for i in ("a", "c"):
            self.ok(self.call("PUT", "/p/" + i, {"id": i, "by": "x"}, write_headers("x")), 200)
        self.ok(self.call("PUT", "/p/b", {"id": "b", "by": "x"}, write_headers("x")), 201)
        time.sleep(2.5)  # past --retain: x's versions to restore are no longer kept
        # A snapshot listing of a state no longer retained is refused; an
        # error reports the store's revision.
        r = self.call("GET", "/old?as_of=%d" % z1)
        self.assertError(r, 410, "history_exhausted")
        with self.subTest("X-Revision of a refused listing"):
            self.assertEqual(xrev(r), self.revision())
        self.assertEqual(self.documents("old"), {"z": {"id": "z", "v": 3}})
        for n in (1, 2, 3):
            self.ok(self.call("PUT", "/p/a", {"id": "a", "by": "y%d" % n},
                              write_headers("y%d" % n)), 200)

        info = self.changeset("x")
        self.assertEqual((info["writes"], info["restorable"]), (3, False))
        recorded = {d["id"]: d for d in info["documents"]}
        self.assertEqual((recorded["a"]["restorable"], recorded["c"]["restorable"]),
                         (False, False))
        self.assertIsNone(recorded["b"]["before_revision"])

        top = self.revision()
        before = {i: self.history("p", i) for i in "abc"}
        r = self.undo("x", 409)
        body = r.json()
        plan = self.assertRollback(body, "x", False, False, False)
        # C's state before x is gone: lost.  A is lost too, and written by
        # others since: the answer says conflict or lost, and its code follows.
        self.assertEqual(plan[("p", "c")]["state"], "lost")
        self.assertEqual(plan[("p", "b")]["state"], "clean")
        self.assertIn(plan[("p", "a")]["state"], ("lost", "conflict"))
        code = "change_set_conflict" if plan[("p", "a")]["state"] == "conflict" \
            else "history_exhausted"
        self.assertError(r, 409, code)
        self.assertEqual(self.revision(), top)
        self.assertEqual({i: self.history("p", i) for i in "abc"}, before)

        # Forced: B goes, A and C cannot be restored and stay as they are.
        r = self.undo("x", 200, "?force=true")
        done = self.assertRollback(r.json(), "x", False, True, True)
        self.assertEqual({i: done[("p", i)]["state"] for i in "abc"},
                         {"a": "lost", "b": "clean", "c": "lost"})
        self.assertEqual([done[("p", i)]["revision"] is None for i in "abc"],
                         [True, False, True])
        self.assertEqual(self.doc_state("p", "b"), (None, None))
        self.assertEqual({i: self.history("p", i) for i in "ac"},
                         {i: before[i] for i in "ac"})


# ----------------------------------------------------------------------
# 5. Restarts, compaction, pinning


class RecoveryTest(ChangeSetCase):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory(prefix="snapback-changesets-")
        self.data = os.path.join(self.tmp.name, "data")

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.tmp.cleanup()

    def observe(self, names):
        """What a client sees of the change sets `names` and collection c."""
        seen = {cs: self.changeset(cs) for cs in names}
        seen["list"] = self.ok(self.call("GET", "/_changesets?limit=1000"), 200).json()
        seen["docs"] = self.documents("c")
        return seen

    def restart(self, *options):
        self.server.stop()
        self.start(*options, data_dir=self.data)
        log = self.server.log()
        self.assertNotIn("level=error", log)
        self.assertNotIn("level=warn", log)

    def test_restart(self):
        self.start(data_dir=self.data)
        for n in range(6):
            self.ok(self.call("PUT", "/c/d%d" % n, {"id": "d%d" % n, "v": 0},
                              write_headers("base")), 201)
        self.batch([{"op": "put", "collection": "c", "id": "d%d" % n,
                     "document": {"id": "d%d" % n, "v": "p"}} for n in (0, 1, 2)]
                   + [{"op": "create", "collection": "c", "document": {"id": "new", "v": "p"}}],
                   cs="p", actor="ann")
        after_p = self.documents("c")
        undo_p = self.undo("p", 200, cs="undo-p", actor="bob").json()
        self.assertEqual(undo_p["rollback_change_set"], "undo-p")
        before_q = self.documents("c")
        for n in (3, 4):
            self.ok(self.call("PUT", "/c/d%d" % n, {"id": "d%d" % n, "v": "q"},
                              write_headers("q")), 200)
        self.ok(self.call("DELETE", "/c/d5", None, write_headers("q")), 204)
        after_q = self.documents("c")

        seen = self.observe(("base", "p", "undo-p", "q"))
        self.restart()
        self.assertEqual(self.observe(("base", "p", "undo-p", "q")), seen)

        # A change set, and the rollback of another, are still undone.
        r = self.undo("q", 200).json()
        self.assertEqual(r["summary"]["clean"], 3)
        self.assertEqual(self.documents("c"), before_q)
        r = self.undo("undo-p", 200).json()
        self.assertEqual(r["summary"]["clean"], 4)
        self.assertEqual(self.documents("c"), after_p)
        self.assertNotEqual(after_q, after_p)

    def snapshots(self):
        return [int(m.group(1), 16) for m in map(SNAP.match, os.listdir(self.data)) if m]

    def test_compaction(self):
        options = ("--history", "2", "--compact-ratio", "1", "--compact-min", "1K")
        self.start(*options, data_dir=self.data)
        for n in range(5):
            self.ok(self.call("PUT", "/c/d%d" % n, {"id": "d%d" % n, "v": 0},
                              write_headers("base")), 201)
        base = self.documents("c")
        # p writes d0 five times: the ring of 2 drops its state before p,
        # which p keeps for its undo.
        for v in range(1, 6):
            self.ok(self.call("PUT", "/c/d0", {"id": "d0", "v": v}, write_headers("p")), 200)
        self.ok(self.call("PUT", "/c/n0", {"id": "n0", "v": 1}, write_headers("p")), 201)
        after_p = self.documents("c")
        wal = max(int(m.group(1), 16) for m in map(WAL.match, os.listdir(self.data)) if m)

        # Writes until a compaction that began after p's writes has finished.
        filler = "f" * 200
        for n in range(4000):
            self.ok(self.call("PUT", "/fill/f", {"id": "f", "n": n, "pad": filler},
                              write_headers("filler")), 201 if n == 0 else 200)
            if n % 50 == 49 and any(seq > wal for seq in self.snapshots()):
                break
        self.assertTrue(any(seq > wal for seq in self.snapshots()),
                        "no compaction ran: %r" % sorted(os.listdir(self.data)))

        seen = self.observe(("base", "p"))
        self.restart(*options)
        self.assertEqual(self.observe(("base", "p")), seen)
        r = self.undo("p", 200).json()
        self.assertEqual(r["summary"]["restored"], 2)
        self.assertEqual(self.documents("c"), base)  # n0 included: absent again
        r = self.undo(r["rollback_change_set"], 200).json()
        self.assertEqual(self.documents("c"), after_p)


class PinningTest(ChangeSetCase):
    def test_undo_reaches_past_the_ring(self):
        self.start("--history", "4")
        r0 = rev_of(self.ok(self.call("PUT", "/c/d", {"id": "d", "v": 0},
                                      write_headers("base")), 201))
        revs = {"d": [], "n": []}
        for v in range(1, 11):
            for i in ("d", "n"):
                r = self.ok(self.call("PUT", "/c/" + i, {"id": i, "v": v}, write_headers("p")),
                            201 if (i, v) == ("n", 1) else 200)
                revs[i].append(rev_of(r))
        versions = self.ok(self.call("GET", "/c/d/versions"), 200).json()
        self.assertEqual(len(versions), 4)
        self.assertNotIn(r0, [v["version"] for v in versions])

        info = self.changeset("p")
        self.assertEqual((info["writes"], info["restorable"]), (20, True))
        self.assertEqual({d["id"]: (d["revisions"], d["before_revision"], d["restorable"])
                          for d in info["documents"]},
                         {"d": (revs["d"], r0, True), "n": (revs["n"], None, True)})

        r = self.undo("p", 200).json()
        self.assertEqual(r["summary"], {"documents": 2, "clean": 2, "conflicts": 0, "lost": 0,
                                        "unchanged": 0, "restored": 2})
        self.assertEqual(self.doc_state("c", "d")[1], {"id": "d", "v": 0})
        self.assertEqual(self.doc_state("c", "n"), (None, None))
        newest = self.ok(self.call("GET", "/c/d/versions"), 200).json()[0]
        self.assertEqual((newest["op"], newest["restored"]), ("rollback", r0))
        self.undo(r["rollback_change_set"], 200)
        self.assertEqual(self.doc_state("c", "d")[1], {"id": "d", "v": 10})
        self.assertEqual(self.doc_state("c", "n")[1], {"id": "n", "v": 10})


# ----------------------------------------------------------------------
# 6. Idempotency keys


class IdempotencyTest(ChangeSetCase):
    SAME = ("etag", "location", "x-change-set", "x-revision", "content-type")

    def assertReplay(self, first, again):
        self.assertIsNone(first.header("idempotent-replayed"), first)
        self.assertEqual(again.header("idempotent-replayed"), "true", again)
        self.assertEqual((again.status, again.body), (first.status, first.body))
        self.assertEqual({h: again.header(h) for h in self.SAME},
                         {h: first.header(h) for h in self.SAME})

    def versions(self, path):
        return len(self.ok(self.call("GET", path + "/versions"), 200).json())

    def test_put(self):
        self.start()
        for cs in (None, "idem"):
            path = "/c/put-%s" % cs
            hdrs = write_headers(cs, key="k-%s" % cs)
            first = self.ok(self.call("PUT", path, {"v": 1}, hdrs), 201)
            top = self.revision()
            again = self.ok(self.call("PUT", path, {"v": 1}, hdrs), 201)
            self.assertReplay(first, again)
            self.assertEqual(self.revision(), top)
            self.assertEqual(self.versions(path), 1)
            if cs is None:
                self.assertRegex(again.header("x-change-set"), AUTO_ID)

            # The same key with any other request is refused.
            for method, target, body, h in (
                    ("PUT", path, {"v": 2}, hdrs),
                    ("PUT", path + "x", {"v": 1}, hdrs),
                    ("DELETE", path, None, hdrs),
                    ("PUT", path, {"v": 1}, dict(hdrs, **{"X-Change-Set": "other"}))):
                self.assertError(self.call(method, target, body, h), 422,
                                 "idempotency_key_reused")
            self.assertEqual(self.revision(), top)
            self.assertEqual(self.versions(path), 1)
            self.assertEqual(self.doc_state("c", path[3:])[1], {"v": 1})

    def test_failures_are_not_remembered(self):
        self.start()
        self.ok(self.call("POST", "/c", {"id": "a"}), 201)
        hdrs = write_headers(key="create-a")
        self.assertError(self.call("POST", "/c", {"id": "a", "v": 2}, hdrs), 409,
                         "already_exists")
        self.ok(self.call("DELETE", "/c/a"), 204)
        r = self.ok(self.call("POST", "/c", {"id": "a", "v": 2}, hdrs), 201)
        self.assertIsNone(r.header("idempotent-replayed"))
        self.assertEqual(self.doc_state("c", "a")[1], {"id": "a", "v": 2})
        again = self.ok(self.call("POST", "/c", {"id": "a", "v": 2}, hdrs), 201)
        self.assertReplay(r, again)
        self.assertEqual(self.versions("/c/a"), 3)

    def test_batch(self):
        self.start()
        ops = [{"op": "create", "collection": "c", "document": {"id": "b%d" % n}}
               for n in range(3)]
        hdrs = write_headers("idem-batch", key="batch-1")
        first = self.batch(ops, cs="idem-batch", key="batch-1")
        top = self.revision()
        again = self.ok(self.call("POST", "/_batch", ops, hdrs), 200)
        self.assertReplay(first, again)
        self.assertEqual(self.revision(), top)
        for n in range(3):
            self.assertEqual(self.versions("/c/b%d" % n), 1)
        self.assertEqual(self.changeset("idem-batch")["writes"], 3)
        self.assertError(self.call("POST", "/_batch", ops[:2], hdrs), 422,
                         "idempotency_key_reused")
        self.assertEqual(self.revision(), top)

    def test_change_set_rollback(self):
        self.start()
        for i in ("a", "b"):
            self.ok(self.call("PUT", "/c/" + i, {"v": 1}, write_headers("cs")), 201)
        first = self.undo("cs", 200, key="undo-1")
        top = self.revision()
        again = self.undo("cs", 200, key="undo-1")
        self.assertReplay(first, again)
        self.assertEqual(self.revision(), top)
        self.assertEqual(self.versions("/c/a"), 2)
        for query in ("?dry_run=true", "?force=true"):
            self.assertError(self.undo("cs", 422, query, key="undo-1"), 422,
                             "idempotency_key_reused")
        self.assertError(self.undo("cs", 422, cs="named", key="undo-1"), 422,
                         "idempotency_key_reused")
        self.assertEqual(self.revision(), top)


# ----------------------------------------------------------------------
# 7. Headers and the change-set listing


class HeaderTest(ChangeSetCase):
    def test_x_revision_on_every_response(self):
        self.start()
        conn = self.conn
        rev = 0

        def answer(method, path, body=None, headers=None, status=None, expect=None):
            r = call(conn, method, path, body, headers)
            if status is not None:
                self.assertEqual(r.status, status, "%s %s: %r" % (method, path, r))
            self.assertEqual(xrev(r), rev if expect is None else expect,
                             "%s %s: %r" % (method, path, r))
            return r

        answer("GET", "/_health", status=200)
        answer("GET", "/h", status=200)
        answer("GET", "/_changesets", status=200)
        r = call(conn, "POST", "/h", {"id": "a", "v": 1})
        rev = rev_of(r)
        self.assertEqual(xrev(r), rev)
        for method, path, body, status in (("PUT", "/h/a", {"id": "a", "v": 2}, 200),
                                           ("PUT", "/h/b", {"id": "b"}, 201),
                                           ("DELETE", "/h/b", None, 204),
                                           ("POST", "/h/b/rollback", None, 200),
                                           ("POST", "/h/a/rollback", {"steps": 1}, 200)):
            r = call(conn, method, path, body)
            self.assertEqual(r.status, status, r)
            rev = rev_of(r)
            self.assertEqual(xrev(r), rev, "%s %s" % (method, path))
        r = call(conn, "POST", "/_batch", [{"op": "put", "collection": "h", "id": "c",
                                            "document": {"id": "c"}}], {"X-Change-Set": "hb"})
        rev = r.json()["revision"]
        self.assertEqual(xrev(r), rev)

        # Reads are made at the store's revision, or at the one asked for.
        answer("GET", "/_health", status=200)
        answer("GET", "/h", status=200)
        answer("GET", "/h?as_of=2", status=200, expect=2)
        answer("GET", "/h/a", status=200)
        answer("GET", "/h/a?as_of=1", status=200, expect=1)
        answer("GET", "/h/a/versions", status=200)
        answer("GET", "/h/a/versions/1", status=200)
        answer("GET", "/_changesets", status=200)
        answer("GET", "/_changesets/hb", status=200)
        answer("POST", "/_changesets/hb/rollback?dry_run=true", status=200)

        # Errors report the store's revision.
        for method, path, body, headers, status in (
                ("GET", "/h/zz", None, None, 404),
                ("GET", "/h?limit=0", None, None, 400),
                ("GET", "/h?as_of=99999", None, None, 422),
                ("GET", "/h/a?as_of=99999", None, None, 422),
                ("GET", "/h/zz?as_of=1", None, None, 404),
                ("GET", "/", None, None, 404),
                ("PATCH", "/h/a", None, None, 405),
                ("POST", "/h", {"id": "a"}, None, 409),
                ("PUT", "/h/a", "{", None, 400),
                ("PUT", "/h/a", "{}", {"Content-Type": "text/plain"}, 415),
                ("PUT", "/h/a", {}, {"If-Match": '"1"'}, 412),
                ("PUT", "/h/a", {"id": "x"}, None, 422),
                ("POST", "/_batch", [], None, 400),
                ("GET", "/_changesets/nobody", None, None, 404),
                ("POST", "/_changesets/h@/rollback", None, None, 400),
                ("PUT", "/h/a", {}, {"X-Actor": ""}, 400)):
            with self.subTest(method=method, path=path, status=status):
                answer(method, path, body, headers, status=status)

        # Applied and refused change-set rollbacks.
        r = call(conn, "POST", "/_changesets/hb/rollback")
        self.assertEqual(r.status, 200, r)
        rev = r.json()["revision"]
        self.assertEqual(xrev(r), rev)
        call(conn, "PUT", "/h/c", {"id": "c", "v": 9}, {"X-Change-Set": "later"})
        rev += 1
        answer("POST", "/_changesets/hb/rollback", status=409)

    def test_x_change_set_on_writes(self):
        self.start()
        ids = []
        for method, path, body, status in (("POST", "/w", {"id": "a"}, 201),
                                           ("PUT", "/w/a", {"id": "a", "v": 2}, 200),
                                           ("PUT", "/w/b", {"id": "b"}, 201),
                                           ("DELETE", "/w/b", None, 204),
                                           ("POST", "/w/a/rollback", None, 200),
                                           ("POST", "/_batch", [{"op": "delete",
                                                                 "collection": "w",
                                                                 "id": "a"}], 200)):
            r = self.ok(self.call(method, path, body), status)
            cs = r.header("x-change-set")
            self.assertRegex(cs or "", AUTO_ID, "%s %s" % (method, path))
            ids.append(cs)
            if path == "/_batch":
                self.assertEqual(r.json()["change_set"], cs)
        self.assertEqual(len(set(ids)), len(ids), "a generated id came twice")

        # Each is a change set of its own, with no actor, that can be undone.
        info = self.changeset(ids[2])
        self.assertEqual((info["id"], info["actor"], info["writes"]), (ids[2], None, 1))
        versions = self.ok(self.call("GET", "/w/a/versions"), 200).json()
        self.assertEqual([v["change_set"] for v in versions],
                         [ids[5], ids[4], ids[1], ids[0]])

        # A named change set is echoed; an undo gets an undo- id unless named.
        r = self.ok(self.call("PUT", "/w/c", {"id": "c"}, write_headers("named", "me")), 201)
        self.assertEqual(r.header("x-change-set"), "named")
        r = self.undo("named", 200)
        self.assertRegex(r.header("x-change-set"), UNDO_ID)
        self.assertEqual(r.json()["rollback_change_set"], r.header("x-change-set"))
        r = self.undo(r.header("x-change-set"), 200, cs="redo")
        self.assertEqual((r.header("x-change-set"), r.json()["rollback_change_set"]),
                         ("redo", "redo"))
        self.assertEqual(self.changeset("redo")["documents"][0]["id"], "c")

        # A made-up id is left out when nothing was written: it would name
        # a change set that does not exist.  A named one is still echoed.
        for method, path, body, status in (("DELETE", "/w/absent", None, 404),
                                           ("PUT", "/w/c", {"id": "other"}, 422),
                                           ("POST", "/_batch", [], 400)):
            r = self.ok(self.call(method, path, body), status)
            self.assertIsNone(r.header("x-change-set"), "%s %s" % (method, path))
        r = self.undo("named", 200, "?dry_run=true")
        self.assertIsNone(r.header("x-change-set"))
        self.assertIsNone(r.json()["rollback_change_set"])
        r = self.undo("named", 200, "?dry_run=true", cs="planned")
        self.assertEqual(r.header("x-change-set"), "planned")
        self.ok(self.call("GET", "/_changesets/planned"), 404)

    def test_nothing_to_undo(self):
        self.start()
        self.ok(self.call("PUT", "/n/a", {"id": "a"}, write_headers("gone")), 201)
        self.ok(self.call("DELETE", "/n/a", None, write_headers("gone")), 204)
        top = self.revision()
        r = self.undo("gone", 200)
        body = r.json()
        plan = self.assertRollback(body, "gone", False, False, body["applied"],
                                   {"documents": 1, "clean": 0, "conflicts": 0, "lost": 0,
                                    "unchanged": 1, "restored": 0})
        self.assertIsNone(plan[("n", "a")]["revision"])
        self.assertEqual((xrev(r), self.revision()), (top, top))


class ListingTest(ChangeSetCase):
    def test_automatic_change_sets_do_not_push_out_named_ones(self):
        """An agent's change set stays undoable however many writes without
        X-Change-Set come after it; of those, the last few are kept."""
        self.start("--change-sets", "10", "--auto-change-sets", "3")
        self.ok(self.call("PUT", "/k/p", {"v": "before"}), 201)
        self.ok(self.call("PUT", "/k/p", {"v": "agent"}, write_headers("agent-1")), 200)
        autos = []
        for i in range(30):
            r = self.ok(self.call("PUT", "/k/q%d" % i, {"v": i}), 201)
            autos.append(r.header("x-change-set"))
        listed = [c["id"] for c in self.flat("/_changesets?limit=100")]
        self.assertEqual(listed, autos[:-4:-1] + ["agent-1"])
        for gone in autos[:-3]:
            self.assertError(self.call("GET", "/_changesets/" + gone), 404,
                             "change_set_not_found")
        self.undo(autos[-1], 200)
        self.ok(self.call("GET", "/k/q29"), 404)
        self.undo("agent-1", 200)
        self.assertEqual(self.ok(self.call("GET", "/k/p"), 200).json(), {"v": "before"})

    def test_list_change_sets(self):
        self.start()
        self.ok(self.call("PUT", "/l/a1", {"v": 1}, write_headers("cs-a", "ann")), 201)
        self.ok(self.call("PUT", "/l/b1", {"v": 1}, write_headers("cs-b")), 201)
        self.ok(self.call("PUT", "/l/b1", {"v": 2}, write_headers("cs-b", "bob")), 200)
        self.ok(self.call("PUT", "/l/b2", {"v": 1}, write_headers("cs-b", "carol")), 201)
        self.ok(self.call("PUT", "/l/c1", {"v": 1}, write_headers("cs-c", "ann")), 201)
        self.ok(self.call("PUT", "/l/a2", {"v": 1}, write_headers("cs-a")), 201)
        self.ok(self.call("PUT", "/l/a1", {"v": 2}, write_headers("cs-a")), 200)

        r = self.ok(self.call("GET", "/_changesets"), 200)
        listed = r.json()
        self.assertIsNone(r.header("link"))
        self.assertEqual([c["id"] for c in listed], ["cs-a", "cs-c", "cs-b"])
        for c in listed:
            self.assertEqual(sorted(c), sorted(CS_INFO))
            self.assertRegex(c["first_time"], TIME)
            self.assertRegex(c["last_time"], TIME)
            self.assertLessEqual(c["first_time"], c["last_time"])
            self.assertIs(c["restorable"], True)
        got = {c["id"]: (c["actor"], c["first_revision"], c["last_revision"], c["writes"],
                         c["documents"]) for c in listed}
        self.assertEqual(got, {"cs-a": ("ann", 1, 7, 3, 2), "cs-b": ("bob", 2, 4, 3, 2),
                               "cs-c": ("ann", 5, 5, 1, 1)})
        self.assertEqual(listed[0], self.with_count(self.changeset("cs-a")))

        # Pages, by the cursor in the Link header.
        self.assertEqual(self.pages("/_changesets?limit=1"), [listed[:1], listed[1:2],
                                                              listed[2:]])
        self.assertEqual(self.flat("/_changesets?limit=2&before=7"), listed[1:])
        self.assertEqual(self.flat("/_changesets?before=5"), listed[2:])
        self.assertEqual(self.flat("/_changesets?before=1"), [])

        # Filters, also kept by the Link header.
        self.assertEqual(self.flat("/_changesets?actor=ann&limit=1"), [listed[0], listed[1]])
        self.assertEqual(self.flat("/_changesets?actor=carol"), [])
        self.assertEqual(self.flat("/_changesets?since=2000-01-01T00:00:00Z&limit=1"), listed)
        self.assertEqual(self.flat("/_changesets?since=2999-01-01T00:00:00Z"), [])
        since = urllib.parse.quote(listed[1]["last_time"], safe="")
        self.assertEqual(self.flat("/_changesets?since=%s&limit=1" % since), listed[:2])

    @staticmethod
    def with_count(info):
        """GET /_changesets/{id} lists the documents that a listing counts."""
        return dict(info, documents=len(info["documents"]))

    def pages(self, path):
        """The non-empty pages of a listing, following its Link headers,
        whose cursor must be the last revision of the page before."""
        out = []
        while path is not None:
            r = self.ok(self.call("GET", path), 200)
            out.append(r.json())
            link, path = r.header("link"), None
            if link is not None:
                m = LINK.match(link)
                self.assertIsNotNone(m, link)
                path = m.group(1)
                url = urllib.parse.urlsplit(path)
                query = urllib.parse.parse_qs(url.query)
                self.assertEqual(url.path, "/_changesets")
                self.assertEqual(query["before"], [str(out[-1][-1]["last_revision"])])
        return [p for p in out if p]

    def flat(self, path):
        """Every change set a listing gives, following its Link headers, which
        must keep its filters."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        out = []
        while path is not None:
            r = self.ok(self.call("GET", path), 200)
            out += r.json()
            link, path = r.header("link"), None
            if link is not None:
                path = LINK.match(link).group(1)
                kept = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
                for name in set(query) - {"before"}:
                    self.assertEqual(kept.get(name), query[name], link)
        return out


if __name__ == "__main__":
    print("SNAPBACK_SEED=%d" % SEED, file=sys.stderr)
    harness.main()
