"""A battery of bad requests, each answered with the right status and a JSON
error {"error": code, "message": text}; then requests only a raw socket can
send (half-sent, dribbled, oversized head).  Afterwards the server must still
work, and repeating the battery must not make it grow.
"""

import socket
import time

import harness

COLL = "/bad"  # holds one document, "d", created before the battery
MAX_BODY = 1024
JSON = "Content-Type: application/json"


class Case:
    def __init__(self, name, method, path, status, code, body=None, headers=(), json=True,
                 allow=None):
        self.name, self.method, self.path = name, method, path
        self.status, self.code, self.allow = status, code, allow
        self.body = body
        self.headers = list(headers)
        if body is not None and json:
            self.headers.append(JSON)


def post(name, body, status, code, path=COLL, **kw):
    return Case(name, "POST", path, status, code, body=body, **kw)


def rollback(name, status, code, body=None, query="", **kw):
    return Case(name, "POST", COLL + "/d/rollback" + query, status, code, body=body, **kw)


# An expectation that the server does not meet yet is marked here, so that
# its failure names itself.  Valid JSON that is not an object is documented
# (server/json_doc.h, JSON_DOC_NOT_OBJECT) as not_an_object, but jansson
# without JSON_DECODE_ANY reports top-level scalars as malformed.
SERVER_BUG_SCALAR = " [server bug: top-level scalar reported as malformed_json]"

BATTERY = [
    # Bodies that are not JSON.
    post("truncated-open-brace", "{", 400, "malformed_json"),
    post("truncated-after-colon", '{"a":', 400, "malformed_json"),
    post("missing-colon", '{"a" 1}', 400, "malformed_json"),
    post("trailing-garbage", '{"id":"x"} xyz', 400, "malformed_json"),
    post("extra-closing-brace", '{"id":"x"}}', 400, "malformed_json"),
    post("invalid-utf8-in-string", b'{"id":"\xff"}', 400, "malformed_json"),
    post("overlong-utf8-in-string", b'{"id":"\xc0\xaf"}', 400, "malformed_json"),
    post("duplicate-keys", '{"id":"x","id":"y"}', 400, "malformed_json"),
    post("single-quotes", "{'id':'x'}", 400, "malformed_json"),
    post("trailing-comma", '{"id":"x",}', 400, "malformed_json"),
    post("nan", '{"id":"x","n":NaN}', 400, "malformed_json"),
    # JSON that is not an object.
    post("array-body", "[1,2]", 400, "not_an_object"),
    post("string-body" + SERVER_BUG_SCALAR, '"abc"', 400, "not_an_object"),
    post("number-body" + SERVER_BUG_SCALAR, "42", 400, "not_an_object"),
    post("null-body" + SERVER_BUG_SCALAR, "null", 400, "not_an_object"),
    # Numbers beyond what a document may hold.
    post("integer-beyond-64-bits", '{"id":"x","n":9223372036854775808}', 422,
         "number_out_of_range"),
    post("real-overflow", '{"id":"x","n":1e999}', 422, "number_out_of_range"),
    # Media types and sizes.
    post("text-plain", '{"id":"x"}', 415, "unsupported_media_type", json=False,
         headers=["Content-Type: text/plain"]),
    post("no-content-type", '{"id":"x"}', 415, "unsupported_media_type", json=False,
         headers=["Content-Type:"]),
    post("content-type-prefix", '{"id":"x"}', 415, "unsupported_media_type", json=False,
         headers=["Content-Type: application/jsonp"]),
    Case("put-text-plain", "PUT", COLL + "/d", 415, "unsupported_media_type",
         body='{"id":"d"}', json=False, headers=["Content-Type: text/plain"]),
    post("over-max-body", '{"id":"x","pad":"%s"}' % ("p" * 2 * MAX_BODY), 413,
         "payload_too_large", headers=["Expect:"]),
    post("empty-body-post", "", 400, "empty_body"),
    Case("empty-body-put", "PUT", COLL + "/d", 400, "empty_body", body=""),
    Case("no-body-post", "POST", COLL, 400, "empty_body", headers=[JSON]),
    # Request targets.
    Case("escape-not-hex", "GET", COLL + "/%G1", 400, "bad_escape"),
    Case("escape-one-digit", "GET", COLL + "/%4", 400, "bad_escape"),
    Case("escape-trailing-percent", "GET", COLL + "/abc%", 400, "bad_escape"),
    Case("escape-in-query", "GET", COLL + "?limit=%zz", 400, "bad_escape"),
    Case("id-513-bytes", "GET", COLL + "/" + "i" * 513, 400, "invalid_id"),
    Case("id-not-utf8", "GET", COLL + "/%FF", 400, "invalid_id"),
    Case("id-truncated-utf8", "GET", COLL + "/jos%C3", 400, "invalid_id"),
    Case("id-encoded-slash", "GET", COLL + "/a%2Fb", 400, "invalid_id"),
    Case("id-encoded-nul", "GET", COLL + "/a%00b", 400, "invalid_id"),
    Case("collection-with-space", "GET", "/bad%20name", 400, "invalid_collection"),
    Case("collection-65-chars", "GET", "/" + "c" * 65, 400, "invalid_collection"),
    Case("collection-bang", "GET", "/bad!name/d", 400, "invalid_collection"),
    Case("reserved-collection", "GET", "/_users", 400, "reserved_name"),
    Case("reserved-collection-post", "POST", "/_users", 400, "reserved_name",
         body='{"id":"x"}'),
    Case("reserved-below-health", "GET", "/_health/x", 400, "reserved_name"),
    Case("no-endpoint-root", "GET", "/", 404, "no_such_endpoint"),
    Case("no-endpoint-sub", "GET", COLL + "/d/other", 404, "no_such_endpoint"),
    Case("no-endpoint-deep", "GET", COLL + "/d/versions/1/x", 404, "no_such_endpoint"),
    Case("no-endpoint-empty-segment", "GET", COLL + "//d", 404, "no_such_endpoint"),
    Case("too-many-parameters", "GET", COLL + "?a&b&c&d&e&f&g&h&i", 400,
         "too_many_parameters"),
    # Methods.
    Case("patch", "PATCH", COLL + "/d", 405, "method_not_allowed", allow="GET, PUT, DELETE"),
    Case("foo-on-collection", "FOO", COLL, 405, "method_not_allowed", allow="GET, POST"),
    Case("delete-collection", "DELETE", COLL, 405, "method_not_allowed", allow="GET, POST"),
    Case("get-rollback", "GET", COLL + "/d/rollback", 405, "method_not_allowed", allow="POST"),
    Case("post-health", "POST", "/_health", 405, "method_not_allowed", allow="GET"),
    # Query parameters.
    Case("unknown-list-param", "GET", COLL + "?foo=1", 400, "unknown_parameter"),
    Case("unknown-get-param", "GET", COLL + "/d?x", 400, "unknown_parameter"),
    Case("unknown-put-param", "PUT", COLL + "/d?a=b", 400, "unknown_parameter",
         body='{"id":"d"}'),
    Case("unknown-delete-param", "DELETE", COLL + "/d?force=1", 400, "unknown_parameter"),
    Case("unknown-versions-param", "GET", COLL + "/d/versions?limit=1", 400,
         "unknown_parameter"),
    post("unknown-create-param", '{"id":"x"}', 400, "unknown_parameter", path=COLL + "?id=x"),
    rollback("misspelt-steps", 400, "unknown_parameter", query="?step=3"),
    Case("limit-zero", "GET", COLL + "?limit=0", 400, "invalid_parameter"),
    Case("limit-1001", "GET", COLL + "?limit=1001", 400, "invalid_parameter"),
    Case("limit-negative", "GET", COLL + "?limit=-5", 400, "invalid_parameter"),
    Case("unknown-cursor", "GET", COLL + "?after=nobody", 400, "invalid_cursor"),
    Case("as-of-zero", "GET", COLL + "/d?as_of=0", 400, "invalid_parameter"),
    Case("as-of-text", "GET", COLL + "/d?as_of=yesterday", 400, "invalid_parameter"),
    Case("as-of-future", "GET", COLL + "/d?as_of=1000000000000", 422, "future_revision"),
    Case("revision-zero", "GET", COLL + "/d/versions/0", 400, "invalid_revision"),
    Case("revision-text", "GET", COLL + "/d/versions/abc", 400, "invalid_revision"),
    # Rollback arguments.
    rollback("steps-query-zero", 422, "invalid_steps", query="?steps=0"),
    rollback("steps-query-negative", 400, "invalid_parameter", query="?steps=-1"),
    rollback("steps-query-1e30", 422, "invalid_steps", query="?steps=" + "1" + "0" * 30),
    rollback("steps-query-2^32", 422, "invalid_steps", query="?steps=4294967296"),
    rollback("steps-query-text", 400, "invalid_parameter", query="?steps=abc"),
    rollback("steps-body-zero", 422, "invalid_steps", body='{"steps":0}'),
    rollback("steps-body-negative", 422, "invalid_steps", body='{"steps":-1}'),
    rollback("steps-body-1e30", 422, "number_out_of_range",
             body='{"steps":1' + "0" * 30 + "}"),
    rollback("steps-body-text", 422, "invalid_steps", body='{"steps":"abc"}'),
    rollback("steps-body-real", 422, "invalid_steps", body='{"steps":1.5}'),
    rollback("to-version-zero", 422, "invalid_version", body='{"to_version":0}'),
    rollback("to-version-text", 422, "invalid_version", body='{"to_version":"1"}'),
    rollback("to-version-future", 422, "future_revision", body='{"to_version":1000000000000}'),
    rollback("unknown-field", 422, "unknown_field", body='{"step":3}'),
    rollback("steps-and-version", 422, "conflicting_options",
             body='{"steps":1,"to_version":1}'),
    rollback("query-and-body-steps", 422, "conflicting_options", body='{"steps":2}',
             query="?steps=1"),
    rollback("query-steps-and-version", 422, "conflicting_options", body='{"to_version":1}',
             query="?steps=1"),
    rollback("rollback-text-plain", 415, "unsupported_media_type", body='{"steps":1}',
             json=False, headers=["Content-Type: text/plain"]),
    rollback("rollback-array", 400, "not_an_object", body="[1]"),
    rollback("rollback-malformed", 400, "malformed_json", body='{"steps":'),
    Case("rollback-absent-doc", "POST", COLL + "/nobody/rollback", 404, "not_found"),
    # Preconditions.
    Case("if-match-unquoted", "PUT", COLL + "/d", 400, "invalid_precondition",
         body='{"id":"d"}', headers=["If-Match: 5"]),
    Case("if-match-text", "PUT", COLL + "/d", 400, "invalid_precondition",
         body='{"id":"d"}', headers=['If-Match: "abc"']),
    Case("if-match-weak", "PUT", COLL + "/d", 400, "invalid_precondition",
         body='{"id":"d"}', headers=['If-Match: W/"1"']),
    Case("if-match-zero", "DELETE", COLL + "/d", 400, "invalid_precondition",
         headers=['If-Match: "0"']),
    Case("if-none-match-etag", "PUT", COLL + "/d", 400, "invalid_precondition",
         body='{"id":"d"}', headers=['If-None-Match: "1"']),
    Case("both-preconditions", "PUT", COLL + "/d", 400, "invalid_precondition",
         body='{"id":"d"}', headers=['If-Match: "1"', "If-None-Match: *"]),
    Case("delete-if-none-match", "DELETE", COLL + "/d", 400, "invalid_precondition",
         headers=["If-None-Match: *"]),
    Case("if-match-stale", "PUT", COLL + "/d", 412, "precondition_failed",
         body='{"id":"d"}', headers=['If-Match: "999999"']),
    Case("if-none-match-exists", "PUT", COLL + "/d", 412, "precondition_failed",
         body='{"id":"d"}', headers=["If-None-Match: *"]),
    # Keys and existence.
    post("create-existing", '{"id":"d"}', 409, "already_exists"),
    post("missing-key", '{"name":"x"}', 422, "missing_key"),
    post("key-object", '{"id":{"a":1}}', 422, "invalid_key_type"),
    post("key-real", '{"id":1.5}', 422, "invalid_key_type"),
    post("key-bool", '{"id":true}', 422, "invalid_key_type"),
    post("key-empty", '{"id":""}', 422, "invalid_key"),
    Case("put-key-mismatch", "PUT", COLL + "/d", 422, "key_mismatch", body='{"id":"e"}'),
    Case("get-absent", "GET", COLL + "/nobody", 404, "not_found"),
    Case("delete-absent", "DELETE", COLL + "/nobody", 404, "not_found"),
    Case("versions-absent", "GET", COLL + "/nobody/versions", 404, "not_found"),
    Case("version-absent", "GET", COLL + "/d/versions/999999", 404, "version_not_found"),
]


def recv_all(sock):
    """Reads until the peer closes; a reset counts as a close."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return data
        if not chunk:
            return data
        data += chunk


def status_of(raw):
    if not raw.startswith(b"HTTP/1."):
        return None
    return int(raw.split(b" ", 2)[1])


class BadRequestTest(harness.ServerTest):
    def run_battery(self, srv):
        for case in BATTERY:
            with self.subTest(case=case.name):
                r = srv.curl(case.method, case.path, body=case.body, headers=case.headers)
                self.assertError(r, case.status, case.code)
                if case.allow is not None:
                    self.assertEqual(r.header("allow"), case.allow)

    def round_trip(self, srv, id_):
        r = srv.post(COLL, {"id": id_, "n": 1})
        self.assertStatus(r, 201)
        self.assertEqual(srv.get(COLL + "/" + id_).json(), {"id": id_, "n": 1})

    def test_battery_and_memory(self):
        self.assertGreaterEqual(len(BATTERY), 40)
        with harness.Server("--max-body", str(MAX_BODY), "--threads", "1") as srv:
            self.server = srv
            self.assertStatus(srv.post(COLL, {"id": "d"}), 201)
            before = srv.get(COLL + "/d/versions").body

            self.run_battery(srv)  # warm-up: caches, arenas, connections
            rss_warm = srv.rss_kb()
            for _ in range(5):
                self.run_battery(srv)
            rss_after = srv.rss_kb()

            self.assertEqual(srv.get(COLL + "/d/versions").body, before,
                             "a refused request changed the document")
            self.round_trip(srv, "after-battery")
            self.assertLessEqual(rss_after - rss_warm, 2048,
                                 "VmRSS grew from %d kB to %d kB over 5 batteries"
                                 % (rss_warm, rss_after))

    def test_raw_sockets(self):
        with harness.Server("--threads", "1") as srv:
            self.server = srv
            addr = ("127.0.0.1", srv.port)

            # Half-sent requests hold their connections, not the server.
            body = b'{"id":"half"}'.ljust(100)
            head = (b"POST /bad HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100\r\nConnection: close\r\n\r\n")
            half = socket.create_connection(addr, timeout=harness.WAIT)
            half.sendall(head + body[:10])
            partial = socket.create_connection(addr, timeout=harness.WAIT)
            partial.sendall(b"GET /_health HTTP/1.1\r\nHo")
            silent = socket.create_connection(addr, timeout=harness.WAIT)
            self.round_trip(srv, "while-stalled")
            half.sendall(body[10:])
            self.assertEqual(status_of(recv_all(half)), 201)
            for s in (half, partial, silent):
                s.close()

            # A request dribbled byte by byte still gets its answer.
            slow = socket.create_connection(addr, timeout=harness.WAIT)
            for b in b"GET /bad/half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
                slow.sendall(bytes([b]))
                time.sleep(0.005)
            raw = recv_all(slow)
            slow.close()
            self.assertEqual(status_of(raw), 200, raw[:200])
            self.assertTrue(raw.endswith(b'{"id":"half"}'), raw[-200:])

            # Oversized heads: refused with a 4xx or a closed connection.
            for name, head in (
                    ("1 MB header", b"X-Big: " + b"a" * (1 << 20) + b"\r\n"),
                    ("300 header lines",
                     b"".join(b"X-H%d: v\r\n" % i for i in range(300)))):
                s = socket.create_connection(addr, timeout=harness.WAIT)
                try:
                    s.sendall(b"GET /_health HTTP/1.1\r\nHost: x\r\n" + head +
                              b"Connection: close\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                raw = recv_all(s)
                s.close()
                status = status_of(raw)
                self.assertTrue(status is None or 400 <= status < 500,
                                "%s: %r" % (name, raw[:200]))
                self.assertTrue(srv.alive(), name + srv.stderr())
            self.round_trip(srv, "after-raw")


if __name__ == "__main__":
    harness.main()
