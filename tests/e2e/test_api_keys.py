"""API keys of many users as an operator runs them: `ponder api-keys add` makes keys (printed once,
stored hashed in a 0600 file), `ponder serve --api-keys-file` takes them, the official openai SDK
gets in with a listed key, is refused (AuthenticationError) without one and limited
(RateLimitError, Retry-After) past its key's limit; SIGHUP reloads the file (an added key works, a
removed one stops working, a broken file keeps the old keys); the audit log names each request's
key and holds no text."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

import openai

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import MODEL, PONDER, ROOT, Server, wait_for  # noqa: E402

MESSAGES = [{"role": "user", "content": "What is 47 * 23 + 158?"}]


def api_keys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PONDER, "api-keys", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


class ApiKeys(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.keys = os.path.join(cls.tmp.name, "keys.yaml")
        cls.audit = os.path.join(cls.tmp.name, "audit.jsonl")
        cls.key = {}
        for user, limits in (("alice", []), ("bob", ["--requests-per-minute", "2"])):
            r = api_keys("add", "--file", cls.keys, "--id", user, *limits)
            assert r.returncode == 0, r.stderr
            cls.key[user] = r.stdout.strip()
        cls.server = Server("--model", MODEL, "--api-keys-file", cls.keys, "--audit-log", cls.audit)

    @classmethod
    def tearDownClass(cls):
        try:
            assert cls.server.stop() == 0
        finally:
            cls.tmp.cleanup()

    def sdk(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.server.base + "/v1", api_key=key, max_retries=0)

    def hup(self, expect_in_log: str):
        seen = len(self.server.log)
        os.kill(self.server.proc.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: any(expect_in_log in line for line in self.server.log[seen:]), 30),
                        "".join(self.server.log[-10:]))

    def test_1_the_file_holds_hashes_only_and_is_private(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.keys).st_mode), 0o600)
        with open(self.keys) as f:
            text = f.read()
        for key in self.key.values():
            self.assertRegex(key, r"^pdr-[A-Za-z0-9_-]{43}$")
            self.assertNotIn(key, text)
        listed = api_keys("list", "--file", self.keys)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertRegex(listed.stdout, r"bob\s+2\s+0")
        dup = api_keys("add", "--file", self.keys, "--id", "alice")
        self.assertNotEqual(dup.returncode, 0)
        self.assertIn("already has a key with id 'alice'", dup.stderr)

    def test_2_listed_keys_get_in_and_others_do_not(self):
        r = self.sdk(self.key["alice"]).chat.completions.create(model="tiny-reasoner", messages=MESSAGES,
                                                                 max_tokens=5)
        self.assertEqual(r.usage.completion_tokens, 5)
        for wrong in ("unused", self.key["alice"][:-1]):
            with self.assertRaises(openai.AuthenticationError):
                self.sdk(wrong).models.list()
        self.assertEqual(self.server.get("/health")[0], 200)  # no key needed

    def test_3_a_key_past_its_limit_is_told_when_to_come_back(self):
        bob = self.sdk(self.key["bob"])
        bob.models.list()
        bob.models.list()
        with self.assertRaises(openai.RateLimitError) as refused:
            bob.models.list()
        self.assertGreaterEqual(int(refused.exception.response.headers["retry-after"]), 1)
        self.sdk(self.key["alice"]).models.list()  # alice has limits of her own (none)

    def test_4_sighup_reloads_the_keys(self):
        carol = api_keys("add", "--file", self.keys, "--id", "carol")
        self.assertEqual(carol.returncode, 0, carol.stderr)
        with self.assertRaises(openai.AuthenticationError):  # not before the reload
            self.sdk(carol.stdout.strip()).models.list()
        self.hup("3 API keys")
        self.sdk(carol.stdout.strip()).models.list()
        self.assertEqual(api_keys("remove", "--file", self.keys, "--id", "alice").returncode, 0)
        self.hup("2 API keys")
        with self.assertRaises(openai.AuthenticationError):
            self.sdk(self.key["alice"]).models.list()
        # A broken file: the error is logged and the keys in use stay.
        with open(self.keys) as f:
            good = f.read()
        with open(self.keys, "w") as f:
            f.write("keys: [")
        try:
            self.hup("the keys in use stay")
            self.sdk(carol.stdout.strip()).models.list()
        finally:
            with open(self.keys, "w") as f:
                f.write(good)

    def test_5_the_audit_log_names_keys_and_holds_no_text(self):
        with open(self.audit) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual(stat.S_IMODE(os.stat(self.audit).st_mode), 0o600)
        chats = [x for x in lines if x["route"] == "/v1/chat/completions"]
        self.assertTrue(chats)
        self.assertEqual(chats[0]["key_id"], "alice")
        self.assertEqual(chats[0]["status"], 200)
        self.assertEqual(chats[0]["completion_tokens"], 5)
        self.assertIn(401, [x["status"] for x in lines])
        self.assertIn(429, [x["status"] for x in lines if x["key_id"] == "bob"])
        text = json.dumps(lines)
        self.assertNotIn("47 * 23", text)
        for key in self.key.values():
            self.assertNotIn(key, text)


if __name__ == "__main__":
    unittest.main()
