"""`ponder serve --replicas 2` with its default `replica_curve`: the links to the replicas run CURVE
(the replica ROUTER's own ZMTP greeting says so: what a packet capture would show), the run's keys
are in a private directory (0700, secret keys 0600) that only file paths on the replicas' command
lines point to, no key is in any command line or environment of the server's process tree, every
replica registers with its allowed key, requests are served end to end, and the keys are gone once
the server has stopped."""
from __future__ import annotations

import glob
import os
import re
import socket
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import MODEL, Server, descendants  # noqa: E402


def zmtp_mechanism(port: int) -> str:
    """The security mechanism the endpoint announces in its ZMTP 3 greeting (bytes 12-31) to a peer
    that has sent the first 11 bytes of one (signature, major version 3) and stops there."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03")
        got = b""
        while len(got) < 64:
            chunk = s.recv(64 - len(got))
            if not chunk:
                break
            got += chunk
    if len(got) < 32 or got[0] != 0xFF or got[9] != 0x7F or got[10] != 3:
        raise AssertionError(f"not a ZMTP 3 greeting: {got!r}")
    return got[12:32].rstrip(b"\0").decode()


def key_of(path: str) -> str:
    with open(path) as f:
        return next(line.strip() for line in f if line.strip() and not line.startswith("#"))


def read_proc(pid: int, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return b""


class ReplicaLinkEndToEnd(unittest.TestCase):
    def test_two_replicas_serve_over_curve_links_with_this_runs_keys(self):
        server = Server("--model", MODEL, "--replicas", "2", "--threads", "1")
        keys_dir = None
        try:
            log = "".join(server.log)
            m = re.search(r"waiting for replicas on tcp://127\.0\.0\.1:(\d+)", log)
            self.assertIsNotNone(m, log)
            self.assertEqual(zmtp_mechanism(int(m.group(1))), "CURVE")

            m = re.search(r"replica links: CURVE with this run's keys in (\S+)", log)
            self.assertIsNotNone(m, log)
            keys_dir = m.group(1)
            self.assertEqual(stat.S_IMODE(os.stat(keys_dir).st_mode), 0o700)
            secret_files = sorted(glob.glob(os.path.join(keys_dir, "*.key")))
            self.assertEqual([os.path.basename(p) for p in secret_files],
                             ["replica-0.key", "replica-1.key", "server.key"])
            for path in secret_files:
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
            secrets = [key_of(p).encode() for p in secret_files]

            # Only paths travel: no key in any command line or environment of the tree.
            tree = [server.proc.pid, *descendants(server.proc.pid)]
            with_key_files = 0
            for pid in tree:
                cmdline, environ = read_proc(pid, "cmdline"), read_proc(pid, "environ")
                for secret in secrets:
                    self.assertNotIn(secret, cmdline, f"a secret key in the command line of {pid}")
                    self.assertNotIn(secret, environ, f"a secret key in the environment of {pid}")
                if b"--curve-key\0" + keys_dir.encode() in cmdline:
                    with_key_files += 1
            self.assertGreaterEqual(with_key_files, 2, "the replicas' command lines name their key files")

            for r in (0, 1):
                self.assertEqual(len(re.findall(rf"registered: .*, CURVE key replica-{r}\b", log)), 1, log)
            self.assertGreaterEqual(log.count("CURVE: encrypted, the coordinator's key verified"), 2, log)

            for i in range(4):  # both replicas get some of them
                status, body = server.post("/v1/chat/completions", {
                    "messages": [{"role": "user", "content": f"What is {i} + 2?"}],
                    "max_tokens": 24, "temperature": 0})
                self.assertEqual(status, 200, body)
                self.assertEqual(body["usage"]["completion_tokens"] > 0, True, body)
            status, _ = server.get("/health")
            self.assertEqual(status, 200)
        finally:
            rc = server.stop()
        self.assertEqual(rc, 0, "".join(server.log[-30:]))
        self.assertFalse(os.path.exists(keys_dir), "the run's keys outlived it")

    def test_the_keys_of_a_killed_coordinator_are_removed_by_the_next_one(self):
        first = Server("--model", MODEL, "--replicas", "2", "--threads", "1")
        try:
            m = re.search(r"this run's keys in (\S+)", "".join(first.log))
            self.assertIsNotNone(m, "".join(first.log))
            stale = m.group(1)
        finally:
            first.kill()  # SIGKILL: no chance to clean up
        self.assertTrue(os.path.exists(os.path.join(stale, "server.key")))
        second = Server("--model", MODEL, "--replicas", "2", "--threads", "1")
        try:
            self.assertFalse(os.path.exists(stale), "".join(second.log))
            self.assertIn(f"removed {stale}, the CURVE keys of a coordinator", "".join(second.log))
        finally:
            self.assertEqual(second.stop(), 0)


if __name__ == "__main__":
    unittest.main()
