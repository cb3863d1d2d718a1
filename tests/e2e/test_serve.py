"""`ponder serve` end to end: a real server process with 2 replicas (each an mpirun of
`ponder replica`), driven over real HTTP. The bundled model is small enough for CI; outputs are
checked for structure and consistency, never for exact text (the model may be retrained)."""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import MODEL, ROOT, Server, metric, wait_for  # noqa: E402

QUESTION = "What is 47 * 23 + 158?"
CHAT = {"model": "tiny-reasoner", "messages": [{"role": "user", "content": QUESTION}]}


class ServeTwoReplicas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server("--model", MODEL, "--replicas", "2", "--threads", "1", "--max-n", "8",
                            "--heartbeat-timeout-ms", "2000")

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            print("".join(cls.server.log[-30:]), file=sys.stderr)
        assert code == 0, f"ponder serve exited {code} after SIGTERM"

    def chat(self, **extra):
        status, body = self.server.post("/v1/chat/completions", {**CHAT, **extra})
        self.assertEqual(status, 200, body)
        return body

    def test_models_health_and_metrics(self):
        status, text = self.server.get("/v1/models")
        self.assertEqual(status, 200)
        models = json.loads(text)
        self.assertEqual(models["object"], "list")
        self.assertEqual(models["data"][0]["id"], "tiny-reasoner")
        self.assertEqual(self.server.get("/health")[0], 200)
        status, text = self.server.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("# TYPE", text)

    def test_chat_splits_reasoning_from_the_answer_and_counts_usage(self):
        body = self.chat(max_tokens=400, temperature=0)
        self.assertEqual(body["object"], "chat.completion")
        choice = body["choices"][0]
        self.assertEqual(choice["message"]["role"], "assistant")
        self.assertIn(choice["finish_reason"], ("stop", "length"))
        if choice["finish_reason"] == "stop":
            self.assertTrue(choice["message"].get("reasoning_content"))
            self.assertNotIn("<think>", choice["message"]["content"])
            self.assertNotIn("</think>", choice["message"]["content"])
        u = body["usage"]
        self.assertEqual(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"])
        self.assertGreater(u["completion_tokens_details"]["reasoning_tokens"], 0)
        self.assertLessEqual(u["completion_tokens_details"]["reasoning_tokens"], u["completion_tokens"])
        # Greedy is reproducible, and the stream carries the same text.
        again = self.chat(max_tokens=400, temperature=0)
        self.assertEqual(again["choices"][0]["message"], choice["message"])
        events = self.server.stream("/v1/chat/completions", {**CHAT, "max_tokens": 400, "temperature": 0,
                                                            "stream_options": {"include_usage": True}})
        self.assertEqual(events[-1], "[DONE]")
        chunks = events[:-1]
        self.assertEqual(chunks[0]["choices"][0]["delta"].get("role"), "assistant")
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or ""
                            for c in chunks if c["choices"])
        self.assertEqual(content, choice["message"]["content"])
        self.assertEqual(reasoning, choice["message"].get("reasoning_content") or "")
        finals = [c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
        self.assertEqual(len(finals), 1)
        self.assertEqual(finals[0]["choices"][0]["finish_reason"], choice["finish_reason"])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"], u)
        for c in chunks:
            self.assertEqual(c["object"], "chat.completion.chunk")
            self.assertEqual(c["id"], chunks[0]["id"])

    def test_n_samples_with_a_seed_are_reproducible(self):
        # Temperature 2: at 1 the tiny reasoner is so sure of this question's working that its
        # first 60 tokens are often the same in every sample.
        a = self.chat(n=4, seed=7, temperature=2.0, max_tokens=60)
        b = self.chat(n=4, seed=7, temperature=2.0, max_tokens=60)
        self.assertEqual([c["index"] for c in a["choices"]], [0, 1, 2, 3])
        texts = [(c["message"].get("reasoning_content"), c["message"]["content"]) for c in a["choices"]]
        self.assertEqual(texts, [(c["message"].get("reasoning_content"), c["message"]["content"])
                                 for c in b["choices"]])
        self.assertGreater(len(set(texts)), 1, "4 samples at temperature 2 were all the same")

    def test_max_tokens_ends_with_length(self):
        body = self.chat(max_tokens=5, temperature=0)
        self.assertEqual(body["choices"][0]["finish_reason"], "length")
        self.assertEqual(body["usage"]["completion_tokens"], 5)

    def test_stop_strings_are_cut_from_the_text(self):
        # Completions of the raw prompt so that the stop string is plain output text.
        prompt = "<|im_start|>user\n" + QUESTION + "<|im_end|>\n<|im_start|>assistant\n<think>\n"
        status, full = self.server.post("/v1/completions", {"model": "tiny-reasoner", "prompt": prompt,
                                                            "max_tokens": 60, "temperature": 0})
        self.assertEqual(status, 200, full)
        text = full["choices"][0]["text"]
        self.assertGreater(len(text), 8)
        stop = text[4:7]
        status, cut = self.server.post("/v1/completions", {"model": "tiny-reasoner", "prompt": prompt,
                                                           "max_tokens": 60, "temperature": 0, "stop": [stop]})
        self.assertEqual(status, 200, cut)
        self.assertEqual(cut["choices"][0]["finish_reason"], "stop")
        self.assertEqual(cut["choices"][0]["text"], text[:text.index(stop)])

    def test_logprobs(self):
        body = self.chat(max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
        content = body["choices"][0]["logprobs"]["content"]
        self.assertEqual(len(content), 6)
        for entry in content:
            self.assertLessEqual(entry["logprob"], 0.0)
            self.assertEqual(len(entry["top_logprobs"]), 3)
            self.assertEqual(entry["top_logprobs"][0]["logprob"], max(t["logprob"] for t in entry["top_logprobs"]))

    def test_errors_have_the_openai_shape(self):
        cases = [
            (b"{not json", 400),
            ({**CHAT, "temperature": -1}, 400),
            ({**CHAT, "n": 0}, 400),
            ({**CHAT, "n": 9}, 400),
            ({**CHAT, "top_p": 0}, 400),
            ({**CHAT, "max_tokens": "many"}, 400),
            ({**CHAT, "model": "no-such-model"}, 404),
            ({**CHAT, "messages": [{"role": "user", "content": "1 + 1 = 2. " * 2000}]}, 400),
        ]
        for body, want in cases:
            status, answer = self.server.post("/v1/chat/completions", body)
            self.assertEqual(status, want, (body if isinstance(body, bytes) else
                                            {k: v for k, v in body.items() if k != "messages"}, answer))
            self.assertIn("message", answer["error"])
            self.assertIn("type", answer["error"])

    def test_client_that_goes_away_cancels_and_the_next_request_is_served(self):
        events = self.server.stream("/v1/chat/completions",
                                    {**CHAT, "max_tokens": 900, "ignore_eos": True}, stop_after=3)
        self.assertEqual(len(events), 3)
        _, text = self.server.get("/metrics")
        self.assertTrue(wait_for(lambda: metric(self.server.get("/metrics")[1], "ponder_requests_in_flight") == 0,
                                 timeout=30), "the abandoned request was not cancelled")
        self.assertEqual(self.chat(max_tokens=8)["usage"]["completion_tokens"], 8)

    def test_64_concurrent_streams_all_complete_with_correct_usage(self):
        def one(i):
            events = self.server.stream("/v1/chat/completions",
                                        {**CHAT, "max_tokens": 12 + i % 5, "ignore_eos": True,
                                         "temperature": 0.8, "seed": i,
                                         "stream_options": {"include_usage": True}})
            return i, events

        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            results = list(pool.map(one, range(64)))
        for i, events in results:
            self.assertEqual(events[-1], "[DONE]")
            self.assertEqual(events[-2]["usage"]["completion_tokens"], 12 + i % 5)
            finals = [e for e in events[:-1] if e["choices"] and e["choices"][0].get("finish_reason")]
            self.assertEqual(finals[0]["choices"][0]["finish_reason"], "length")


class ServeReplicaLoss(unittest.TestCase):
    def test_killed_replica_requests_finish_on_the_other_and_health_follows(self):
        # The random-weight default model (made by scripts/test.sh) decodes far slower than the
        # tiny reasoner (a 151 669-token lm_head), so the kill surely lands mid-generation.
        slow = os.path.join(os.path.dirname(MODEL), "random-default")
        if not os.path.exists(os.path.join(slow, "config.json")):
            self.skipTest("models/random-default is made by scripts/test.sh (tools/make_random_model.py)")
        server = Server("--model", slow, "--replicas", "2", "--threads", "1",
                        "--heartbeat-timeout-ms", "800", "--max-replica-restarts", "0")
        try:
            groups = server.replica_groups()
            self.assertEqual(len(groups), 2, server.log)
            results = {}
            n_requests, n_tokens = 12, 300
            request = {"model": "random-default", "messages": CHAT["messages"]}

            def one(i):
                results[i] = server.stream("/v1/chat/completions",
                                           {**request, "max_tokens": n_tokens, "ignore_eos": True, "seed": i,
                                            "temperature": 0.7, "stream_options": {"include_usage": True}})

            with concurrent.futures.ThreadPoolExecutor(n_requests) as pool:
                futures = [pool.submit(one, i) for i in range(n_requests)]
                # Kill one replica (its rank and mpirun) once both are generating.
                self.assertTrue(wait_for(lambda: metric(server.get("/metrics")[1], "ponder_generation_tokens_total")
                                         >= 2 * n_requests, timeout=60, interval=0.01))
                server.kill_replica(groups[0])
                for f in futures:
                    f.result(timeout=300)
            for i, events in results.items():
                self.assertEqual(events[-1], "[DONE]", i)
                self.assertEqual(events[-2]["usage"]["completion_tokens"], n_tokens, i)
            log = "".join(server.log)
            self.assertIn("is lost", log)
            self.assertIn("continues elsewhere", log, "no request was moved: the kill came too late")
            self.assertEqual(server.get("/health")[0], 200)
            # The second replica goes too: /health says so and requests fail cleanly, fast.
            server.kill_replica(groups[1])
            self.assertTrue(wait_for(lambda: server.get("/health")[0] == 503, timeout=10))
            status, body = server.post("/v1/chat/completions", {**request, "max_tokens": 4})
            self.assertEqual(status, 503, body)
            self.assertEqual(server.stop(), 0)
        finally:
            if server.proc.poll() is None:
                server.kill()


class ServeReplicaRestart(unittest.TestCase):
    """`ponder serve` supervises its replicas: one whose process group is SIGKILLed is started
    again (with backoff, up to max_replica_restarts) and registers like a new one; /health and
    /metrics show it; requests meanwhile get 200 or 503 + Retry-After, never 500."""

    ARGS = ("--model", MODEL, "--replicas", "2", "--threads", "1", "--kv-cache-bytes", "16MiB",
            "--heartbeat-timeout-ms", "1500", "--replica-restart-backoff-ms", "200")
    REQUEST = {**CHAT, "max_tokens": 8, "temperature": 0}

    def health(self, server):
        status, text = server.get("/health")
        return status, json.loads(text)

    def states(self, server):
        return [(s["state"], s["restarts"]) for s in self.health(server)[1]["replica_states"]]

    def request_loop(self, server, stop, answers):
        while not stop.is_set():
            req = urllib.request.Request(server.base + "/v1/chat/completions", method="POST",
                                         data=json.dumps(self.REQUEST).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    answers.append((r.status, None, None))
            except urllib.error.HTTPError as e:
                answers.append((e.code, e.headers.get("Retry-After"), e.read().decode()))

    def check_answers(self, answers):
        self.assertTrue(answers)
        for status, retry_after, body in answers:
            self.assertIn(status, (200, 503), body)
            if status == 503:
                self.assertIsNotNone(retry_after, body)

    def test_a_killed_replica_is_restarted_and_both_killed_recover(self):
        import threading
        server = Server(*self.ARGS)
        try:
            self.assertEqual(self.states(server), [("healthy", 0), ("healthy", 0)])
            groups = server.replica_groups()
            self.assertEqual(len(groups), 2, server.log)
            stop, answers = threading.Event(), []
            loop = threading.Thread(target=self.request_loop, args=(server, stop, answers))
            loop.start()
            try:
                self.assertTrue(wait_for(lambda: len(answers) >= 3, timeout=60))
                counters = ("ponder_generation_tokens_total", "ponder_prefills_total",
                            "ponder_prompt_tokens_computed_total", "ponder_prefix_cache_queries_total")
                # (the replicas' counts come with their heartbeats)
                self.assertTrue(wait_for(lambda: metric(server.get("/metrics")[1], counters[0]) > 0, 10))
                before = {name: metric(server.get("/metrics")[1], name) for name in counters}
                server.kill_replica(groups[0])
                self.assertTrue(wait_for(lambda: sorted(self.states(server)) == [("healthy", 0), ("healthy", 1)],
                                         timeout=60, interval=0.1), self.health(server))
                seen = len(answers)
                self.assertTrue(wait_for(lambda: len(answers) >= seen + 3, timeout=60))
                self.assertIn(200, [a[0] for a in answers[seen:]])
                metrics = server.get("/metrics")[1]
                self.assertEqual(metric(metrics, "ponder_replica_restarts_total"), 1)
                self.assertEqual(metric(metrics, "ponder_replicas_down"), 0)
                for name in counters:  # the lost replica's counts stay counted
                    self.assertGreaterEqual(metric(metrics, name), before[name], name)
                self.assertEqual(self.health(server)[0], 200)
                self.assertNotIn(groups[0], server.replica_groups())
                # Both go (requests still coming): the server comes back instead of answering 503
                # forever.
                for group in server.replica_groups():
                    server.kill_replica(group)
                self.assertTrue(wait_for(lambda: self.states(server) == [("healthy", 2), ("healthy", 1)],
                                         timeout=60, interval=0.1), self.health(server))
                seen = len(answers)
                self.assertTrue(wait_for(lambda: 200 in [a[0] for a in answers[seen:]], timeout=30))
            finally:
                stop.set()
                loop.join(timeout=120)
            self.assertFalse(loop.is_alive())
            self.check_answers(answers)
            self.assertEqual(metric(server.get("/metrics")[1], "ponder_replica_restarts_total"), 3)
            self.assertEqual(server.stop(), 0)
        finally:
            if server.proc.poll() is None:
                server.kill()

    def test_past_the_restart_limit_the_replica_stays_failed(self):
        server = Server(*self.ARGS, "--max-replica-restarts", "0")
        try:
            groups = server.replica_groups()
            self.assertEqual(len(groups), 2, server.log)
            server.kill_replica(groups[1])
            self.assertTrue(wait_for(lambda: ("failed", 0) in self.states(server), timeout=30, interval=0.1),
                            self.health(server))
            status, body = self.health(server)
            self.assertEqual(status, 200, body)  # the other replica is healthy
            self.assertEqual(sorted(self.states(server)), [("failed", 0), ("healthy", 0)])
            self.assertTrue(wait_for(lambda: body["healthy_replicas"] == 1 or
                                     self.health(server)[1]["healthy_replicas"] == 1, timeout=10))
            self.assertEqual(metric(server.get("/metrics")[1], "ponder_replicas_down"), 1)
            self.assertEqual(metric(server.get("/metrics")[1], "ponder_replica_restarts_total"), 0)
            self.assertIn("stays down", "".join(server.log))
            status, body = server.post("/v1/chat/completions", self.REQUEST)
            self.assertEqual(status, 200, body)
            # The last one goes too: nothing restarts it, so 503 with Retry-After.
            server.kill_replica(server.replica_groups()[0])
            self.assertTrue(wait_for(lambda: self.health(server)[0] == 503, timeout=30, interval=0.1))
            self.assertEqual(self.states(server), [("failed", 0), ("failed", 0)])
            req = urllib.request.Request(server.base + "/v1/chat/completions", method="POST",
                                         data=json.dumps(self.REQUEST).encode(),
                                         headers={"Content-Type": "application/json"})
            with self.assertRaises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=60)
            self.assertEqual(e.exception.code, 503)
            self.assertIsNotNone(e.exception.headers.get("Retry-After"))
            self.assertEqual(server.stop(), 0)
        finally:
            if server.proc.poll() is None:
                server.kill()


class ServeConfig(unittest.TestCase):
    def test_the_bundled_config_starts_and_drains(self):
        server = Server("--config", "configs/local.yaml")
        try:
            self.assertEqual(server.get("/health")[0], 200)
            self.assertEqual(len(server.replica_groups()), 2)
            status, body = server.post("/v1/chat/completions", {**CHAT, "max_tokens": 4})
            self.assertEqual(status, 200, body)
            self.assertEqual(server.stop(signal.SIGINT), 0)
        finally:
            if server.proc.poll() is None:
                server.kill()

    def test_without_a_model_it_serves_the_bundled_tiny_reasoner(self):
        server = Server()
        try:
            status, text = server.get("/v1/models")
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(text)["data"][0]["id"], "tiny-reasoner")
            status, body = server.post("/v1/chat/completions", {**CHAT, "max_tokens": 4})
            self.assertEqual(status, 200, body)
            self.assertEqual(server.stop(), 0)
        finally:
            if server.proc.poll() is None:
                server.kill()

    def test_bad_settings_are_errors_naming_the_key(self):
        import subprocess
        import tempfile
        from serve_harness import PONDER, ROOT
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("model: models/tiny-reasoner\nreplicaz: 2\n")
        cases = [(["--config", f.name], "unknown key 'replicaz'"),
                 (["--model", "models/tiny-reasoner", "--tp", "zero"], "'tp' must be an integer"),
                 (["--model", "models/tiny-reasoner", "--host", "0.0.0.0"], "api_key"),
                 (["--model", "/nonexistent"], "config.json"),
                 (["--model", "models/tiny-reasoner", "--backend", "tpu"], "'backend' must be cpu or cuda"),
                 (["--config", "/nonexistent.yaml"], "cannot read the config"),
                 (["--model", "models/tiny-reasoner", "--kv-cache-dtype", "f16"],
                  "'kv_cache_dtype' must be f32 or bf16"),
                 (["--model", "models/tiny-reasoner", "--ep", "2"],
                  "expert parallelism needs a mixture-of-experts model"),
                 (["--model", "models/tiny-reasoner", "--quantize", "int4"],
                  "'quantize' must be none or int8")]
        for args, message in cases:
            r = subprocess.run([PONDER, "serve", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(message, r.stderr, args)
        os.unlink(f.name)

    def test_a_bf16_kv_cache_holds_twice_the_tokens_in_the_same_bytes(self):
        seen = {}
        for dtype in ("f32", "bf16"):
            server = Server("--kv-cache-dtype", dtype, "--kv-cache-bytes", "8MiB")
            try:
                metrics = server.get("/metrics")[1]
                seen[dtype] = (metric(metrics, "ponder_kv_cache_bytes_per_token"),
                               metric(metrics, "ponder_kv_blocks_free"))
                status, body = server.post("/v1/chat/completions", {**CHAT, "max_tokens": 8})
                self.assertEqual(status, 200, body)
                self.assertEqual(server.stop(), 0)
            finally:
                if server.proc.poll() is None:
                    server.kill()
        self.assertEqual(seen["bf16"][0] * 2, seen["f32"][0])
        self.assertGreaterEqual(seen["bf16"][1], 2 * seen["f32"][1])

    def test_int8_weights_answer_like_the_bf16_model_in_process_and_in_replicas(self):
        # The tiny reasoner, trained: int8 weights (per-row scales) keep its greedy answer to the
        # question; in-process and through `ponder replica` processes (the flag travels there).
        answers = {}
        for args in ((), ("--quantize", "int8"), ("--quantize", "int8", "--replicas", "2")):
            server = Server("--threads", "1", *args)
            try:
                status, body = server.post("/v1/chat/completions",
                                           {**CHAT, "temperature": 0, "max_tokens": 400})
                self.assertEqual(status, 200, body)
                answers[args] = body["choices"][0]["message"]["content"]
                self.assertEqual(server.stop(), 0)
            finally:
                if server.proc.poll() is None:
                    server.kill()
        plain = answers[()]
        self.assertIn("boxed", plain)
        for args, answer in answers.items():
            self.assertEqual(answer, plain, args)

    def test_cuda_backend_without_a_gpu_is_a_clear_error(self):
        import shutil
        import subprocess
        from serve_harness import PONDER, ROOT
        smi = shutil.which("nvidia-smi")
        if smi and subprocess.run([smi, "-L"], capture_output=True).returncode == 0:
            self.skipTest("a GPU is visible here")
        r = subprocess.run([PONDER, "serve", "--model", "models/tiny-reasoner", "--backend", "cuda",
                            "--port", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        # A CUDA build names the driver's reason; a CPU-only build names the rebuild.
        self.assertRegex(r.stderr, r"backend cuda: (no usable CUDA device|this ponder was built without)")


def serve_help_default(key: str) -> int:
    """The default `ponder serve --help` states for `key`."""
    import re
    import subprocess
    from serve_harness import PONDER, ROOT
    out = subprocess.run([PONDER, "serve", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    m = re.search(rf"^  {key} N .*\(default (\d+)\)$", out, re.M)
    assert m, f"--help states no default for {key}:\n{out}"
    return int(m.group(1))


class ServeSmallKvCache(unittest.TestCase):
    """A KV cache smaller than the context (issue #17): a chat without max_tokens gets the largest
    budget the cache holds beside its prompt; a max_tokens beyond it is a 400 naming the field."""

    def check(self, *args: str):
        server = Server("--model", MODEL, "--threads", "1", "--kv-cache-bytes", "1MiB", *args)
        try:
            free = lambda: metric(server.get("/metrics")[1], "ponder_kv_blocks_free")  # noqa: E731
            self.assertTrue(wait_for(lambda: free() > 0, 30))  # the replicas' first heartbeats
            blocks = free()  # all free at idle
            cache_tokens = int(blocks) * 16 // (2 if "--replicas" in args else 1)  # per replica
            self.assertLess(cache_tokens, 1024, "the cache should be smaller than the context")
            status, body = server.post("/v1/chat/completions", {**CHAT, "ignore_eos": True})
            self.assertEqual(status, 200, body)
            usage = body["usage"]
            self.assertEqual(usage["prompt_tokens"] + usage["completion_tokens"], cache_tokens, usage)
            self.assertEqual(body["choices"][0]["finish_reason"], "length")
            status, body = server.post("/v1/chat/completions", {**CHAT, "max_tokens": cache_tokens})
            self.assertEqual(status, 400, body)
            self.assertEqual(body["error"]["param"], "max_tokens", body)
            self.assertEqual(server.stop(), 0)
        finally:
            if server.proc.poll() is None:
                server.kill()

    def test_in_process(self):
        self.check()

    def test_two_replicas(self):
        self.check("--replicas", "2")


class ServeApiKeyFile(unittest.TestCase):
    """--api-key-file: the key is read from a 0600 file and is on no command line (the server's or
    any replica's); the server runs with the default max_n, which the docs must state."""

    @classmethod
    def setUpClass(cls):
        import secrets
        import tempfile
        cls.dir = tempfile.mkdtemp()
        cls.key = "pk-" + secrets.token_hex(16)
        cls.key_file = os.path.join(cls.dir, "key")
        with open(os.open(cls.key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(f"  {cls.key} \nnot the key\n")
        os.chmod(cls.key_file, 0o600)
        cls.server = Server("--model", MODEL, "--replicas", "2", "--threads", "1", "--api-key-file", cls.key_file)

    @classmethod
    def tearDownClass(cls):
        import shutil
        code = cls.server.stop()
        shutil.rmtree(cls.dir)
        assert code == 0, f"ponder serve exited {code} after SIGTERM"

    def post(self, body: dict, key: str | None):
        return self.server.post("/v1/chat/completions", body, {"Authorization": f"Bearer {key}"} if key else None)

    def test_requests_need_the_key_of_the_file(self):
        status, body = self.post({**CHAT, "max_tokens": 4}, None)
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"]["code"], "invalid_api_key")
        self.assertEqual(self.post({**CHAT, "max_tokens": 4}, "not-" + self.key)[0], 401)
        status, body = self.post({**CHAT, "max_tokens": 4}, self.key)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.server.get("/health")[0], 200)  # probes need no key

    def test_the_key_is_on_no_command_line_and_in_no_environment(self):
        from serve_harness import descendants
        pids = [self.server.proc.pid, *descendants(self.server.proc.pid)]
        # The server, both replicas' mpirun and their ranks.
        self.assertGreaterEqual(len(pids), 5, pids)
        for pid in pids:
            for what in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{pid}/{what}", "rb") as f:
                        text = f.read()
                except (FileNotFoundError, ProcessLookupError):
                    continue
                self.assertNotIn(self.key.encode(), text, f"/proc/{pid}/{what}")
        with open(f"/proc/{self.server.proc.pid}/cmdline", "rb") as f:
            self.assertIn(self.key_file.encode(), f.read())  # what the check reads is the real thing
        import subprocess
        ps = subprocess.run(["ps", "-eo", "pid,args", "ww"], capture_output=True, text=True).stdout
        self.assertNotIn(self.key, ps)
        # GET /v1/models shows the settings, never the key or its file.
        status, text = self.server.get("/v1/models")
        self.assertEqual(status, 401)
        req = urllib.request.Request(self.server.base + "/v1/models", headers={"Authorization": "Bearer " + self.key})
        with urllib.request.urlopen(req, timeout=60) as r:
            models = r.read().decode()
        self.assertNotIn(self.key, models)
        self.assertNotIn(self.key_file, models)
        self.assertIn('"api_key_set":true', models.replace(" ", ""))

    def test_the_default_max_n_is_the_documented_one(self):
        import re
        default = serve_help_default("max_n")
        with open(os.path.join(ROOT, "docs", "api.md")) as f:
            m = re.search(r"`max_n` is a server option \(`ponder serve --max-n`, default (\d+)\)", f.read())
        self.assertIsNotNone(m, "docs/api.md states no default for max_n")
        self.assertEqual(int(m.group(1)), default, "docs/api.md and ponder serve --help disagree on max_n")
        # This server runs with the default: n = max_n is served, one more is a 400 naming the limit.
        status, body = self.post({**CHAT, "max_tokens": 2, "n": default}, self.key)
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["choices"]), default)
        status, body = self.post({**CHAT, "max_tokens": 2, "n": default + 1}, self.key)
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["param"], "n")
        self.assertIn(f"[1, {default}]", body["error"]["message"])

    def test_key_files_others_can_read_or_empty_ones_are_refused_naming_the_file(self):
        import subprocess
        from serve_harness import PONDER
        world = os.path.join(self.dir, "world-readable")
        empty = os.path.join(self.dir, "empty")
        blank = os.path.join(self.dir, "blank-first-line")
        for path, text, mode in ((world, self.key + "\n", 0o644), (empty, "", 0o600), (blank, " \nkey\n", 0o600)):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, mode)
        cases = [(["--api-key-file", world], f"api_key_file {world} has mode 0644"),
                 (["--api-key-file", empty], f"api_key_file {empty} is empty"),
                 (["--api-key-file", blank], f"api_key_file {blank} is empty"),
                 (["--api-key-file", os.path.join(self.dir, "none")], "cannot read the api_key_file"),
                 (["--api-key-file", self.key_file, "--api-key", "k"], "'api_key' and 'api_key_file' are both set"),
                 (["--host", "0.0.0.0"], "api_key_file")]
        for args, message in cases:
            r = subprocess.run([PONDER, "serve", "--model", MODEL, *args], cwd=ROOT, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(message, r.stderr, args)


if __name__ == "__main__":
    unittest.main(verbosity=2)
