"""The API documents match the server.

docs/openapi.yaml must describe exactly the routes of server/api.c (listed
below from the route table at the top of that file), the live server must
answer every documented operation and refuse every other method with 405,
and docs/api.md must list every error code the server can send.
"""

import os
import re

import harness

# The route table of server/api.c's header comment, and the MCP endpoint
# (server/mcp.h) that server/http.c routes to before it.
SERVER_ROUTES = {
    "/_health": {"get"},
    "/_collections": {"get"},
    "/_mcp": {"post", "delete"},
    "/_batch": {"post"},
    "/_changesets": {"get"},
    "/_changesets/{id}": {"get"},
    "/_changesets/{id}/rollback": {"post"},
    "/{collection}": {"get", "post"},
    "/{collection}/{id}": {"get", "put", "delete"},
    "/{collection}/{id}/rollback": {"post"},
    "/{collection}/{id}/versions": {"get"},
    "/{collection}/{id}/versions/{rev}": {"get"},
}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
OPENAPI = os.path.join(harness.SOURCE_DIR, "docs", "openapi.yaml")
API_MD = os.path.join(harness.SOURCE_DIR, "docs", "api.md")
SERVER = os.path.join(harness.SOURCE_DIR, "server")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def paths_by_lines(text):
    """The `paths:` keys and their methods, by indentation (no YAML library)."""
    routes, path, inside = {}, None, False
    for line in text.splitlines():
        if line.startswith("paths:"):
            inside = True
            continue
        if not inside or not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            break
        m = re.match(r"^  (\S[^:]*|\"[^\"]*\"|'[^']*'):\s*$", line)
        if m:
            path = m.group(1).strip("\"'")
            routes[path] = set()
            continue
        m = re.match(r"^    (\w+):", line)
        if m and m.group(1) in METHODS:
            routes[path].add(m.group(1))
    return routes


def paths_by_yaml(text):
    try:
        import yaml
    except ImportError:
        return None
    doc = yaml.safe_load(text)
    return doc, {p: {m for m in ops if m in METHODS} for p, ops in doc["paths"].items()}


def concrete(path):
    return path.replace("{collection}", "probe").replace("{id}", "d").replace("{rev}", "1")


def server_error_codes():
    """(code, status) pairs the server's sources can send; status None if variable."""
    codes = set()
    for name in sorted(os.listdir(SERVER)):
        if not (name.startswith("api") and name.endswith(".c")):
            continue
        src = read(os.path.join(SERVER, name))
        for status, code in re.findall(
                r'(?:reply_error|api_error)\(\s*[\w>-]+,\s*(\d+),\s*"([a-z_]+)"', src):
            codes.add((code, int(status)))
        for status, a, b in re.findall(
                r'reply_error\(\s*c,\s*(\d+),\s*[^",;]*\?\s*"([a-z_]+)"\s*:\s*"([a-z_]+)"', src):
            codes.update({(a, int(status)), (b, int(status))})
        for code in re.findall(r'"(invalid_[a-z]+)",\s*&', src):  # rollback members: 422
            codes.add((code, 422))
        for code in re.findall(r'\\"error\\":\\"([a-z_]+)\\"', src):
            codes.add((code, None))
    http_c = os.path.join(SERVER, "http.c")
    if os.path.exists(http_c):
        for code in re.findall(r'return "([a-z_]+)";', read(http_c)):
            codes.add((code, None))
    return codes


class OpenApiTest(harness.ServerTest):
    def test_documented_routes_are_the_servers(self):
        text = read(OPENAPI)
        self.assertRegex(text, r"(?m)^openapi: 3\.1\.\d+$")
        by_lines = paths_by_lines(text)
        self.assertEqual(by_lines, SERVER_ROUTES)
        parsed = paths_by_yaml(text)
        if parsed is not None:
            doc, by_yaml = parsed
            self.assertEqual(by_yaml, by_lines)
            for path, ops in doc["paths"].items():
                names = set(re.findall(r"\{(\w+)\}", path))
                declared = set()
                for p in ops.get("parameters", []):
                    ref = p.get("$ref", "")
                    p = doc["components"]["parameters"][ref.rsplit("/", 1)[1]] if ref else p
                    if p["in"] == "path":
                        declared.add(p["name"])
                self.assertEqual(declared, names, path)

    def test_live_server_has_the_documented_routes(self):
        routes = paths_by_lines(read(OPENAPI))
        with harness.Server() as srv:
            self.server = srv
            for path, methods in routes.items():
                url = concrete(path)
                for method in methods:
                    r = srv.curl(method.upper(), url)
                    self.assertNotEqual(r.status, 405, (method, path, r))
                    if r.status == 404:
                        self.assertNotEqual(r.json()["error"], "no_such_endpoint",
                                            (method, path))
                for method in ("get", "post", "put", "delete", "patch"):
                    if method in methods:
                        continue
                    r = srv.curl(method.upper(), url)
                    self.assertError(r, 405, "method_not_allowed")
                    allow = {m.strip().lower() for m in r.header("allow").split(",")}
                    self.assertEqual(allow, methods, path)

    def test_api_md_lists_every_error_code(self):
        rows = {}
        for code, status in re.findall(r"(?m)^\| `([a-z_]+)` \| (\w+) \|", read(API_MD)):
            rows.setdefault(code, set()).add(status)
        codes = server_error_codes()
        self.assertGreater(len(codes), 30)
        for code, status in sorted(codes, key=str):
            self.assertIn(code, rows, "error code %s is not in docs/api.md" % code)
            if status is not None:
                self.assertIn(str(status), rows[code], code)


if __name__ == "__main__":
    harness.main()
