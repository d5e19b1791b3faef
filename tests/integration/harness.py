"""Shared helpers of the integration tests: run snapbackd, talk to it.

Each test file starts its own servers on free loopback ports. A Server is
started with the options a test needs, is ready once GET /_health answers,
and must exit with status 0 on SIGTERM; its stderr is kept in a file so a
failing test can show what the server said.

The binary comes from the SNAPBACKD environment variable (CMake sets it to
the built target) or from a `--snapbackd PATH` argument; curl from
SNAPBACK_CURL or the PATH. Only the Python standard library is used.

Durability tests give a Server a data directory of their own that outlives
it (data_dir=), end it with kill() (SIGKILL, as a crash would), read what it
logged with log(), and run a server that must refuse to start with
run_to_exit().
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

WAIT = 10.0  # seconds: the bound on any wait for the server (not a timing check)


def _take_arg(name):
    """Removes `name VALUE` from sys.argv (so unittest does not see it)."""
    if name in sys.argv:
        i = sys.argv.index(name)
        value = sys.argv[i + 1]
        del sys.argv[i:i + 2]
        return value
    return None


SNAPBACKD = _take_arg("--snapbackd") or os.environ.get("SNAPBACKD", "")
CURL = os.environ.get("SNAPBACK_CURL", "curl")
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    """A loopback port nobody listens on right now (the server binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    """One HTTP answer: status, headers (lower-case name -> list of values), body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<%d %r %r>" % (self.status, self.headers, self.body[:300])


def parse_head(raw):
    """Parses the last header block of curl's --dump-header output."""
    blocks = [b for b in raw.split(b"\r\n\r\n") if b.startswith(b"HTTP/")]
    if not blocks:
        raise AssertionError("no HTTP response head in %r" % raw[:200])
    lines = blocks[-1].split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers


class Server:
    """A running snapbackd. Use as a context manager, or call stop() or kill().

    `data_dir`: a directory the caller owns and keeps after the server ends
    (by default the server gets one in its own temporary directory). `cwd`:
    the working directory of the process (by default the test's).
    """

    def __init__(self, *options, data_dir=None, cwd=None):
        if not SNAPBACKD:
            raise unittest.SkipTest("no snapbackd given (set SNAPBACKD)")
        if not os.access(SNAPBACKD, os.X_OK):
            raise AssertionError("SNAPBACKD=%s is not an executable" % SNAPBACKD)
        self.options = list(options)
        self.tmp = tempfile.TemporaryDirectory(prefix="snapbackd-test-")
        self._final_log = None
        # Every test server persists, with the default fsync mode, into a
        # directory of its own unless the test chose otherwise.
        if data_dir is not None:
            self.options += ["--data-dir", data_dir]
        elif "--data-dir" not in self.options and "--in-memory" not in self.options:
            self.options += ["--data-dir", os.path.join(self.tmp.name, "data")]
        self.stderr_path = os.path.join(self.tmp.name, "stderr")
        self._calls = 0
        for _attempt in range(5):  # the free port may be taken in between
            self.port = free_port()
            self.base = "http://127.0.0.1:%d" % self.port
            with open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    [SNAPBACKD, "--listen", "127.0.0.1:%d" % self.port] + self.options,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd)
            if self._wait_ready():
                return
        raise AssertionError("snapbackd did not start: " + self.stderr())

    @property
    def pid(self):
        return self.proc.pid

    def _wait_ready(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
                conn.request("GET", "/_health")
                ok = conn.getresponse().status == 200
                conn.close()
                # The start line is printed just after the workers start
                # answering: wait for it too, so that tests may read it.
                if ok and "snapbackd started" in self.log():
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        return False

    def log(self):
        """What the server wrote on stderr so far (also after stop() or kill())."""
        if self._final_log is not None:
            return self._final_log
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr(self):
        """The server's stderr, headed for a failure message ("" if none)."""
        text = self.log()
        return "\n--- snapbackd stderr ---\n" + text if text else ""

    def _finish(self):
        """Keeps the log, then removes the temporary directory."""
        self._final_log = self.log()
        self.tmp.cleanup()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """Sends SIGTERM and asserts that the server exits with status 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("snapbackd ignored SIGTERM" + self.stderr())
        rc = self.proc.returncode
        self._finish()
        if rc != 0:
            raise AssertionError("snapbackd exited with status %d%s" % (rc, self.stderr()))

    def kill(self):
        """Ends the server with SIGKILL, as a crash would: no drain, no clean close."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)
        self._finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)

    # ------------------------------------------------------------------
    # Requests through the curl binary

    def curl(self, method, path, body=None, headers=(), json_body=None, args=()):
        """Runs curl for `method path` and returns a Response.

        `body` (bytes or str) is sent verbatim with --data-binary, `json_body`
        is serialised and sent with Content-Type: application/json. `path`
        is sent as written: curl does not re-encode percent escapes.
        """
        self._calls += 1
        head = os.path.join(self.tmp.name, "head%d" % self._calls)
        cmd = [CURL, "-sS", "--max-time", str(int(WAIT)), "--dump-header", head,
               "-X", method]
        if json_body is not None:
            body = json.dumps(json_body)
            headers = list(headers) + ["Content-Type: application/json"]
        for h in headers:
            cmd += ["-H", h]
        data_path = None
        if body is not None:
            data_path = os.path.join(self.tmp.name, "body%d" % self._calls)
            with open(data_path, "wb") as f:
                f.write(body.encode("utf-8") if isinstance(body, str) else body)
            cmd += ["--data-binary", "@" + data_path]
        cmd += list(args) + [self.base + path]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=WAIT + 5)
        if out.returncode != 0:
            raise AssertionError("curl %s %s failed (%d): %s%s" % (
                method, path, out.returncode, out.stderr.decode(), self.stderr()))
        with open(head, "rb") as f:
            status, hdrs = parse_head(f.read())
        os.unlink(head)
        if data_path:
            os.unlink(data_path)
        return Response(status, hdrs, out.stdout)

    def get(self, path, **kw):
        return self.curl("GET", path, **kw)

    def post(self, path, doc=None, **kw):
        return self.curl("POST", path, json_body=doc, **kw)

    def put(self, path, doc, **kw):
        return self.curl("PUT", path, json_body=doc, **kw)

    def delete(self, path, **kw):
        return self.curl("DELETE", path, **kw)

    # ------------------------------------------------------------------
    # Requests on a keep-alive connection (for volume)

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)


def run_to_exit(*options, cwd=None):
    """Runs a snapbackd that is expected to refuse to start.

    Returns (exit status, stderr). Fails if it is still running after WAIT
    seconds (it would then be serving, which the caller did not expect).
    """
    if not SNAPBACKD:
        raise unittest.SkipTest("no snapbackd given (set SNAPBACKD)")
    cmd = [SNAPBACKD, "--listen", "127.0.0.1:%d" % free_port()] + list(options)
    try:
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, cwd=cwd, timeout=WAIT)
    except subprocess.TimeoutExpired as e:  # run() has killed it
        raise AssertionError("snapbackd %s did not exit: %s" % (
            " ".join(options), (e.stderr or b"").decode("utf-8", "replace")))
    return out.returncode, out.stderr.decode("utf-8", "replace")


def request(conn, method, path, body=None, headers=None):
    """One request on an http.client connection; returns a Response."""
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")  # bytes go out with the head, in one segment
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    headers_out = {}
    for name, value in r.getheaders():
        headers_out.setdefault(name.lower(), []).append(value)
    return Response(r.status, headers_out, data)


def etag(rev):
    return '"%d"' % rev


def rev_of(resp):
    """The revision in a response's ETag header."""
    tag = resp.header("etag")
    assert tag and tag.startswith('"') and tag.endswith('"'), "bad ETag %r" % tag
    return int(tag[1:-1])


class ServerTest(unittest.TestCase):
    """Base class: asserts on responses and shows the server's stderr on failure."""

    server = None

    def assertError(self, resp, status, code):
        """Asserts a JSON error answer {"error": code, "message": non-empty}."""
        where = "%r%s" % (resp, self.server.stderr() if self.server else "")
        self.assertEqual(resp.status, status, where)
        self.assertTrue((resp.header("content-type") or "").startswith("application/json"),
                        where)
        body = resp.json()
        self.assertIsInstance(body, dict, where)
        self.assertEqual(body.get("error"), code, where)
        self.assertIsInstance(body.get("message"), str, where)
        self.assertTrue(body["message"], where)
        return body

    def assertStatus(self, resp, status):
        self.assertEqual(resp.status, status,
                         "%r%s" % (resp, self.server.stderr() if self.server else ""))


def main():
    unittest.main(verbosity=2)
