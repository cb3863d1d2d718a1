"""HTTPS and mTLS on `ponder serve`'s listener, with the official openai SDK against a CA the test
makes (openssl CLI): the calls work over TLS, a client that does not trust the CA or speaks plain
HTTP is refused and counted while the server stays healthy, a client that leaves a pending
request cancels it; with tls_client_ca only clients with a certificate of that CA get in; the
listener's rules (TLS off loopback, key file mode, key and certificate that belong together) are
errors that name the problem before anything starts."""
from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

import openai

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import MODEL, PONDER, ROOT, Server, metric, wait_for  # noqa: E402

MESSAGES = [{"role": "user", "content": "What is 47 * 23 + 158?"}]


def openssl(*args: str, cwd: str):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: str, name: str):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}", cwd=d)


def make_cert(d: str, name: str, ca: str, *, server: bool):
    """A key and a certificate for `name` signed by `ca` (server: for 127.0.0.1 and localhost)."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n" if server
                else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=d)
    os.chmod(os.path.join(d, f"{name}.key"), 0o600)


def serve_error(*args: str) -> str:
    """What `ponder serve ARGS` says when it refuses to start (it must, within the timeout)."""
    r = subprocess.run([PONDER, "serve", "--model", MODEL, "--port", "0", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, f"ponder serve started with {args}"
    return r.stdout + r.stderr


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.d = cls.tmp.name
        make_ca(d, "ca")
        make_ca(d, "clientca")
        make_ca(d, "otherca")
        make_cert(d, "server", "ca", server=True)
        make_cert(d, "alice", "clientca", server=False)
        make_cert(d, "mallory", "otherca", server=False)
        cls.ca = os.path.join(d, "ca.pem")
        cls.ctx = ssl.create_default_context(cafile=cls.ca)
        cls.server = Server("--model", MODEL, "--tls-cert", cls.path("server.pem"), "--tls-key",
                            cls.path("server.key"), ssl_context=cls.ctx)

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.server.stop() == 0
        finally:
            cls.tmp.cleanup()

    @classmethod
    def path(cls, name: str) -> str:
        return os.path.join(cls.d, name)

    def sdk(self, base: str, ca: str | None = None, cert: str | None = None) -> openai.OpenAI:
        """The SDK with its own HTTP client (httpx, or httpx2 in openai 3) trusting `ca` (None: the
        system's CAs) and presenting the client certificate `cert` (NAME.pem with NAME.key)."""
        ctx = ssl.create_default_context(cafile=ca)
        if cert:
            ctx.load_cert_chain(self.path(cert + ".pem"), self.path(cert + ".key"))
        make = getattr(openai, "DefaultHttpx2Client", None) or openai.DefaultHttpxClient
        return openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0,
                             http_client=make(verify=ctx, timeout=120))

    def test_openai_sdk_over_https(self):
        self.assertEqual(self.server.base[:8], "https://")
        client = self.sdk(self.server.base, self.ca)
        self.assertEqual([m.id for m in client.models.list()], ["tiny-reasoner"])
        plain = client.chat.completions.create(model="tiny-reasoner", messages=MESSAGES, max_tokens=60,
                                               temperature=0)
        self.assertGreater(plain.usage.completion_tokens, 0)
        stream = client.chat.completions.create(model="tiny-reasoner", messages=MESSAGES, max_tokens=60,
                                                temperature=0, stream=True)
        content, reasoning = "", ""
        for chunk in stream:
            for c in chunk.choices:
                content += c.delta.content or ""
                reasoning += (c.delta.model_extra or {}).get("reasoning_content") or ""
        self.assertEqual(content, plain.choices[0].message.content or "")
        self.assertEqual(reasoning, (plain.choices[0].message.model_extra or {}).get("reasoning_content") or "")

    def test_untrusted_and_plain_clients_are_refused_and_counted(self):
        before = metric(self.server.get("/metrics")[1], "ponder_tls_handshake_failures_total")
        with self.assertRaises(openai.APIConnectionError):  # the system CAs do not know ours
            self.sdk(self.server.base).models.list()
        with self.assertRaises(openai.APIConnectionError):  # plain HTTP to the HTTPS port
            self.sdk(self.server.base.replace("https://", "http://")).models.list()
        self.assertTrue(wait_for(lambda: metric(self.server.get("/metrics")[1],
                                                "ponder_tls_handshake_failures_total") >= before + 2, 10))
        self.assertEqual(self.server.get("/health")[0], 200)

    def test_a_client_that_leaves_cancels_its_pending_request(self):
        """A TLS client's close (close_notify, then FIN) while a whole response is pending: the
        server cannot read the encrypted bytes without reading the next request, so it probes, and
        the reset cancels the request (499) instead of generating to the end."""
        body = json.dumps({"model": "tiny-reasoner", "messages": MESSAGES, "max_tokens": 900,
                           "min_tokens": 900, "n": 8, "temperature": 1.0}).encode()
        raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
        tls = self.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

        def running(n):
            return lambda: metric(self.server.get("/metrics")[1], "ponder_http_requests_in_progress") == n
        self.assertTrue(wait_for(running(1), 30))
        tls.close()
        self.assertTrue(wait_for(running(0), 30), "the request went on after its client left")
        text = self.server.get("/metrics")[1]
        self.assertIn('ponder_http_requests_total{endpoint="/v1/chat/completions",status="499"}', text)

    def sweep(self, target: str, name: str) -> subprocess.CompletedProcess:
        """`ponder sweep run` of 2 problems × 1 sample against `target` (a YAML flow mapping)."""
        spec = self.path(name + ".yaml")
        with open(spec, "w") as f:
            f.write(f"target: {target}\n"
                    "dataset: {suite: arith, levels: [2], split: test, count: 2}\n"
                    "samples: 1\nsampling: {temperature: 0, max_tokens: 48, seed: 1}\n"
                    "strategies: [pass@1]\n")
        return subprocess.run([PONDER, "sweep", "run", spec, "--out", self.path(name + "-out")], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    def test_sweep_runs_against_https_targets(self):
        ok = self.sweep(f"{{url: '{self.server.base}/v1', ca_file: '{self.ca}'}}", "url")
        self.assertEqual(ok.returncode, 0, ok.stderr[-2000:])
        # A target whose CA the sweep does not trust: a named TLS error, nothing recorded as done.
        other = self.path("otherca.pem")
        bad = self.sweep(f"{{url: '{self.server.base}/v1', ca_file: '{other}'}}", "untrusted")
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("TLS handshake with 127.0.0.1", bad.stderr)
        # target serve: with TLS flags: the runner starts an https server and talks to it.
        served = self.sweep(f"{{serve: {{model: models/tiny-reasoner, threads: 1, tls_cert: '{self.path('server.pem')}', "
                            f"tls_key: '{self.path('server.key')}'}}, ca_file: '{self.ca}'}}", "serve")
        self.assertEqual(served.returncode, 0, served.stderr[-2000:])

    def test_mtls_lets_in_only_clients_with_a_certificate_of_the_ca(self):
        server = Server("--model", MODEL, "--tls-cert", self.path("server.pem"), "--tls-key",
                        self.path("server.key"), "--tls-client-ca", self.path("clientca.pem"))
        try:
            ok = self.sdk(server.base, self.ca, "alice")
            self.assertEqual([m.id for m in ok.models.list()], ["tiny-reasoner"])
            r = ok.chat.completions.create(model="tiny-reasoner", messages=MESSAGES, max_tokens=5)
            self.assertEqual(r.usage.completion_tokens, 5)
            for cert in (None, "mallory"):
                with self.assertRaises(openai.APIConnectionError, msg=f"client certificate {cert}"):
                    self.sdk(server.base, self.ca, cert).models.list()
        finally:
            self.assertEqual(server.stop(), 0)

    def test_listener_rules_are_named_errors(self):
        self.assertIn("allow_plaintext", serve_error("--host", "0.0.0.0", "--api-key", "k"))
        self.assertIn("tls_cert and tls_key go together", serve_error("--tls-cert", self.path("server.pem")))
        self.assertIn("tls_client_ca", serve_error("--tls-client-ca", self.path("clientca.pem")))
        self.assertIn("is not the key of", serve_error("--tls-cert", self.path("server.pem"), "--tls-key",
                                                       self.path("alice.key")))
        loose = self.path("loose.key")
        with open(self.path("server.key")) as src, open(loose, "w") as dst:
            dst.write(src.read())
        os.chmod(loose, 0o644)
        said = serve_error("--tls-cert", self.path("server.pem"), "--tls-key", loose)
        self.assertIn(f"tls_key {loose} has mode 0644", said)
        self.assertIn("tls_cert " + self.path("nosuch.pem"),
                      serve_error("--tls-cert", self.path("nosuch.pem"), "--tls-key", self.path("server.key")))


if __name__ == "__main__":
    unittest.main()
