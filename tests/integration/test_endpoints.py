"""Every endpoint of snapbackd, its statuses and headers, driven with curl.

Tests that share the default server each use their own collection (named
after the test), so they do not see each other's documents.  Tests that
need other options start a server of their own.
"""

import re
import urllib.parse

import harness
from harness import etag, rev_of

AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z$")
LINK = re.compile(r'^<([^>]*)>; rel="next"$')
ROUTES = [  # (path, allowed methods, in the server's Allow order)
    ("/_health", ["GET"]),
    ("/coll", ["GET", "POST"]),
    ("/coll/doc", ["GET", "PUT", "DELETE"]),
    ("/coll/doc/rollback", ["POST"]),
    ("/coll/doc/versions", ["GET"]),
    ("/coll/doc/versions/1", ["GET"]),
]


def doc(id_, **fields):
    d = {"id": id_}
    d.update(fields)
    return d


class DefaultServerTest(harness.ServerTest):
    """Tests on one server with the default options."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.s = self.server
        self.c = "/" + self._testMethodName[len("test_"):]

    def create(self, d, coll=None):
        r = self.s.post(coll or self.c, d)
        self.assertStatus(r, 201)
        return rev_of(r)

    def put(self, id_, d, status=(200, 201)):
        r = self.s.put("%s/%s" % (self.c, id_), d)
        self.assertIn(r.status, status, r)
        return rev_of(r)


class CreateTest(DefaultServerTest):
    def test_create(self):
        r = self.s.post(self.c, None, body='{ "id" : "a",\n "n": 1.50, "e": 1E2, '
                        '"s": "\\u00e9\\n", "b": [1, 2, {"x": null}] }',
                        headers=["Content-Type: application/json"])
        self.assertStatus(r, 201)
        self.assertEqual(r.header("location"), self.c + "/a")
        self.assertRegex(r.header("etag"), r'^"[1-9][0-9]*"$')
        self.assertTrue(r.header("content-type").startswith("application/json"))
        compact = b'{"id":"a","n":1.50,"e":1E2,"s":"\\u00e9\\n","b":[1,2,{"x":null}]}'
        self.assertEqual(r.body, compact)

        g = self.s.get(self.c + "/a")
        self.assertStatus(g, 200)
        self.assertEqual(g.body, compact)
        self.assertEqual(g.header("etag"), r.header("etag"))

    def test_create_content_type_parameters(self):
        r = self.s.post(self.c, None, body='{"id":"a"}',
                        headers=["Content-Type: Application/JSON; charset=utf-8"])
        self.assertStatus(r, 201)

    def test_create_existing(self):
        self.create(doc("a", v=1))
        r = self.s.post(self.c, doc("a", v=2))
        self.assertError(r, 409, "already_exists")
        self.assertEqual(self.s.get(self.c + "/a").json(), doc("a", v=1))

    def test_create_after_delete(self):
        self.create(doc("a", v=1))
        self.assertStatus(self.s.delete(self.c + "/a"), 204)
        r = self.s.post(self.c, doc("a", v=2))
        self.assertStatus(r, 201)
        self.assertEqual(self.s.get(self.c + "/a").json(), doc("a", v=2))

    def test_create_key_errors(self):
        self.assertError(self.s.post(self.c, {"name": "x"}), 422, "missing_key")
        for bad in ({"k": 1}, 1.5, True, False, None, [1], ["a"]):
            self.assertError(self.s.post(self.c, {"id": bad}), 422, "invalid_key_type")
        for bad in ("", "a/b", "x" * 513):
            self.assertError(self.s.post(self.c, {"id": bad}), 422, "invalid_key")
        self.assertEqual(self.s.get(self.c).json(), [])

    def test_integer_keys(self):
        r = self.s.post(self.c, {"id": 42, "v": 1})
        self.assertStatus(r, 201)
        self.assertEqual(r.header("location"), self.c + "/42")
        self.assertEqual(self.s.get(self.c + "/42").json(), {"id": 42, "v": 1})
        r = self.s.post(self.c, {"id": -7})
        self.assertEqual(r.header("location"), self.c + "/-7")
        big = 9223372036854775807
        r = self.s.post(self.c, {"id": big})
        self.assertEqual(r.header("location"), "%s/%d" % (self.c, big))
        self.assertError(self.s.post(self.c, {"id": "42"}), 409, "already_exists")
        self.assertStatus(self.s.put(self.c + "/42", {"id": 42, "v": 2}), 200)
        self.assertError(self.s.put(self.c + "/43", {"id": 42}), 422, "key_mismatch")

    def test_longest_id(self):
        long_id = "x" * 512
        r = self.s.post(self.c, doc(long_id))
        self.assertStatus(r, 201)
        self.assertStatus(self.s.get("%s/%s" % (self.c, long_id)), 200)

    def test_health(self):
        r = self.s.get("/_health")
        self.assertStatus(r, 200)
        self.assertEqual(r.json(), {"status": "ok"})


class ListTest(DefaultServerTest):
    def walk(self, start):
        """Follows rel="next" links from `start`; returns the pages' docs."""
        seen, url, pages = [], start, 0
        while url is not None:
            r = self.s.get(url)
            self.assertStatus(r, 200)
            page = r.json()
            self.assertIsInstance(page, list)
            seen.extend(page)
            pages += 1
            link = r.header("link")
            if link is None:
                url = None
            else:
                m = LINK.match(link)
                self.assertIsNotNone(m, link)
                url = m.group(1)
                self.assertTrue(url.startswith(self.c + "?"), url)
                self.assertTrue(page, "a page with a next link is not empty")
        return seen, pages

    def test_list_empty(self):
        r = self.s.get("/never_written")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"[]")
        self.assertIsNone(r.header("link"))

    def test_pagination(self):
        ids = ["doc-%d" % i for i in range(246)]
        ids += ["a+b@x.io", "josé@x.io", "sp ace", "q?&=#%;,"]
        conn = self.s.connect()
        for i in ids:
            self.assertStatus(harness.request(conn, "POST", self.c, doc(i)), 201)
        self.assertStatus(harness.request(conn, "POST", self.c, doc("gone")), 201)
        self.assertStatus(harness.request(
            conn, "DELETE", self.c + "/gone"), 204)
        conn.close()

        for limit, pages in ((7, 36), (50, 5), (250, 1), (1000, 1)):
            seen, n = self.walk("%s?limit=%d" % (self.c, limit))
            got = [d["id"] for d in seen]
            self.assertEqual(len(got), len(set(got)), "a document was listed twice")
            self.assertEqual(sorted(got), sorted(ids))
            self.assertEqual(n, pages)

        # The default page is 100 documents, and the order is the same each time.
        first = self.s.get(self.c)
        self.assertEqual(len(first.json()), 100)
        self.assertRegex(first.header("link"), r"^<%s\?limit=100&after=[^>]+>; rel=\"next\"$"
                         % re.escape(self.c))
        seen, _ = self.walk(self.c)
        self.assertEqual(seen[:100], first.json())
        seen7, _ = self.walk(self.c + "?limit=7")
        self.assertEqual([d["id"] for d in seen], [d["id"] for d in seen7])

        # The cursor is an id; a percent-encoded one works like the link's.
        after = seen[9]["id"]
        r = self.s.get("%s?limit=3&after=%s" % (self.c, urllib.parse.quote(after, safe="")))
        self.assertEqual(r.json(), seen[10:13])

    def test_limits(self):
        self.create(doc("a"))
        for bad in ("0", "1001", "-1", "abc", "", "1.5"):
            self.assertError(self.s.get("%s?limit=%s" % (self.c, bad)), 400,
                             "invalid_parameter")
        self.assertStatus(self.s.get(self.c + "?limit=1000"), 200)
        self.assertStatus(self.s.get(self.c + "?limit=1"), 200)
        self.assertError(self.s.get(self.c + "?after=nobody"), 400, "invalid_cursor")


class GetTest(DefaultServerTest):
    def test_get(self):
        rev = self.create(doc("a", v=1))
        r = self.s.get(self.c + "/a")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("etag"), etag(rev))
        self.assertEqual(r.json(), doc("a", v=1))
        self.assertError(self.s.get(self.c + "/b"), 404, "not_found")
        self.assertError(self.s.get("/nocoll/b"), 404, "not_found")
        self.assertStatus(self.s.delete(self.c + "/a"), 204)
        self.assertError(self.s.get(self.c + "/a"), 404, "not_found")

    def test_as_of(self):
        r1 = self.create(doc("a", v=1))
        r2 = self.put("a", doc("a", v=2))
        self.create(doc("other"))
        r = self.s.get("%s/a?as_of=%d" % (self.c, r1))
        self.assertStatus(r, 200)
        self.assertEqual(r.json(), doc("a", v=1))
        self.assertEqual(r.header("etag"), etag(r1))
        r = self.s.get("%s/a?as_of=%d" % (self.c, r2 + 1))
        self.assertEqual((r.json(), r.header("etag")), (doc("a", v=2), etag(r2)))

        if r1 > 1:
            self.assertError(self.s.get("%s/a?as_of=%d" % (self.c, r1 - 1)), 404, "not_found")
        r3 = rev_of(self.s.delete(self.c + "/a"))
        self.assertError(self.s.get("%s/a?as_of=%d" % (self.c, r3)), 404, "not_found")
        self.assertEqual(self.s.get("%s/a?as_of=%d" % (self.c, r3 - 1)).json(), doc("a", v=2))
        self.assertError(self.s.get("%s/a?as_of=%d" % (self.c, r3 + 1000)), 422,
                         "future_revision")
        for bad in ("0", "x", "-1", ""):
            self.assertError(self.s.get("%s/a?as_of=%s" % (self.c, bad)), 400,
                             "invalid_parameter")


class PutTest(DefaultServerTest):
    def test_put_create_and_replace(self):
        r = self.s.put(self.c + "/a", doc("a", v=1))
        self.assertStatus(r, 201)
        self.assertEqual(r.header("location"), self.c + "/a")
        r1 = rev_of(r)
        r = self.s.put(self.c + "/a", doc("a", v=2))
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("location"))
        self.assertGreater(rev_of(r), r1)
        self.assertEqual(r.json(), doc("a", v=2))
        # The key field may be left out of a PUT body.
        r = self.s.put(self.c + "/a", {"v": 3})
        self.assertStatus(r, 200)
        self.assertEqual(self.s.get(self.c + "/a").json(), {"v": 3})

    def test_put_key_mismatch(self):
        self.assertError(self.s.put(self.c + "/a", doc("b")), 422, "key_mismatch")
        self.assertError(self.s.put(self.c + "/a", {"id": 1.0}), 422, "invalid_key_type")
        self.assertError(self.s.get(self.c + "/a"), 404, "not_found")

    def test_if_match(self):
        r1 = self.put("a", doc("a", v=1))
        r = self.s.put(self.c + "/a", doc("a", v=2), headers=["If-Match: " + etag(r1 + 100)])
        self.assertError(r, 412, "precondition_failed")
        r = self.s.put(self.c + "/a", doc("a", v=2), headers=["If-Match: " + etag(r1)])
        self.assertStatus(r, 200)
        r2 = rev_of(r)
        r = self.s.put(self.c + "/a", doc("a", v=3), headers=["If-Match: " + etag(r1)])
        self.assertError(r, 412, "precondition_failed")
        r = self.s.put(self.c + "/a", doc("a", v=3), headers=["If-Match: *"])
        self.assertStatus(r, 200)
        self.assertGreater(rev_of(r), r2)
        self.assertEqual(self.s.get(self.c + "/a").json(), doc("a", v=3))

        r = self.s.put(self.c + "/b", doc("b"), headers=["If-Match: *"])
        self.assertError(r, 412, "precondition_failed")
        self.assertError(self.s.get(self.c + "/b"), 404, "not_found")

        # A deleted document matches neither its old ETag nor "*".
        r3 = rev_of(self.s.get(self.c + "/a"))
        self.assertStatus(self.s.delete(self.c + "/a"), 204)
        for tag in (etag(r3), "*"):
            r = self.s.put(self.c + "/a", doc("a"), headers=["If-Match: " + tag])
            self.assertError(r, 412, "precondition_failed")

    def test_if_none_match(self):
        r = self.s.put(self.c + "/a", doc("a", v=1), headers=["If-None-Match: *"])
        self.assertStatus(r, 201)
        r = self.s.put(self.c + "/a", doc("a", v=2), headers=["If-None-Match: *"])
        self.assertError(r, 412, "precondition_failed")
        self.assertEqual(self.s.get(self.c + "/a").json(), doc("a", v=1))


class DeleteTest(DefaultServerTest):
    def test_delete(self):
        r1 = self.create(doc("a"))
        r = self.s.delete(self.c + "/a")
        self.assertStatus(r, 204)
        self.assertEqual(r.body, b"")
        self.assertGreater(rev_of(r), r1)
        self.assertError(self.s.get(self.c + "/a"), 404, "not_found")
        self.assertError(self.s.delete(self.c + "/a"), 404, "not_found")
        self.assertError(self.s.delete(self.c + "/never"), 404, "not_found")
        self.assertError(self.s.delete("/nocoll_del/x"), 404, "not_found")
        versions = self.s.get(self.c + "/a/versions").json()
        self.assertEqual([v["op"] for v in versions], ["delete", "create"])
        self.assertIsNone(versions[0]["doc"])
        self.assertEqual(versions[0]["version"], rev_of(r))

    def test_delete_if_match(self):
        r1 = self.create(doc("a"))
        self.assertError(self.s.delete(self.c + "/a", headers=["If-Match: " + etag(r1 + 50)]),
                         412, "precondition_failed")
        self.assertStatus(self.s.delete(self.c + "/a", headers=["If-Match: " + etag(r1)]), 204)
        self.create(doc("b"))
        self.assertStatus(self.s.delete(self.c + "/b", headers=["If-Match: *"]), 204)
        self.assertError(self.s.delete(self.c + "/b", headers=["If-Match: *"]), 412,
                         "precondition_failed")


class RollbackTest(DefaultServerTest):
    def four_versions(self, id_):
        revs = [self.create(doc(id_, v=1))]
        revs += [self.put(id_, doc(id_, v=n)) for n in (2, 3, 4)]
        return revs

    def rollback(self, id_, status, **kw):
        r = self.s.curl("POST", "%s/%s/rollback" % (self.c, id_), **kw)
        self.assertStatus(r, status)
        return r

    def test_rollback_forms(self):
        revs = {i: self.four_versions(i) for i in "abcdef"}
        r = self.rollback("a", 200)  # no body at all, no Content-Type
        self.assertEqual(r.json(), doc("a", v=3))
        self.assertEqual(self.s.get(self.c + "/a").header("etag"), r.header("etag"))
        self.assertGreater(rev_of(r), revs["a"][-1])
        r = self.rollback("b", 200, json_body={"steps": 2})
        self.assertEqual(r.json(), doc("b", v=2))
        r = self.s.curl("POST", self.c + "/c/rollback?steps=3")
        self.assertStatus(r, 200)
        self.assertEqual(r.json(), doc("c", v=1))
        r = self.rollback("d", 200, json_body={"to_version": revs["d"][1]})
        self.assertEqual(r.json(), doc("d", v=2))
        r = self.rollback("e", 200, json_body={})
        self.assertEqual(r.json(), doc("e", v=3))
        r = self.rollback("f", 200, body="", headers=["Content-Type: application/json"])
        self.assertEqual(r.json(), doc("f", v=3))
        for i in "abcdef":
            self.assertEqual(self.s.get("%s/%s" % (self.c, i)).json()["v"],
                             {"a": 3, "b": 2, "c": 1, "d": 2, "e": 3, "f": 3}[i])

    def test_rollback_is_an_undo_stack(self):
        self.four_versions("x")
        self.four_versions("y")
        self.assertEqual(self.rollback("x", 200).json(), doc("x", v=3))
        self.assertEqual(self.rollback("x", 200).json(), doc("x", v=2))
        self.assertEqual(self.rollback("y", 200, json_body={"steps": 2}).json(), doc("y", v=2))
        # Not a toggle: a third step goes further back, not forward to v=3.
        self.assertEqual(self.rollback("x", 200).json(), doc("x", v=1))
        self.assertEqual(self.rollback("y", 200).json(), doc("y", v=1))
        # A write after a rollback is undone back to the rolled-back state.
        self.put("y", doc("y", v=9))
        self.assertEqual(self.rollback("y", 200).json(), doc("y", v=1))

    def test_rollback_create_and_delete(self):
        r1 = self.create(doc("a", v=1))
        r = self.rollback("a", 204)
        self.assertEqual(r.body, b"")
        self.assertGreater(rev_of(r), r1)
        self.assertError(self.s.get(self.c + "/a"), 404, "not_found")
        self.assertEqual(self.s.get(self.c).json(), [])
        newest = self.s.get(self.c + "/a/versions").json()[0]
        self.assertEqual((newest["op"], newest["restored"], newest["doc"]), ("rollback", 0, None))
        # Nothing is older than the absence before the create.
        body = self.assertError(self.rollback("a", 409), 409, "history_exhausted")
        self.assertEqual(body["available"], 0)

        self.create(doc("b", v=1))
        self.put("b", doc("b", v=2))
        self.assertStatus(self.s.delete(self.c + "/b"), 204)
        r = self.rollback("b", 200)
        self.assertEqual(r.json(), doc("b", v=2))
        self.assertEqual(self.s.get(self.c + "/b").json(), doc("b", v=2))
        self.assertEqual(self.rollback("b", 200).json(), doc("b", v=1))
        self.assertEqual(self.rollback("b", 204).body, b"")

    def test_rollback_if_match(self):
        revs = self.four_versions("m")
        stale = ['If-Match: "%d"' % revs[-2]]
        self.assertError(self.rollback("m", 412, headers=stale), 412, "precondition_failed")
        self.assertEqual(self.s.get(self.c + "/m").header("etag"), '"%d"' % revs[-1])
        r = self.rollback("m", 200, headers=['If-Match: "%d"' % revs[-1]])
        self.assertEqual(r.json(), doc("m", v=3))
        # A delete's revision (its answer's ETag) is current for a rollback.
        gone = self.s.delete(self.c + "/m")
        self.assertStatus(gone, 204)
        r = self.rollback("m", 200, json_body={"steps": 1}, headers=["If-Match: " + gone.header("etag")])
        self.assertEqual(r.json(), doc("m", v=3))
        self.assertError(self.rollback("m", 412, headers=["If-Match: " + gone.header("etag")]),
                         412, "precondition_failed")
        for bad in ('If-Match: *', 'If-None-Match: *', 'If-Match: 12'):
            self.assertError(self.rollback("m", 400, headers=[bad]), 400, "invalid_precondition")
        self.assertEqual(self.s.get(self.c + "/m").json(), doc("m", v=3))

    def test_rollback_errors(self):
        self.assertError(self.rollback("nobody", 404), 404, "not_found")
        self.assertError(self.s.post("/nocoll_rb/x/rollback"), 404, "not_found")
        self.create(doc("a"))
        r = self.rollback("a", 422, json_body={"to_version": 10 ** 12})
        self.assertError(r, 422, "future_revision")


class HistoryTest(harness.ServerTest):
    def test_rollback_history_exhausted(self):
        with harness.Server("--history", "3") as s:
            self.server = s
            s.post("/c", doc("a", v=1))
            for n in (2, 3, 4):
                s.put("/c/a", doc("a", v=n))
            before = (s.get("/c/a/versions").body, s.get("/c/a").header("etag"))
            self.assertEqual(len(s.get("/c/a/versions").json()), 3)
            for steps in (3, 4, 1000):
                r = s.post("/c/a/rollback", {"steps": steps})
                body = self.assertError(r, 409, "history_exhausted")
                self.assertEqual(body["available"], 2)
            self.assertError(s.post("/c/a/rollback", {"to_version": 1}), 409,
                             "history_exhausted")
            self.assertEqual((s.get("/c/a/versions").body, s.get("/c/a").header("etag")),
                             before)
            r = s.post("/c/a/rollback", {"steps": 2})
            self.assertStatus(r, 200)
            self.assertEqual(r.json(), doc("a", v=2))
            self.assertEqual(len(s.get("/c/a/versions").json()), 3)

    def test_as_of_trimmed(self):
        with harness.Server("--history", "2") as s:
            self.server = s
            r1 = rev_of(s.post("/c", doc("a", v=1)))
            r2 = rev_of(s.put("/c/a", doc("a", v=2)))
            rev_of(s.put("/c/a", doc("a", v=3)))
            self.assertError(s.get("/c/a?as_of=%d" % r1), 410, "history_exhausted")
            self.assertEqual(s.get("/c/a?as_of=%d" % r2).json(), doc("a", v=2))
            self.assertError(s.get("/c/a/versions/%d" % r1), 404, "version_not_found")


class VersionsTest(DefaultServerTest):
    def test_versions(self):
        r1 = self.create(doc("a", v=1))
        r2 = self.put("a", doc("a", v=2))
        r3 = rev_of(self.s.delete(self.c + "/a"))
        r4 = rev_of(self.rollback_once("a"))
        r = self.s.get(self.c + "/a/versions")
        self.assertStatus(r, 200)
        versions = r.json()
        self.assertEqual([v["version"] for v in versions], [r4, r3, r2, r1])
        self.assertEqual([v["op"] for v in versions], ["rollback", "delete", "update", "create"])
        self.assertEqual([v["doc"] for v in versions],
                         [doc("a", v=2), None, doc("a", v=2), doc("a", v=1)])
        for v in versions:
            self.assertRegex(v["at"], AT)
            # Writes without X-Change-Set get a change set of their own.
            self.assertRegex(v["change_set"], r"^auto-[0-9a-f]{20}$")
            self.assertEqual("restored" in v, v["op"] == "rollback")
            expected_keys = ["version", "op", "at", "change_set"] + (
                ["restored"] if "restored" in v else [])
            self.assertEqual(list(v), expected_keys + ["doc"])
        self.assertEqual(versions[0]["restored"], r2)
        self.assertEqual(len({v["change_set"] for v in versions}), 4, "one change set per write")

        for v in versions:
            one = self.s.get("%s/a/versions/%d" % (self.c, v["version"]))
            self.assertStatus(one, 200)
            self.assertEqual(one.json(), v)
        self.assertError(self.s.get("%s/a/versions/%d" % (self.c, r4 + 1000)), 404,
                         "version_not_found")
        other = self.create(doc("b"))
        self.assertError(self.s.get("%s/a/versions/%d" % (self.c, other)), 404,
                         "version_not_found")
        self.assertError(self.s.get(self.c + "/zz/versions"), 404, "not_found")
        self.assertError(self.s.get(self.c + "/zz/versions/1"), 404, "version_not_found")
        for bad in ("0", "abc", "-1"):
            self.assertError(self.s.get("%s/a/versions/%s" % (self.c, bad)), 400,
                             "invalid_revision")

    def rollback_once(self, id_):
        r = self.s.post("%s/%s/rollback" % (self.c, id_))
        self.assertStatus(r, 200)
        return r


class IdTest(harness.ServerTest):
    def test_ids_are_percent_decoded(self):
        with harness.Server("--key", "users=email") as s:
            self.server = s
            r = s.post("/users", {"email": "a+b@x.io", "v": 1})
            self.assertStatus(r, 201)
            self.assertEqual(r.header("location"), "/users/a%2Bb%40x.io")
            for path in ("/users/a+b@x.io", "/users/a%2Bb%40x.io", "/users/a%2bb%40x.io"):
                self.assertEqual(s.get(path).json(), {"email": "a+b@x.io", "v": 1}, path)
            self.assertError(s.get("/users/a%20b@x.io"), 404, "not_found")  # '+' is no space

            r = s.post("/users", {"email": "josé@x.io", "v": 1})
            self.assertStatus(r, 201)
            created = rev_of(r)
            self.assertEqual(r.header("location"), "/users/jos%C3%A9%40x.io")
            self.assertEqual(s.get("/users/jos%C3%A9@x.io").json()["v"], 1)
            r = s.put("/users/jos%C3%A9@x.io", {"email": "josé@x.io", "v": 2})
            self.assertStatus(r, 200)
            self.assertEqual(s.get("/users/jos%C3%A9%40x.io").json(),
                             {"email": "josé@x.io", "v": 2})
            self.assertStatus(s.post("/users/jos%C3%A9@x.io/rollback"), 200)
            self.assertEqual(s.get("/users/jos%C3%A9@x.io/versions").json()[0]["restored"],
                             created)

            # The key rule is per collection; others keep "id".
            self.assertError(s.post("/users", {"id": "x"}), 422, "missing_key")
            self.assertStatus(s.post("/others", {"id": "x", "email": "y"}), 201)
            self.assertError(s.post("/others", {"email": "z"}), 422, "missing_key")


class MethodTest(DefaultServerTest):
    def test_wrong_methods(self):
        for path, allowed in ROUTES:
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"):
                if method in allowed:
                    continue
                r = self.s.curl(method, path)
                self.assertError(r, 405, "method_not_allowed")
                self.assertEqual(r.header("allow"), ", ".join(allowed), (method, path))

    def test_no_such_endpoint(self):
        for path in ("/", "/c/d/other", "/c/d/versions/1/x", "/c//d", "/c/d/", "/c/"):
            self.assertError(self.s.get(path), 404, "no_such_endpoint")


if __name__ == "__main__":
    harness.main()
