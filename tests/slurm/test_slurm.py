"""`ponder slurm` on a real Slurm cluster of two nodes (tests/slurm/cluster.sh), driven only through
`ponder slurm …`, the official openai SDK and plain HTTP — as a user on a login node would.

  1. 2 replicas of the tiny reasoner on 2 nodes: endpoint --wait, a chat completion through the
     openai SDK with the key file, cancel; the job ends COMPLETED/CANCELLED, nothing left running.
  2. A tp 2 replica whose ranks sit on two nodes answers the same greedy text as tp 1, while a
     second deployment's coordinator shares its node (no port collides).
  3. SIGUSR1 during a streaming request: the stream completes, new requests get 503, the job is
     requeued (requeue: true) and comes back on a new endpoint.
  4. A rank killed on one node: its requests move to the other replica (or fail) with a named
     error; the job does not hang and still drains on SIGUSR1.
  5. Bad input: each error names its problem, and nothing is submitted.
  6. `ponder sweep run` with `target: slurm:` and a grid over nodes submits one deployment per
     node count, runs against each, records the jobs in the runs' and points' provenance and
     cancels every job when its points are done; a node count the cluster lacks is refused first.
  7. A configured api_key (inline or api_key_file) serves, and is in no script, no job copy and on
     no command line.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import slurm_harness as h  # noqa: E402

CLUSTER: h.Cluster | None = None
QUESTION = "What is 47*23+158?"


def setUpModule():
    global CLUSTER
    why = h.skip_reason()
    if why:
        raise unittest.SkipTest(why)
    CLUSTER = h.Cluster()


def tearDownModule():
    if CLUSTER:
        CLUSTER.scancel_all()
        CLUSTER.down()


def greedy_chat(ep: dict) -> str:
    from openai import OpenAI  # the official SDK (scripts/test.sh installs it into build/pyenv)

    client = OpenAI(base_url=ep["url"], api_key=h.read_key(ep), timeout=120, max_retries=0)
    r = client.chat.completions.create(model="tiny-reasoner", temperature=0, max_tokens=400,
                                       messages=[{"role": "user", "content": QUESTION}])
    msg = r.choices[0].message
    reasoning = (msg.model_extra or {}).get("reasoning_content") or ""
    assert msg.content, r
    return reasoning + "|" + msg.content


class Stream(threading.Thread):
    """A streaming /v1/completions request (SSE) in the background: its chunks, finish and usage."""

    def __init__(self, ep: dict, model: str, max_tokens: int):
        super().__init__(daemon=True)
        self.ep, self.model, self.max_tokens = ep, model, max_tokens
        self.first = threading.Event()
        self.chunks, self.finish, self.usage, self.error = 0, None, None, None

    def run(self):
        try:
            u = urllib.parse.urlparse(self.ep["url"])
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            body = {"model": self.model, "prompt": "Once upon a time", "max_tokens": self.max_tokens,
                    "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
            conn.request("POST", "/v1/completions", json.dumps(body),
                         {"Content-Type": "application/json", "Authorization": "Bearer " + h.read_key(self.ep)})
            self.conn = conn
            resp = conn.getresponse()
            if resp.status != 200:
                self.error = f"HTTP {resp.status}: {resp.read()[:300]!r}"
                return
            for raw in resp:
                line = raw.decode().strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    self.error = str(event["error"])
                for c in event.get("choices") or []:
                    self.chunks += 1
                    self.first.set()
                    if c.get("finish_reason"):
                        self.finish = c["finish_reason"]
                if event.get("usage"):
                    self.usage = event["usage"]
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)
        finally:
            self.first.set()
            if getattr(self, "conn", None):
                self.conn.close()


class SlurmTest(unittest.TestCase):
    def setUp(self):
        self.c = CLUSTER
        self.c.scancel_all()
        until = time.monotonic() + 30  # an earlier test's jobs must not hold the nodes
        while time.monotonic() < until and self.c.run("squeue", "-h", "-o", "%i").stdout.strip():
            time.sleep(0.2)

    def cpu_deploy(self, name: str, **over) -> str:
        """A deployment file: the example's keys with `over` replacing or adding some."""
        keys = {"model": h.TINY, "replicas": 2, "kv_cache_bytes": "16MiB", "startup_timeout_s": 90,
                "drain_timeout_s": 20, "allow_plaintext": True}
        slurm = {"nodes": 2, "job_name": name, "signal_grace_s": 30}
        for k, v in over.items():
            (slurm if k.startswith("slurm_") else keys)[k.removeprefix("slurm_")] = v
        text = "".join(f"{k}: {json.dumps(v)}\n" for k, v in keys.items())
        text += "slurm:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in slurm.items())
        return self.c.deploy_file(name + ".yaml", text)

    def assert_nothing_left(self, job: str):
        self.assert_nothing_left_in(os.path.join(self.c.work, "jobs", job))

    def assert_nothing_left_in(self, job_dir: str):
        for node in ("n1", "n2"):
            self.assertEqual(self.c.node_processes(node, job_dir), [], f"processes of {job_dir} left on {node}")

    def test_1_two_replicas_on_two_nodes_openai_sdk_cancel(self):
        job = self.c.submit(os.path.join(h.ROOT, "configs", "slurm", "cpu-tiny.yaml"))
        ep = self.c.endpoint(job)
        self.assertEqual(ep["state"], "READY")
        self.assertEqual((ep["replicas"], ep["healthy_replicas"]), (2, 2))
        self.assertEqual(ep["coordinator"], "n1")  # the first node of the allocation
        host = urllib.parse.urlparse(ep["url"]).hostname
        self.assertRegex(host, r"^10\.201\.\d+\.1$")  # n1's own address, not loopback or 0.0.0.0
        self.assertEqual(h.key_mode(ep), 0o600)
        log = self.c.batch_log(job)
        self.assertIn("replica 0 stage 0: rank 0 (tp 0) on n1", log)
        self.assertIn("replica 1 stage 0: rank 1 (tp 0) on n2", log)
        self.assertIn("on n2", self.c.ponder("logs", job, "--rank", "1").stdout)
        # The replica links run CURVE with this run's keys (issue #17): each replica registered
        # with its own allowed key, read from 0600 files the task files only name.
        for r in (0, 1):
            self.assertRegex(log, rf"registered: replica-{r} on n{r + 1} .*, CURVE key replica-{r}\b")
        keys = os.path.join(ep["job_dir"], "curve.run0")
        self.assertEqual(os.stat(keys).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(keys, "replica-1.key")).st_mode & 0o777, 0o600)
        with open(os.path.join(ep["job_dir"], "task.run0.replica1.json")) as f:
            self.assertIn(os.path.join(keys, "replica-1.key"), json.load(f)["args"])

        # The coordinator listens on its node's address only.
        with open(os.path.join(ep["job_dir"], "endpoint.json")) as f:
            pid = str(json.load(f)["coordinator_pid"])
        sockets = [l for l in self.c.on_node("n1", "ss", "-ltnpH").stdout.splitlines() if f"pid={pid}," in l]
        self.assertGreaterEqual(len(sockets), 2, sockets)  # HTTP + the replicas' ZeroMQ socket
        for line in sockets:
            self.assertIn(host + ":", line.split()[3], line)
        # No process of the deployment listens on every interface (its replicas sit in one node
        # each, so Open MPI's TCP transport stays off). slurmstepd's own PMIx listener, which its
        # tasks inherit, is Slurm's.
        for node in ("n1", "n2"):
            for line in self.c.on_node(node, "ss", "-ltnpH").stdout.splitlines():
                if '"ponder"' in line and '"slurmstepd"' not in line:
                    self.assertRegex(line.split()[3], r"^10\.201\.\d+\.\d+:\d+$", f"{node}: {line}")

        code, body, _ = h.http_json(ep["url"] + "/models")  # no key: refused
        self.assertEqual(code, 401, body)
        self.assertIn("\\boxed{1239}", greedy_chat(ep))  # the bundled model gets this one right greedily
        listed = self.c.ponder("list").stdout
        self.assertRegex(listed, rf"(?m)^{job}\s+ponder-tiny\s+RUNNING\s+READY\s+{re.escape(ep['url'])}")

        follow = subprocess.Popen([h.PONDER, "slurm", "logs", job, "--follow"], env=self.c.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out = self.c.ponder("cancel", job, timeout=120)
            followed, _ = follow.communicate(timeout=30)  # --follow ends with the job
        finally:
            if follow.poll() is None:
                follow.kill()
        self.assertIn("drained and stopped", followed)
        self.assertRegex(out.stdout, rf"job {job}: (COMPLETED|CANCELLED)")
        self.assertIn(self.c.wait_state(job, {"COMPLETED", "CANCELLED"}), {"COMPLETED", "CANCELLED"})
        self.assertIn("drained and stopped", self.c.batch_log(job))
        self.assertEqual(self.c.status(job)["state"], "ENDED")
        self.assertFalse(os.path.exists(keys), "the run's CURVE keys outlived it")
        self.assert_nothing_left(job)

    def test_2_tp2_across_nodes_matches_tp1_and_shares_a_node(self):
        tp2 = self.c.submit(self.cpu_deploy("tp2", replicas=1, tp=2))
        tp1 = self.c.submit(self.cpu_deploy("tp1", replicas=2))
        ep2, ep1 = self.c.endpoint(tp2), self.c.endpoint(tp1)
        self.assertIn("replica 0 stage 0: ranks 0-1 (tp 0-1) on n1 + n2", self.c.batch_log(tp2))
        # Two coordinators on the same node: each bound its own ports.
        self.assertEqual(ep1["coordinator"], ep2["coordinator"])
        self.assertNotEqual(urllib.parse.urlparse(ep1["url"]).port, urllib.parse.urlparse(ep2["url"]).port)
        self.assertEqual(greedy_chat(ep2), greedy_chat(ep1))
        for job in (tp2, tp1):
            self.c.ponder("cancel", job, timeout=120)
            self.c.wait_state(job, {"COMPLETED", "CANCELLED"})
            self.assert_nothing_left(job)

    def test_3_usr1_drains_a_stream_then_requeue_brings_a_new_endpoint(self):
        job = self.c.submit(self.cpu_deploy("drain", model=h.RANDOM_DEFAULT, replicas=1, slurm_nodes=1,
                                            slurm_requeue=True, slurm_signal_grace_s=40))
        ep = self.c.endpoint(job)
        stream = Stream(ep, "random-default", max_tokens=1000)  # ~7 s here
        stream.start()
        self.assertTrue(stream.first.wait(60) and stream.error is None, stream.error)
        self.c.run("scancel", "--signal=USR1", "--batch", job)
        # While the stream runs, new requests (new connections too) get 503 with Retry-After.
        key = h.read_key(ep)
        until, code, headers = time.monotonic() + 15, 0, {}
        while time.monotonic() < until and code != 503:
            code, body, headers = h.http_json(ep["url"] + "/completions",
                                              {"model": "random-default", "prompt": "x", "max_tokens": 1}, key=key)
            time.sleep(0.05)
        self.assertEqual(code, 503, body)
        self.assertIn("Retry-After", headers)
        self.assertTrue(stream.is_alive(), "the stream ended before the drain could be seen")
        stream.join(120)
        self.assertIsNone(stream.error, self.c.batch_log(job))
        self.assertEqual(stream.finish, "length")
        self.assertEqual(stream.usage["completion_tokens"], 1000)

        # Requeued (cred_expire=5 in the test cluster: back in about 10 s) on a new endpoint.
        again = self.c.endpoint(job, wait=120)
        self.assertEqual(self.c.status(job)["restarts"], 1)
        self.assertNotEqual(again["url"], ep["url"])
        code, body, _ = h.http_json(again["url"] + "/completions",
                                    {"model": "random-default", "prompt": "x", "max_tokens": 2}, key=h.read_key(again))
        self.assertEqual(code, 200, body)
        log = self.c.batch_log(job)
        self.assertIn(f"job {job} run 0 starts", log)
        self.assertIn(f"job {job} run 1 starts", log)
        self.assertIn("asking Slurm to requeue", log)
        self.c.ponder("cancel", job, timeout=120)
        self.c.wait_state(job, {"COMPLETED", "CANCELLED"})
        self.assert_nothing_left(job)

    def test_4_killed_rank_moves_its_requests_and_the_job_still_drains(self):
        # Two replicas of tp 2: ranks 0-1 on n1, ranks 2-3 on n2. Rank 3 (not a leader) dies: it
        # is task 1 of replica 1's srun step, the only step on n2.
        job = self.c.submit(self.cpu_deploy("kill", model=h.RANDOM_DEFAULT, replicas=2, tp=2,
                                            collective_timeout_ms=4000))
        ep = self.c.endpoint(job)
        self.assertIn("replica 1 stage 0: ranks 2-3 (tp 0-1) on n2", self.c.batch_log(job))
        streams = [Stream(ep, "random-default", max_tokens=1500) for _ in range(2)]
        for s in streams:
            s.start()
        for s in streams:
            self.assertTrue(s.first.wait(60) and s.error is None, s.error)
        rank3 = self.c.on_node("n2", "sh", "-c", 'for p in $(pgrep -f "slurm task"); do '
                               'tr "\\0" "\\n" < /proc/$p/environ | grep -qx SLURM_PROCID=1 && echo $p; done').stdout.split()
        self.assertEqual(len(rank3), 1, rank3)
        self.c.on_node("n2", "kill", "-9", rank3[0], check=True)
        for s in streams:
            s.join(120)
        log = self.c.batch_log(job)
        # Named: which replica, which ranks, which node.
        self.assertRegex(log, r"r\d \(replica-1 on n2, pid \d+\) is lost")
        self.assertIn("replica 1 (ranks 2-3 on n2)", log)
        outcomes = [(s.finish, s.error, s.usage) for s in streams]
        migrated = all(s.finish == "length" and s.usage and s.usage["completion_tokens"] == 1500 for s in streams)
        self.assertTrue(migrated or any(s.error for s in streams), outcomes)
        st = self.c.status(job)
        self.assertEqual(st["state"], "DEGRADED", st)
        self.assertIn("ranks 2-3 on n2", st["detail"])
        # Its srun step ended (--kill-on-bad-exit) and the coordinator says which rank on which node.
        until = time.monotonic() + 30
        while time.monotonic() < until and "its srun step exited" not in log:
            time.sleep(0.5)
            log = self.c.batch_log(job)
        self.assertRegex(log, r"replica 1 \(ranks 2-3 on n2\): its srun step exited \([^)]*\): n2: rank 3: Killed")
        self.assertIn("on n2", self.c.ponder("logs", job, "--rank", "3").stdout)
        # Still serving on the survivor, and a drain still ends the job.
        code, body, _ = h.http_json(ep["url"] + "/completions",
                                    {"model": "random-default", "prompt": "x", "max_tokens": 2}, key=h.read_key(ep))
        self.assertEqual(code, 200, body)
        self.c.run("scancel", "--signal=USR1", "--batch", job)
        self.assertEqual(self.c.wait_state(job, {"COMPLETED", "CANCELLED", "FAILED"}), "COMPLETED")
        self.assert_nothing_left(job)

    def test_5_bad_input_is_named_and_nothing_is_submitted(self):
        jobs_before = self.c.run("squeue", "-h", "-o", "%i").stdout.split()
        cases = [
            (dict(replica=2), "unknown key 'replica'"),
            (dict(slurm_node=2), "slurm: unknown key 'node'"),
            (dict(replicas=3), "3 ranks do not divide evenly over 2 nodes"),
            (dict(replicas=1), "would leave 1 node allocated and idle"),
            (dict(slurm_tasks_per_node=2), "must fill the allocation exactly"),
            (dict(backend="cuda", tp=3, replicas=1, slurm_gpus_per_node=8, slurm_nodes=1, slurm_tasks_per_node=3),
             "tp 3 does not divide gpus_per_node 8"),
            (dict(backend="cuda"), "backend cuda needs"),
            (dict(tp=3, replicas=1, slurm_nodes=1), "tp"),  # the model's heads do not split 3 ways
            (dict(slurm_signal_grace_s=5), "'signal_grace_s' is 5"),
            (dict(slurm_nodes=0), "'nodes' must be an integer in [1, 100000], got '0'"),
            (dict(slurm_exclusive="maybe"), "'exclusive' must be true or false, got 'maybe'"),
            (dict(model="/nonexistent/model"), "model '/nonexistent/model' has no config.json"),
        ]
        for i, (over, message) in enumerate(cases):
            with self.subTest(over=over):
                out = self.c.ponder("submit", self.cpu_deploy(f"bad{i}", **over), check=False)
                self.assertNotEqual(out.returncode, 0, out.stdout)
                self.assertIn(message, out.stderr)
        no_slurm = self.c.deploy_file("noslurm.yaml", f"model: {h.TINY}\n")
        self.assertIn("no 'slurm:' section", self.c.ponder("submit", no_slurm, check=False).stderr)
        # Missing Slurm commands are named (a dry run still prints the script, with a note).
        env = dict(self.c.env, PATH="/nonexistent")
        good = self.cpu_deploy("good")
        out = self.c.ponder("submit", good, check=False, env=env)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("sbatch, squeue, scontrol, scancel are not on PATH", out.stderr)
        out = self.c.ponder("submit", good, "--dry-run", env=env)
        self.assertIn("#SBATCH --nodes=2", out.stdout)
        self.assertIn("not on PATH", out.stderr)
        self.assertEqual(self.c.run("squeue", "-h", "-o", "%i").stdout.split(), jobs_before)

        # Jobs that are not ponder's, and ids that are not ids.
        other = self.c.run("sbatch", "--parsable", "--output=/dev/null", "--wrap", "sleep 30").stdout.strip()
        self.assertIn(f"job {other} is not a ponder deployment", self.c.ponder("status", other, check=False).stderr)
        self.assertIn("'abc' is not a Slurm job id", self.c.ponder("status", "abc", check=False).stderr)
        self.c.run("scancel", other)

        # A job Slurm holds back is PENDING with Slurm's reason; cancelling it just ends it.
        held = self.c.submit(self.cpu_deploy("held", slurm_extra_sbatch_args=["--begin=now+1hour"]))
        until, st = time.monotonic() + 15, {}
        while time.monotonic() < until and st.get("detail") != "Slurm: BeginTime":
            st = self.c.status(held)
            time.sleep(0.2)
        self.assertEqual((st["state"], st["detail"]), ("PENDING", "Slurm: BeginTime"), st)
        out = self.c.ponder("endpoint", held, check=False)
        self.assertIn(f"job {held} is not serving yet: PENDING (Slurm: BeginTime) (--wait SECONDS waits for it)",
                      out.stderr)
        self.assertRegex(self.c.ponder("cancel", held).stdout, rf"job {held}: CANCELLED")

        # Cancelled while it starts: it ends at once, nothing left behind.
        early = self.c.submit(self.cpu_deploy("early"))
        until = time.monotonic() + 30
        while time.monotonic() < until and self.c.status(early)["state"] == "PENDING":
            time.sleep(0.05)
        self.assertRegex(self.c.ponder("cancel", early, timeout=60).stdout, rf"job {early}: (CANCELLED|COMPLETED)")
        self.assert_nothing_left(early)

        # A deployment that cannot start fails with its reason, and ends its own job.
        job = self.c.submit(self.cpu_deploy("noif", slurm_interface="nosuch0"))
        out = self.c.ponder("endpoint", job, "--wait", "60", check=False, timeout=90)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("FAILED: interface 'nosuch0' has no IPv4 address", out.stderr)
        self.assertEqual(self.c.wait_state(job, {"COMPLETED", "CANCELLED", "FAILED"}), "FAILED")
        self.assert_nothing_left(job)


    def test_6_sweep_against_a_slurm_deployment_per_node_count(self):
        # nodes is a grid axis: one job on 1 node, then one on 2 (the replicas scale with them).
        deploy = self.cpu_deploy("sweep", replicas=1, slurm_nodes=1)
        spec = self.c.deploy_file("sweep-spec.yaml", f"""
target: {{slurm: {deploy}}}
dataset: {{suite: arith, levels: [2], split: test, count: 2}}
samples: 4
sampling: {{temperature: 1.0, max_tokens: 400, seed: 3}}
grid: {{nodes: [1, 2]}}
strategies: [pass@1, maj@k]
""")
        out_dir = os.path.join(self.c.work, "sweep-run")
        run = self.c.run(h.PONDER, "sweep", "run", spec, "--out", out_dir, timeout=400, check=False)
        self.assertEqual(run.returncode, 0, run.stderr[-3000:])
        db = sqlite3.connect(os.path.join(out_dir, "results.sqlite"))
        try:
            rows = db.execute("SELECT s.status, s.completion_tokens, json_extract(p.params_json, '$.nodes'), "
                              "json_extract(r.deployment_json, '$.nodes') FROM samples s "
                              "JOIN points p USING (point_id) JOIN runs r USING (run_id)").fetchall()
            runs = [(json.loads(d), json.loads(p)) for d, p in
                    db.execute("SELECT deployment_json, provenance_json FROM runs ORDER BY run_id")]
        finally:
            db.close()
        self.assertEqual(len(rows), 2 * 2 * 4)
        for status, tokens, point_nodes, run_nodes in rows:
            self.assertEqual((status, point_nodes), ("ok", run_nodes))
            self.assertGreater(tokens, 0)
        self.assertEqual([d for d, _ in runs], [{"nodes": 1}, {"nodes": 2}])
        jobs = []
        for (deployment, provenance), nodes, replicas in zip(runs, ("n1", "n[1-2]"), (1, 2)):
            job = provenance["target_slurm_job_id"]
            self.assertTrue(job and job.isdigit(), provenance)
            self.assertEqual(provenance["target_slurm_nodes"], nodes)
            self.assertEqual(provenance["server"]["ponder"]["server"]["replicas"], replicas)
            jobs.append(job)
        self.assertNotEqual(jobs[0], jobs[1])
        # The deployments' files sit in the run's directory, and both jobs are over.
        for job in jobs:
            self.assertTrue(os.path.exists(os.path.join(out_dir, "slurm", job, "endpoint.json")))
            self.assertIn(self.c.wait_state(job, {"COMPLETED", "CANCELLED"}), {"COMPLETED", "CANCELLED"})
            self.assert_nothing_left_in(os.path.join(out_dir, "slurm", job))
        # A node count the deployment does not scale to (one tp-2 replica on 2 nodes: 1.5 replicas
        # on 3) is refused before anything is submitted, the good node count included.
        wide = self.cpu_deploy("sweep-wide", replicas=1, tp=2, slurm_nodes=2)
        with open(spec) as f:
            bad = self.c.deploy_file("sweep-bad.yaml", f.read().replace(deploy, wide)
                                     .replace("nodes: [1, 2]", "nodes: [2, 3]"))
        run = self.c.run(h.PONDER, "sweep", "run", bad, "--out", out_dir + "-bad", timeout=120, check=False)
        self.assertEqual(run.returncode, 2, run.stderr[-2000:])
        self.assertIn("grid.nodes: 3 nodes", run.stderr)
        self.assertIn("give a replicas axis", run.stderr)
        made = os.listdir(os.path.join(out_dir + "-bad", "slurm")) if os.path.isdir(os.path.join(out_dir + "-bad", "slurm")) else []
        self.assertTrue(all(f.endswith(".yaml") for f in made), made)  # no job's directory

    def test_7_a_configured_api_key_stays_out_of_the_script_and_off_command_lines(self):
        # One job with api_key inline, one with api_key_file (relative: taken from the submit's
        # directory), side by side on one node each.
        inline_key, file_key = "inline-" + os.urandom(8).hex(), "file-" + os.urandom(8).hex()
        key_file = os.path.join(self.c.work, "my.key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(file_key + "\n")
        inline = self.c.submit(self.cpu_deploy("keyinline", replicas=1, slurm_nodes=1, api_key=inline_key))
        out = self.c.run(h.PONDER, "slurm", "submit", self.cpu_deploy("keyfile", replicas=1, slurm_nodes=1,
                                                                      api_key_file="my.key"),
                         "--output-dir", os.path.join(self.c.work, "jobs"), cwd=self.c.work)
        from_file = out.stdout.strip()
        for job, key in ((inline, inline_key), (from_file, file_key)):
            with self.subTest(job=job):
                ep = self.c.endpoint(job)
                self.assertEqual(ep["state"], "READY")
                self.assertEqual((h.read_key(ep), h.key_mode(ep)), (key, 0o600))
                self.assertEqual(h.http_json(ep["url"] + "/models")[0], 401)
                self.assertEqual(h.http_json(ep["url"] + "/models", key=key)[0], 200)
                # Neither the kept script, nor Slurm's copy, nor the job's deploy.yaml has the key.
                jobs = os.path.join(self.c.work, "jobs")
                with open(os.path.join(jobs, f"ponder-{job}.sbatch")) as f:
                    script = f.read()
                stored = self.c.run("scontrol", "write", "batch_script", job, "-").stdout
                with open(os.path.join(ep["job_dir"], "deploy.yaml")) as f:
                    copy = f.read()
                for text in (script, stored, copy):
                    self.assertNotIn(key, text)
                    self.assertIn('\napi_key: ""\n', text)
                named = re.search(r"(?m)^api_key_file: (.+)$", copy).group(1)
                if job == from_file:
                    self.assertEqual(named, key_file)
                else:
                    self.assertRegex(named, rf"^{re.escape(jobs)}/api_key-[0-9a-f]{{12}}$")
                    self.assertEqual(os.stat(named).st_mode & 0o777, 0o600)
                for node in ("n1", "n2"):
                    self.assertEqual(self.c.node_processes(node, key), [], f"the key is on a command line on {node}")
        for job in (inline, from_file):
            self.c.ponder("cancel", job, timeout=120)
            self.assert_nothing_left(job)


if __name__ == "__main__":
    unittest.main()
