"""`ponder sweep run` end to end against a real `ponder serve` on loopback: a small spec, a run
stopped by SIGTERM and resumed (one request per problem and point across both runs, counted at the
server), a malformed spec (no request sent), a server that dies mid-run (failed samples recorded
with their error, completed by a rerun against a new server), and `target: serve:`
(configs/sweeps/tiny-smoke.yaml). Every wait is bounded; every process is stopped by pid."""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from serve_harness import PONDER, ROOT, Server, wait_for  # noqa: E402

SPEC = """
dataset: {suite: arith, levels: [2], split: test, count: 8}
samples: 4
sampling: {temperature: 1.0, max_tokens: 256, seed: 1}
grid: {max_thinking_tokens: [16, 64, null]}
strategies: [pass@1, maj@k]
max_attempts: 2
"""
PROBLEMS, POINTS, SAMPLES = 8, 3, 4


def chat_requests(server: Server) -> int:
    """Requests the server answered on /v1/chat/completions (any status)."""
    status, text = server.get("/metrics")
    assert status == 200, text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("ponder_http_requests_total{")
                   and 'endpoint="/v1/chat/completions"' in line))


def metric(server: Server, name: str) -> float:
    status, text = server.get("/metrics")
    assert status == 200, text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.split(" ")[0].split("{")[0] == name)


def rows(out: str, sql: str, args=()):
    path = os.path.join(out, "results.sqlite")
    if not os.path.exists(path):
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        db.close()


def ok_samples(out: str) -> int:
    r = rows(out, "SELECT COUNT(*) FROM samples WHERE status = 'ok'")
    return r[0][0] if r else 0


class Runner:
    """One `ponder sweep run`, its output collected; stopped by pid."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([PONDER, "sweep", "run", *args], cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)

    def wait(self, timeout: float = 300) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
            raise AssertionError(f"ponder sweep run did not finish in {timeout}s:\n{err[-3000:]}")
        return self.proc.returncode, out, err


def run(*args: str, timeout: float = 300) -> tuple[int, str, str]:
    return Runner(*args).wait(timeout)


class SweepRunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="ponder-sweep-")
        self.spec = os.path.join(self.tmp.name, "spec.yaml")
        with open(self.spec, "w") as f:
            f.write(SPEC)
        self.out = os.path.join(self.tmp.name, "run")
        self.servers: list[Server] = []

    def tearDown(self):
        for s in self.servers:
            if s.proc.poll() is None:
                s.kill()
        self.tmp.cleanup()

    def server(self) -> Server:
        s = Server("--threads", "2")
        self.servers.append(s)
        return s

    def test_killed_run_resumes_without_asking_again(self):
        server = self.server()
        target = server.base + "/v1"
        first = Runner(self.spec, "--out", self.out, "--target", target, "--concurrency", "1")
        self.assertTrue(wait_for(lambda: ok_samples(self.out) > 0 or first.proc.poll() is not None, 240))
        first.proc.send_signal(signal.SIGTERM)
        rc, out, err = first.wait(240)
        done_first = ok_samples(self.out)
        self.assertEqual(rc, 130, err[-2000:])
        self.assertLess(done_first, PROBLEMS * POINTS * SAMPLES, "the run ended before it was stopped")
        self.assertEqual(done_first % SAMPLES, 0)  # whole requests only
        first_err = err
        rc, out, err = run(self.spec, "--out", self.out, "--target", target)
        self.assertEqual(rc, 0, err[-2000:])
        # One request per problem and point across both runs: nothing finished was asked again.
        # (Both runs' logs and the server's on failure: retries are logged as "attempt N".)
        self.assertEqual(chat_requests(server), PROBLEMS * POINTS,
                         f"stored after the first run: {done_first}\n--- first run:\n{first_err[-3000:]}\n"
                         f"--- second run:\n{err[-3000:]}\n--- server:\n{''.join(server.log[-40:])}")
        # ... and one prefill each: the n samples of a request share it (fork, not n prompts).
        self.assertEqual(metric(server, "ponder_prefills_total"), PROBLEMS * POINTS)

        samples = rows(self.out, "SELECT status, correct, content, prompt_tokens, completion_tokens, "
                                 "reasoning_tokens, answer_tokens, flops, finish_reason, logprob_sum, "
                                 "seed, sample_index, attempts, latency_s FROM samples")
        self.assertEqual(len(samples), PROBLEMS * POINTS * SAMPLES)
        for (status, correct, content, prompt, completion, reasoning, answer, flops, finish,
             logprob, seed, index, attempts, latency) in samples:
            self.assertEqual(status, "ok")
            self.assertIn(correct, (0, 1))
            self.assertGreater(prompt, 0)
            self.assertEqual(completion, reasoning + answer)
            self.assertGreater(flops, 0)
            self.assertIn(finish, ("stop", "length"))
            self.assertLessEqual(logprob, 0)
            self.assertEqual(attempts, 1)
            self.assertGreater(latency, 0)
        # Thinking budgets hold: at 16 thinking tokens (the delimiter included) no sample thinks longer.
        budgets = rows(self.out, "SELECT json_extract(p.params_json, '$.max_thinking_tokens'), "
                                 "MAX(s.reasoning_tokens) FROM samples s JOIN points p USING (point_id) "
                                 "GROUP BY p.point_id")
        self.assertEqual(len(budgets), POINTS)
        for budget, longest in budgets:
            if budget is not None:
                self.assertLessEqual(longest, budget + 1)
        # Per problem and point, the samples have seeds seed, seed + 1, ...
        seeds = rows(self.out, "SELECT MIN(seed), MAX(seed), MIN(sample_index), MAX(sample_index) "
                               "FROM samples GROUP BY point_id, problem_id")
        for lo, hi, first_index, last_index in seeds:
            self.assertEqual((hi - lo, first_index, last_index), (SAMPLES - 1, 0, SAMPLES - 1))
        meta = dict(rows(self.out, "SELECT key, value FROM meta"))
        for key in ("spec_yaml", "spec_hash", "served_model", "model_config_hash", "ponder_revision",
                    "created_unix", "strategies", "samples"):
            self.assertIn(key, meta)
        self.assertEqual(json.loads(meta["strategies"]), ["pass@1", "maj@k"])
        self.assertEqual(meta["samples"], "4")
        self.assertEqual(meta["served_model"], "tiny-reasoner")
        self.assertTrue(meta["model_config_hash"].startswith("sha256:"), meta["model_config_hash"])
        params = [json.loads(p) for (p,) in rows(self.out, "SELECT params_json FROM points")]
        self.assertEqual(sorted(str(p["max_thinking_tokens"]) for p in params), ["16", "64", "None"])
        provenance = json.loads(rows(self.out, "SELECT provenance_json FROM points")[0][0])
        self.assertEqual(provenance["server_url"], target)
        self.assertEqual(len(rows(self.out, "SELECT * FROM problems")), PROBLEMS)

        # A third run has nothing to do and sends nothing.
        rc, out, err = run(self.spec, "--out", self.out, "--target", target)
        self.assertEqual(rc, 0, err)
        self.assertEqual(chat_requests(server), PROBLEMS * POINTS)
        # A changed spec is refused, before any request, unless asked for.
        changed = os.path.join(self.tmp.name, "changed.yaml")
        with open(changed, "w") as f:
            f.write(SPEC.replace("count: 8", "count: 9"))
        rc, out, err = run(changed, "--out", self.out, "--target", target)
        self.assertEqual(rc, 2)
        self.assertIn("--allow-spec-change", err)
        self.assertEqual(chat_requests(server), PROBLEMS * POINTS)
        rc, out, err = run(changed, "--out", self.out, "--target", target, "--allow-spec-change")
        self.assertEqual(rc, 0, err[-2000:])
        self.assertEqual(chat_requests(server), (PROBLEMS + 1) * POINTS)

    def test_progress_line_on_a_terminal(self):
        server = self.server()
        primary, secondary = pty.openpty()  # stderr is a terminal: the live progress line
        try:
            proc = subprocess.Popen([PONDER, "sweep", "run", self.spec, "--out", self.out, "--target",
                                     server.base + "/v1", "--concurrency", "1"], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=secondary, start_new_session=True)
            os.close(secondary)
            seen = b""
            until = time.time() + 240
            while time.time() < until:
                ready, _, _ = select.select([primary], [], [], 1.0)
                if ready:
                    try:
                        chunk = os.read(primary, 4096)
                    except OSError:  # the terminal closed: the runner is gone
                        break
                    if not chunk:
                        break
                    seen += chunk
                elif proc.poll() is not None:
                    break
            self.assertEqual(proc.wait(timeout=60), 0, seen[-2000:])
        finally:
            os.close(primary)
        text = seen.decode(errors="replace")
        # Redrawn in place (carriage return + erase line), not a log line per update.
        self.assertIn("\r\x1b[K[sweep] ", text)
        self.assertNotRegex(text, r"I ponder \[sweep\] \d+/\d+ samples")
        total = PROBLEMS * POINTS * SAMPLES
        self.assertRegex(text, rf"\[sweep\] {total}/{total} samples \(100%\), 0 failed, \d+ tokens/s, elapsed \S+, ETA 0s\r?\n")  # a terminal writes \n as \r\n

    def test_malformed_spec_fails_before_any_request(self):
        server = self.server()
        bad = os.path.join(self.tmp.name, "bad.yaml")
        with open(bad, "w") as f:
            f.write(SPEC.replace("max_thinking_tokens: [16, 64, null]", "max_thinking_tokens: [16, -5]"))
        rc, out, err = run(bad, "--out", self.out, "--target", server.base + "/v1", timeout=60)
        self.assertEqual(rc, 2)
        self.assertIn("grid.max_thinking_tokens[1]", err)
        with open(bad, "w") as f:
            f.write(SPEC + "temprature: 1\n")
        rc, out, err = run(bad, "--out", self.out, "--target", server.base + "/v1", timeout=60)
        self.assertEqual(rc, 2)
        self.assertIn("temprature: unknown key", err)
        self.assertEqual(chat_requests(server), 0)
        self.assertFalse(os.path.exists(os.path.join(self.out, "results.sqlite")))
        # --dry-run: the expanded grid, nothing sent.
        rc, out, err = run(self.spec, "--out", self.out, "--dry-run", timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertIn("points: 3", out)
        self.assertIn(f"requests: {PROBLEMS * POINTS} ", out)
        self.assertIn(f"samples: {PROBLEMS * POINTS * SAMPLES}\n", out)
        self.assertEqual(chat_requests(server), 0)

    def test_server_that_dies_leaves_failed_samples_a_rerun_completes(self):
        first = self.server()
        runner = Runner(self.spec, "--out", self.out, "--target", first.base + "/v1", "--concurrency", "1")
        self.assertTrue(wait_for(lambda: ok_samples(self.out) > 0 or runner.proc.poll() is not None, 240))
        first.kill()
        rc, out, err = runner.wait(240)
        self.assertEqual(rc, 1, err[-2000:])
        failed = rows(self.out, "SELECT error, attempts, correct FROM samples WHERE status = 'failed'")
        self.assertGreater(len(failed), 0)
        self.assertEqual(len(failed) % SAMPLES, 0)
        for error, attempts, correct in failed:
            self.assertTrue(error)
            self.assertEqual(attempts, 2)
            self.assertIsNone(correct)
        ok_before = ok_samples(self.out)
        self.assertEqual(ok_before + len(failed), PROBLEMS * POINTS * SAMPLES)  # nothing dropped
        # The rerun's server is another deployment: two replicas (MPI processes), not one in-process.
        second = Server("--threads", "1", "--replicas", "2", "--kv-cache-bytes", "16MiB")
        self.servers.append(second)
        rc, out, err = run(self.spec, "--out", self.out, "--target", second.base + "/v1")
        self.assertEqual(rc, 0, err[-2000:])
        self.assertEqual(ok_samples(self.out), PROBLEMS * POINTS * SAMPLES)
        # Only the failed ones were asked for.
        self.assertEqual(chat_requests(second), len(failed) // SAMPLES)

    def test_deployment_axis_deploys_each_value_once(self):
        spec = os.path.join(self.tmp.name, "replicas.yaml")
        with open(spec, "w") as f:
            f.write("""
target: {serve: {model: models/tiny-reasoner, threads: 1, kv_cache_bytes: 16MiB}}
dataset: {suite: arith, levels: [2], split: test, count: 2}
samples: 2
sampling: {temperature: 1.0, max_tokens: 128, seed: 3}
grid: {replicas: [1, 2], max_thinking_tokens: [16, null]}
""")
        rc, out, err = run(spec, "--out", self.out, timeout=300)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertIn("on 2 deployments", err)
        self.assertEqual(ok_samples(self.out), 2 * 2 * 2 * 2)
        runs = rows(self.out, "SELECT run_id, deployment_json, provenance_json, finished_at - started_at FROM runs")
        self.assertEqual([json.loads(d) for _, d, _, _ in runs], [{"replicas": 1}, {"replicas": 2}])
        for run_id, deployment, provenance, wall in runs:
            self.assertGreater(wall, 0)
            served = json.loads(provenance)["server"]["ponder"]["server"]  # what GET /v1/models said
            self.assertEqual(served["replicas"], json.loads(deployment)["replicas"])
            self.assertNotIn("api_key", served)
        # Every sample was made by the deployment of its point.
        mismatched = rows(self.out, "SELECT COUNT(*) FROM samples s JOIN points p USING (point_id) "
                                    "JOIN runs r USING (run_id) WHERE json_extract(p.params_json, '$.replicas') "
                                    "!= json_extract(r.deployment_json, '$.replicas')")
        self.assertEqual(mismatched, [(0,)])
        # Same seeds, same model: the replicas change where samples run, not what they say.
        texts = rows(self.out, "SELECT json_extract(p.params_json, '$.replicas'), "
                               "json_extract(p.params_json, '$.max_thinking_tokens'), s.problem_id, "
                               "s.sample_index, s.content FROM samples s JOIN points p USING (point_id)")
        by_replicas = {1: {}, 2: {}}
        for replicas, budget, problem, index, content in texts:
            by_replicas[replicas][(budget, problem, index)] = content
        self.assertEqual(by_replicas[1], by_replicas[2])
        # Done: a rerun deploys nothing.
        rc, out, err = run(spec, "--out", self.out, timeout=120)
        self.assertEqual(rc, 0, err[-2000:])
        self.assertNotIn("deployment {", err)
        self.assertEqual(len(rows(self.out, "SELECT * FROM runs")), 2)

    def test_serve_target_with_an_api_key_keeps_it_off_the_command_line(self):
        spec = os.path.join(self.tmp.name, "keyed.yaml")
        with open(os.path.join(ROOT, "configs", "sweeps", "tiny-smoke.yaml")) as f:
            text = f.read()
        with open(spec, "w") as f:
            f.write(text.replace("    threads: 1\n", "    threads: 1\n    api_key: sekret-key-123\n"))
        runner = Runner(spec, "--out", self.out)
        seen_on_a_command_line = False
        until = time.time() + 300
        while runner.proc.poll() is None and time.time() < until:
            for pid in os.listdir("/proc"):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        seen_on_a_command_line |= b"sekret-key-123" in f.read()
                except OSError:
                    pass
            time.sleep(0.01)
        rc, out, err = runner.wait(60)
        self.assertEqual(rc, 0, err[-3000:])  # the runner authenticated with the key
        self.assertFalse(seen_on_a_command_line)
        key_file = os.path.join(self.out, "serve-api-key")
        self.assertEqual(os.stat(key_file).st_mode & 0o777, 0o600)

    def test_serve_target_starts_and_stops_its_server(self):
        spec = os.path.join(ROOT, "configs", "sweeps", "tiny-smoke.yaml")
        rc, out, err = run(spec, "--out", self.out, timeout=300)
        self.assertEqual(rc, 0, err[-3000:])
        self.assertEqual(ok_samples(self.out), 2 * 2 * 2)
        with open(os.path.join(self.out, "serve.log")) as f:
            log = f.read()
        self.assertIn("is served at", log)
        # The server is gone: nothing of it is left below the runner (it has exited) — and the
        # port it printed no longer answers.
        port = int(log.split("is served at http://127.0.0.1:")[1].split("/")[0])
        probe = subprocess.run(["curl", "-s", "-m", "2", f"http://127.0.0.1:{port}/health"],
                               capture_output=True)
        self.assertNotEqual(probe.returncode, 0)


if __name__ == "__main__":
    unittest.main()
