"""The MCP endpoint (POST /_mcp) spoken raw over HTTP.

The stateless revision 2026-07-28, which the official SDK does not speak
yet, runs the whole agent story here: an agent rewrites a collection a
person filled, creates a thousand documents, and everything it did is
undone with one rollback_change_set, checked through the REST API, and the
undo is undone again. Then a battery of bad JSON-RPC, at each revision,
where every request must get its documented status and JSON-RPC error and
change nothing, and the server must go on serving. The SDK-driven scenario
for the older revisions is tests/mcp/test_mcp_sdk.mjs.
"""

import base64
import json

import harness

MODERN = "2026-07-28"
LEGACY = ("2025-11-25", "2025-06-18", "2025-03-26")
ALLOWED = "https://agents.example.com"

TOOLS = {  # name: (readOnlyHint, destructiveHint, idempotentHint), see docs/mcp.md
    "list_collections": (True, False, True),
    "list_documents": (True, False, True),
    "get_document": (True, False, True),
    "list_versions": (True, False, True),
    "put_document": (False, True, True),
    "create_document": (False, False, True),
    "delete_document": (False, True, True),
    "rollback_document": (False, True, False),
    "get_change_set": (True, False, True),
    "list_change_sets": (True, False, True),
    "rollback_change_set": (False, True, True),
}


class Mcp:
    """One MCP client of a server, on a keep-alive connection.

    With version MODERN every request carries its _meta and the mirrored
    headers; with a LEGACY version, initialize() opens a session first.
    """

    def __init__(self, server, version=MODERN, name="raw-test", client_version="1.0"):
        self.server = server
        self.version = version
        self.info = {"name": name, "version": client_version}
        self.conn = server.connect()
        self.session = None
        self.ids = 0

    def close(self):
        self.conn.close()

    def post(self, body, headers=None):
        """POSTs `body` (a str, or JSON-encoded) with the headers given only."""
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        return harness.request(self.conn, "POST", "/_mcp", body, dict(headers or {}))

    def headers(self, method=None, name=None):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.version == MODERN:
            h["MCP-Protocol-Version"] = MODERN
            if method is not None:
                h["Mcp-Method"] = method
            if name is not None:
                h["Mcp-Name"] = name
        elif self.session is not None:
            h["Mcp-Session-Id"] = self.session
            if self.version != "2025-03-26":  # that revision had no version header
                h["MCP-Protocol-Version"] = self.version
        return h

    def message(self, method, params=None):
        self.ids += 1
        params = dict(params or {})
        if self.version == MODERN:
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": self.info,
            }
        return {"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params}

    def request(self, method, params=None, headers=None):
        msg = self.message(method, params)
        h = self.headers(method, (params or {}).get("name"))
        h.update(headers or {})
        return self.post(msg, h)

    def initialize(self, requested=None):
        r = self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                       "params": {"protocolVersion": requested or self.version,
                                  "capabilities": {}, "clientInfo": self.info}},
                      self.headers())
        assert r.status == 200, r
        self.session = r.header("mcp-session-id")
        assert self.session, r
        return r.json()["result"]

    def result(self, method, params=None):
        r = self.request(method, params)
        assert r.status == 200, r
        body = r.json()
        assert "error" not in body, body
        return body["result"]

    def call(self, tool, **args):
        """Calls a tool that must succeed; returns its structured result."""
        result = self.result("tools/call", {"name": tool, "arguments": args})
        assert not result.get("isError"), result
        text = json.loads(result["content"][0]["text"])
        if self.version != "2025-03-26":
            assert result["structuredContent"] == text, result
        return text

    def call_error(self, tool, **args):
        """Calls a tool that must fail as a tool; returns its sentence."""
        result = self.result("tools/call", {"name": tool, "arguments": args})
        assert result.get("isError") is True, result
        assert "structuredContent" not in result, result
        return result["content"][0]["text"]


def listing(server, coll):
    """Every document of a collection through REST, following the pages,
    as the exact bytes of each, sorted."""
    docs, path = [], "/%s?limit=1000" % coll
    while path:
        r = server.get(path)
        assert r.status == 200, r
        page = r.body.decode()
        docs += [d.encode() for d in split_array(page)]
        link = r.header("link")
        path = link[link.index("<") + 1:link.index(">")] if link else None
    return sorted(docs)


def split_array(text):
    """The elements of a JSON array of objects as their exact texts."""
    out, depth, start, in_str, esc = [], 0, None, False, False
    for i, ch in enumerate(text):
        if in_str:
            esc, in_str = (False, in_str) if esc else (ch == "\\", ch != '"')
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                out.append(text[start:i + 1])
    return out


class McpTest(harness.ServerTest):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("--in-memory", "--allow-origin", ALLOWED)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def client(self, *args, **kw):
        c = Mcp(self.server, *args, **kw)
        self.addCleanup(c.close)
        return c

    def assertRpcError(self, resp, status, code, with_id=True):
        where = "%r%s" % (resp, self.server.stderr())
        self.assertEqual(resp.status, status, where)
        self.assertTrue(resp.header("content-type").startswith("application/json"), where)
        body = resp.json()
        self.assertEqual(body["jsonrpc"], "2.0", where)
        self.assertEqual(body["error"]["code"], code, where)
        self.assertTrue(body["error"]["message"], where)
        self.assertEqual("id" in body, with_id, where)
        return body


class StatelessTest(McpTest):
    def test_discover_and_tools(self):
        c = self.client()
        found = c.result("server/discover")
        self.assertEqual(found["supportedVersions"], [MODERN] + list(LEGACY))
        self.assertEqual(found["resultType"], "complete")
        self.assertIn("tools", found["capabilities"])
        self.assertEqual(found["cacheScope"], "public")
        self.assertGreater(found["ttlMs"], 0)
        self.assertEqual(found["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
                         "snapbackd")

        listed = c.result("tools/list")
        self.assertEqual(listed["resultType"], "complete")
        self.assertIn("ttlMs", listed)
        tools = {t["name"]: t for t in listed["tools"]}
        self.assertEqual(set(tools), set(TOOLS))
        for name, (ro, destructive, idempotent) in TOOLS.items():
            t = tools[name]
            a = t["annotations"]
            self.assertEqual((a["readOnlyHint"], a["destructiveHint"], a["idempotentHint"]),
                             (ro, destructive, idempotent), name)
            self.assertFalse(a["openWorldHint"], name)
            self.assertEqual(t["inputSchema"]["type"], "object", name)
            self.assertFalse(t["inputSchema"]["additionalProperties"], name)
            self.assertEqual(t["outputSchema"]["type"], "object", name)
            self.assertTrue(t["title"] and t["description"], name)
            if not ro:
                props = t["inputSchema"]["properties"]
                self.assertIn("change_set", props, name)
                if name != "rollback_change_set":
                    self.assertIn("undo", t["outputSchema"]["properties"], name)

    def test_agent_damage_and_undo(self):
        """A person's ledger, an agent that rewrites it and adds a thousand
        entries, and one call that puts everything back."""
        srv, coll, task = self.server, "ledger", "task-7f3a"
        for i in range(10):
            r = srv.put("/%s/s%d" % (coll, i), {"id": "s%d" % i, "amount": i * 1.5},
                        headers=["X-Change-Set: person-entry"])
            self.assertStatus(r, 201)
        before = listing(srv, coll)

        c = self.client(name="ledger-bot")
        for i in range(1000):
            out = c.call("create_document", collection=coll, change_set=task,
                         document={"id": "a%04d" % i, "amount": i})
            self.assertEqual(out["change_set"], task)
            self.assertEqual(out["undo_change_set"],
                             {"tool": "rollback_change_set", "arguments": {"change_set": task}})
        for i in range(1000):
            c.call("put_document", collection=coll, id="a%04d" % i, change_set=task,
                   document={"id": "a%04d" % i, "amount": -i})
        for i in range(10):
            c.call("put_document", collection=coll, id="s%d" % i, change_set=task,
                   document={"id": "s%d" % i, "amount": 0})
        for i in range(3):
            c.call("delete_document", collection=coll, id="s%d" % i, change_set=task)
        damaged = listing(srv, coll)
        self.assertEqual(len(damaged), 1007)

        shown = c.call("get_change_set", change_set=task)
        self.assertEqual(shown["actor"], "ledger-bot")
        self.assertEqual(shown["writes"], 2013)
        self.assertEqual(len(shown["documents"]), 1010)

        plan = c.call("rollback_change_set", change_set=task, dry_run=True)
        self.assertFalse(plan["applied"])
        self.assertIsNone(plan["undo"])
        self.assertEqual(plan["summary"]["documents"], 1010)
        self.assertEqual(plan["summary"]["clean"], 1010)
        self.assertEqual(listing(srv, coll), damaged)

        done = c.call("rollback_change_set", change_set=task)
        self.assertTrue(done["applied"])
        undo_id = done["rollback_change_set"]
        self.assertTrue(undo_id.startswith("undo-"), done)
        self.assertEqual(done["undo"],
                         {"tool": "rollback_change_set", "arguments": {"change_set": undo_id}})
        self.assertEqual(listing(srv, coll), before)  # every entry back, byte for byte

        redo = c.call(done["undo"]["tool"], **done["undo"]["arguments"])
        self.assertTrue(redo["applied"])
        self.assertEqual(listing(srv, coll), damaged)

    def test_default_change_set_is_per_client(self):
        srv = self.server
        a, b = self.client(name="bot a", client_version="2"), self.client(name="bot-b")
        first = a.call("put_document", collection="shared", id="x", document={"id": "x"})
        again = a.call("put_document", collection="shared", id="y", document={"id": "y"})
        other = b.call("put_document", collection="shared", id="z", document={"id": "z"})
        cs = first["change_set"]
        self.assertRegex(cs, r"^mcp-client-bot_a-[0-9a-f]{16}$")
        self.assertEqual(again["change_set"], cs)
        self.assertRegex(other["change_set"], r"^mcp-client-bot-b-[0-9a-f]{16}$")
        same = self.client(name="bot a", client_version="2")
        self.assertEqual(same.call("delete_document", collection="shared", id="y")["change_set"],
                         cs)

        listed = a.call("list_change_sets", actor="bot a")
        self.assertEqual([s["id"] for s in listed["change_sets"]], [cs])
        a.call("rollback_change_set", change_set=cs)
        self.assertStatus(srv.get("/shared/x"), 404)
        self.assertStatus(srv.get("/shared/y"), 404)
        self.assertStatus(srv.get("/shared/z"), 200)  # the other client's write stays

    def test_each_write_names_its_own_undo(self):
        srv, c = self.server, self.client()
        created = c.call("create_document", collection="undo", document={"id": "d", "v": 1})
        self.assertEqual(created["undo"]["tool"], "delete_document")
        put = c.call("put_document", collection="undo", id="d", document={"id": "d", "v": 2})
        self.assertEqual(put["undo"], {"tool": "rollback_document", "arguments": {
            "collection": "undo", "id": "d", "to_version": put["revision"] - 1,
            "if_match": put["revision"]}})
        deleted = c.call("delete_document", collection="undo", id="d")
        self.assertEqual(deleted["undo"]["arguments"]["if_match"], deleted["revision"])

        c.call(deleted["undo"]["tool"], **deleted["undo"]["arguments"])
        self.assertEqual(srv.get("/undo/d").body, b'{"id":"d","v":2}')
        # Undos name the version they undo: the put's no longer holds once
        # anything (here the undo of the delete) was written after it.
        text = c.call_error(put["undo"]["tool"], **put["undo"]["arguments"])
        self.assertIn("precondition_failed", text)
        self.assertEqual(srv.get("/undo/d").body, b'{"id":"d","v":2}')
        args = dict(put["undo"]["arguments"])
        del args["if_match"]
        c.call(put["undo"]["tool"], **args)
        self.assertEqual(srv.get("/undo/d").body, b'{"id":"d","v":1}')
        c.call("put_document", collection="undo", id="d", document={"id": "d", "v": 3})
        back = c.call("rollback_document", collection="undo", id="d", steps=1)
        self.assertEqual(back["document"], {"id": "d", "v": 1})
        self.assertFalse(back["deleted"])

        # The undo of a create deletes only the version it created.
        text = c.call_error(created["undo"]["tool"], **created["undo"]["arguments"])
        self.assertIn("if_match", text)
        self.assertStatus(srv.get("/undo/d"), 200)

    def test_documents_pass_through_verbatim(self):
        srv, c = self.server, self.client()
        raw = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"put_document",'
               '"arguments":{"collection":"exact","id":"n","document":{"id":"n","p":0.10,'
               '"e":1E2,"s":"caf\\u00e9"}},"_meta":{"io.modelcontextprotocol/protocolVersion":'
               '"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')
        r = c.post(raw, c.headers("tools/call", "put_document"))
        self.assertStatus(r, 200)
        self.assertFalse(r.json()["result"].get("isError"), r)
        expect = b'{"id":"n","p":0.10,"e":1E2,"s":"caf\\u00e9"}'
        self.assertEqual(srv.get("/exact/n").body, expect)
        got = c.result("tools/call", {"name": "get_document",
                                      "arguments": {"collection": "exact", "id": "n"}})
        self.assertIn('"document":' + expect.decode(), got["content"][0]["text"])

    def test_conflict_is_refused_then_forced(self):
        srv, c = self.server, self.client(name="careful-bot")
        c.call("put_document", collection="conflict", id="k", document={"id": "k", "v": 1},
               change_set="bot-run")
        r = srv.put("/conflict/k", {"id": "k", "v": "person"},
                    headers=["X-Change-Set: person-fix", "X-Actor: alice"])
        self.assertStatus(r, 200)

        text = c.call_error("rollback_change_set", change_set="bot-run")
        self.assertIn("person-fix", text)
        self.assertIn("alice", text)
        self.assertIn("force true", text)
        self.assertEqual(srv.get("/conflict/k").body, b'{"id":"k","v":"person"}')

        plan = c.call("rollback_change_set", change_set="bot-run", dry_run=True)
        self.assertEqual(plan["summary"]["conflicts"], 1)
        forced = c.call("rollback_change_set", change_set="bot-run", force=True)
        self.assertTrue(forced["applied"])
        self.assertStatus(srv.get("/conflict/k"), 404)

    def test_tool_failures_are_results(self):
        c = self.client()
        text = c.call_error("get_document", collection="nothing", id="here")
        self.assertIn("list_documents", text)
        self.assertIn("not_found", text)
        text = c.call_error("create_document", collection="f", document={"no": "id"})
        self.assertIn("missing_key", text)
        c.call("create_document", collection="f", document={"id": "one"})
        text = c.call_error("create_document", collection="f", document={"id": "one"})
        self.assertIn("put_document", text)
        text = c.call_error("put_document", collection="f", id="one", if_match=999999,
                            document={"id": "one"})
        self.assertIn("list_versions", text)
        self.assertIn("precondition_failed", text)
        text = c.call_error("get_change_set", change_set="never-written")
        self.assertIn("list_change_sets", text)
        text = c.call_error("rollback_document", collection="f", id="one", steps=5)
        self.assertIn("history_exhausted", text)


class LegacyTest(McpTest):
    def test_initialize_negotiates(self):
        for v in LEGACY:
            c = self.client(v)
            self.assertEqual(c.initialize()["protocolVersion"], v)
            self.assertRegex(c.session, r"^mcp-[0-9a-f]{32}$")
        for other in ("2024-11-05", MODERN, "1.0"):
            c = self.client("2025-11-25")
            self.assertEqual(c.initialize(other)["protocolVersion"], "2025-11-25")

    def test_session_is_the_change_set(self):
        c = self.client("2025-06-18", name="session-bot")
        init = c.initialize()
        self.assertIn(c.session, init["instructions"])
        out = c.call("put_document", collection="sess", id="a", document={"id": "a"})
        self.assertEqual(out["change_set"], c.session)
        self.assertEqual(c.call("get_change_set", change_set=c.session)["actor"], "session-bot")

    def test_2025_03_26_batches(self):
        c = self.client("2025-03-26")
        c.initialize()
        batch = [c.message("ping"), c.message("tools/list"),
                 {"jsonrpc": "2.0", "method": "notifications/initialized"},
                 {"jsonrpc": "2.0", "id": 99}]
        r = c.post(batch, c.headers())
        self.assertStatus(r, 200)
        answers = r.json()
        self.assertEqual([a["id"] for a in answers], [batch[0]["id"], batch[1]["id"], 99])
        self.assertEqual(answers[0]["result"], {})
        self.assertNotIn("outputSchema", answers[1]["result"]["tools"][0])
        self.assertEqual(answers[2]["error"]["code"], -32600)
        only = [{"jsonrpc": "2.0", "method": "notifications/initialized"}]
        r = c.post(only, c.headers())
        self.assertStatus(r, 202)
        self.assertEqual(r.body, b"")

    def test_end_session(self):
        c = self.client("2025-11-25")
        c.initialize()
        r = harness.request(c.conn, "DELETE", "/_mcp", headers={"Mcp-Session-Id": c.session})
        self.assertStatus(r, 204)
        self.assertRpcError(c.request("tools/list"), 404, -32600, with_id=False)
        r = harness.request(c.conn, "DELETE", "/_mcp", headers={"Mcp-Session-Id": c.session})
        self.assertRpcError(r, 404, -32600, with_id=False)


def meta(version=MODERN, caps=True):
    m = {"io.modelcontextprotocol/protocolVersion": version}
    if caps:
        m["io.modelcontextprotocol/clientCapabilities"] = {}
    return m


def rpc(method, params=None, id_=1, **extra):
    m = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        m["params"] = params
    m.update(extra)
    return m


def b64(s):
    return "=?base64?" + base64.b64encode(s.encode()).decode() + "?="


class BadRpcTest(McpTest):
    """Each bad request gets its status and JSON-RPC error, changes nothing,
    and the next good request is served."""

    def modern_cases(self):
        call = lambda name, args, **kw: rpc(  # noqa: E731
            "tools/call", {"name": name, "arguments": args, "_meta": meta()}, **kw)
        H = {"Mcp-Method": "tools/call", "Mcp-Name": "put_document"}
        bad_put = {"collection": "bad", "id": "x", "document": {"id": "x"}, "limit": 3}
        # (name, body, extra headers, status, code or "tool-error", id echoed)
        return [
            ("malformed JSON", '{"jsonrpc":"2.0",', {}, 400, -32700, False),
            ("invalid UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"\xff"}', {}, 400, -32700,
             False),
            ("empty body", "", {}, 400, -32700, False),
            ("batch", [rpc("tools/list", {"_meta": meta()})], {"Mcp-Method": "tools/list"},
             400, -32600, False),
            ("missing jsonrpc", {"id": 5, "method": "tools/list", "params": {"_meta": meta()}},
             {"Mcp-Method": "tools/list"}, 400, -32600, True),
            ("jsonrpc 1.0", rpc("tools/list", {"_meta": meta()}, jsonrpc="1.0"),
             {"Mcp-Method": "tools/list"}, 400, -32600, True),
            ("null id", rpc("tools/list", {"_meta": meta()}, id_=None),
             {"Mcp-Method": "tools/list"}, 400, -32600, False),
            ("method not a string", {"jsonrpc": "2.0", "id": 1, "method": 7}, {}, 400, -32600,
             True),
            ("a response", {"jsonrpc": "2.0", "id": 1, "result": {}}, {}, 400, -32600, False),
            ("unknown method", rpc("tools/destroy", {"_meta": meta()}),
             {"Mcp-Method": "tools/destroy"}, 404, -32601, True),
            ("initialize is legacy", rpc("initialize", {"_meta": meta()}),
             {"Mcp-Method": "initialize"}, 404, -32601, True),
            ("ping is gone", rpc("ping", {"_meta": meta()}), {"Mcp-Method": "ping"}, 404,
             -32601, True),
            ("unknown tool", call("drop_everything", {}),
             {"Mcp-Method": "tools/call", "Mcp-Name": "drop_everything"}, 200, -32602, True),
            ("arguments not an object", call("put_document", ["bad", "x"]), H, 200, -32602,
             True),
            ("params not an object", rpc("tools/list", ["x"]), {"Mcp-Method": "tools/list"},
             400, -32602, True),
            ("unknown argument", call("put_document", bad_put), H, 200, "tool-error", True),
            ("wrong argument type",
             call("put_document", {"collection": "bad", "id": 5, "document": {"id": "x"}}), H,
             200, "tool-error", True),
            ("missing argument", call("put_document", {"collection": "bad", "id": "x"}), H, 200,
             "tool-error", True),
            ("argument out of range",
             call("list_documents", {"collection": "bad", "limit": 100000}),
             {"Mcp-Method": "tools/call", "Mcp-Name": "list_documents"}, 200, "tool-error",
             True),
            ("Mcp-Method missing", rpc("tools/list", {"_meta": meta()}), {}, 400, -32020, True),
            ("Mcp-Method mismatch", call("put_document", {}),
             {"Mcp-Method": "tools/list", "Mcp-Name": "put_document"}, 400, -32020, True),
            ("Mcp-Name missing", call("put_document", {}), {"Mcp-Method": "tools/call"}, 400,
             -32020, True),
            ("Mcp-Name mismatch", call("put_document", {}),
             {"Mcp-Method": "tools/call", "Mcp-Name": "get_document"}, 400, -32020, True),
            ("Mcp-Name base64 mismatch", call("put_document", {}),
             {"Mcp-Method": "tools/call", "Mcp-Name": b64("get_document")}, 400, -32020, True),
            ("_meta missing", rpc("tools/list", {}), {"Mcp-Method": "tools/list"}, 400, -32602,
             True),
            ("capabilities missing", rpc("tools/list", {"_meta": meta(caps=False)}),
             {"Mcp-Method": "tools/list"}, 400, -32602, True),
            ("_meta version mismatch", rpc("tools/list", {"_meta": meta("2025-11-25")}),
             {"Mcp-Method": "tools/list"}, 400, -32020, True),
        ]

    def send(self, body, headers, version=MODERN, ct="application/json"):
        h = {"Content-Type": ct, "Accept": "application/json, text/event-stream"}
        if version:
            h["MCP-Protocol-Version"] = version
        h.update(headers)
        c = self.client()
        return c.post(body, h)

    def check_case(self, case):
        name, body, headers, status, code, with_id = case
        r = self.send(body, headers)
        if code == "tool-error":
            self.assertStatus(r, 200)
            result = r.json()["result"]
            self.assertTrue(result["isError"], (name, r))
            self.assertIn("Invalid arguments", result["content"][0]["text"], name)
        else:
            body = self.assertRpcError(r, status, code, with_id)
            if with_id:
                self.assertIn(body["id"], (1, 5), name)

    def test_modern_battery_twice(self):
        for _round in range(2):
            for case in self.modern_cases():
                with self.subTest(case=case[0]):
                    self.check_case(case)
                    self.assertEqual(self.client().result("tools/list")["resultType"],
                                     "complete")
        # Nothing the battery sent was written.
        self.assertEqual(self.server.get("/_collections").json(), [])

    def test_mirrored_name_may_be_base64(self):
        body = rpc("tools/call", {"name": "list_collections", "arguments": {}, "_meta": meta()})
        r = self.send(body, {"Mcp-Method": "tools/call", "Mcp-Name": b64("list_collections")})
        self.assertStatus(r, 200)
        self.assertFalse(r.json()["result"].get("isError"), r)

    def test_notification_is_accepted(self):
        r = self.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                       "params": {"requestId": 1}}, {})
        self.assertStatus(r, 202)
        self.assertEqual(r.body, b"")

    def test_unsupported_version(self):
        for v in ("2024-11-05", "2099-01-01", "latest"):
            r = self.send(rpc("tools/list"), {}, version=v)
            body = self.assertRpcError(r, 400, -32022, with_id=False)
            self.assertEqual(body["error"]["data"]["requested"], v)
            self.assertEqual(body["error"]["data"]["supported"], [MODERN] + list(LEGACY))

    def test_origin(self):
        good = rpc("tools/list", {"_meta": meta()})
        for origin in ("http://evil.example", "null", "http://localhost.evil.example",
                       "https://agents.example.com:8443", "http://127.0.0.1.nip.example"):
            r = self.send(good, {"Mcp-Method": "tools/list", "Origin": origin})
            self.assertRpcError(r, 403, -32600, with_id=False)
            self.assertIn("--allow-origin", r.json()["error"]["message"])
        for origin in ("http://localhost:5173", "http://127.0.0.1", "https://[::1]:3000",
                       ALLOWED, "HTTPS://Agents.Example.COM"):
            r = self.send(good, {"Mcp-Method": "tools/list", "Origin": origin})
            self.assertStatus(r, 200)
        # A foreign page cannot reach the older revisions either.
        r = self.send(rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                         "clientInfo": {"name": "x", "version": "1"}}),
                      {"Origin": "http://evil.example"}, version=None)
        self.assertRpcError(r, 403, -32600, with_id=False)
        self.assertIsNone(r.header("mcp-session-id"))

    def test_media_types(self):
        good = rpc("tools/list", {"_meta": meta()})
        r = self.send(good, {"Mcp-Method": "tools/list"}, ct="text/plain")
        self.assertRpcError(r, 415, -32600, with_id=False)
        r = self.send(good, {"Mcp-Method": "tools/list", "Accept": "text/event-stream"})
        self.assertRpcError(r, 406, -32600, with_id=False)
        r = self.send(good, {"Mcp-Method": "tools/list", "Accept": "*/*"})
        self.assertStatus(r, 200)
        r = self.send(good, {"Mcp-Method": "tools/list", "Accept": "Application/JSON; q=1"})
        self.assertStatus(r, 200)

    def test_other_http_methods(self):
        for method in ("GET", "PUT", "PATCH"):
            r = self.server.curl(method, "/_mcp", headers=["Accept: text/event-stream"])
            self.assertError(r, 405, "method_not_allowed")
            self.assertEqual(r.header("allow"), "POST, DELETE")
        r = self.server.curl("DELETE", "/_mcp")
        self.assertRpcError(r, 400, -32600, with_id=False)

    def test_legacy_sessions(self):
        plain = rpc("tools/list")
        r = self.send(plain, {}, version=None)  # no version header: 2025-03-26
        self.assertRpcError(r, 400, -32600, with_id=False)
        r = self.send(plain, {"Mcp-Session-Id": "mcp-" + "0" * 32}, version="2025-06-18")
        self.assertRpcError(r, 404, -32600, with_id=False)

        c = self.client("2025-06-18")
        c.initialize()
        again = {"jsonrpc": "2.0", "id": 3, "method": "initialize",
                 "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": c.info}}
        self.assertRpcError(c.post(again, c.headers()), 400, -32600)
        h = c.headers()
        h["MCP-Protocol-Version"] = "2025-11-25"
        self.assertRpcError(c.post(rpc("tools/list"), h), 400, -32600, with_id=False)
        self.assertRpcError(c.post([rpc("tools/list")], c.headers()), 400, -32600,
                            with_id=False)
        r = c.request("tools/destroy")
        self.assertRpcError(r, 200, -32601)
        bad = c.request("tools/call", {"name": "put_document",
                                       "arguments": {"collection": "bad", "id": "x"}})
        body = self.assertRpcError(bad, 200, -32602)  # before 2025-11-25: a protocol error
        self.assertIn("document", body["error"]["message"])
        r = c.post({"jsonrpc": "2.0", "id": 9}, c.headers())
        self.assertRpcError(r, 400, -32600)
        bad_init = {"jsonrpc": "2.0", "id": 4, "method": "initialize", "params": {}}
        r = self.send(bad_init, {}, version=None)
        self.assertRpcError(r, 200, -32602)
        self.assertIsNone(r.header("mcp-session-id"))

        # 2025-11-25 made bad arguments a tool error the model can act on.
        c = self.client("2025-11-25")
        c.initialize()
        text = c.call_error("put_document", collection="bad", id="x")
        self.assertIn("document", text)
        self.assertEqual(self.server.get("/_collections").json(), [])


if __name__ == "__main__":
    harness.main()
