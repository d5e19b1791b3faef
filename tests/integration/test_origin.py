"""The session snapback was made for, replayed byte for byte with curl.

A user is created, replaced, and the replacement rolled back; listing the
collection must then print the original document exactly as it was sent,
minus insignificant whitespace.
"""

import subprocess

import harness


class OriginTest(harness.ServerTest):
    def test_create_replace_rollback_list(self):
        with harness.Server("--key", "users=email") as srv:
            self.server = srv
            url = "http://localhost:%d" % srv.port

            def curl(*args):
                out = subprocess.run([harness.CURL, "-sS", "--max-time", "10"] + list(args),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     timeout=20)
                self.assertEqual(out.returncode, 0, out.stderr.decode() + srv.stderr())
                return out.stdout

            first = '{"name":"José","email":"jose@email.com"}'.encode()
            second = '{"name":"José Filho","email":"jose@email.com"}'.encode()

            out = curl("-H", "Content-Type: application/json",
                       "-d", '{"name":"José", "email":"jose@email.com"}'.encode(),
                       "-X", "POST", url + "/users")
            self.assertEqual(out, first)

            out = curl("-H", "Content-Type: application/json",
                       "-d", '{"name":"José Filho", "email":"jose@email.com"}'.encode(),
                       "-X", "PUT", url + "/users/jose@email.com")
            self.assertEqual(out, second)

            out = curl("-H", "Content-Type: application/json",
                       "-X", "POST", url + "/users/jose@email.com/rollback")
            self.assertEqual(out, first)

            out = curl(url + "/users")
            self.assertEqual(out, '[{"name":"José","email":"jose@email.com"}]'.encode())


if __name__ == "__main__":
    harness.main()
