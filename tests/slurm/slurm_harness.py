"""A real multi-node Slurm cluster for the `ponder slurm` tests (tests/slurm/cluster.sh: each
slurmd in its own network namespace, so a job really spans nodes), and `ponder slurm` run as a
user runs it. Every wait is bounded; every process a test starts is stopped by its pid."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PONDER = os.environ.get("PONDER", os.path.join(ROOT, "build", "release", "bin", "ponder"))
CLUSTER_SH = os.path.join(ROOT, "tests", "slurm", "cluster.sh")
TINY = os.path.join(ROOT, "models", "tiny-reasoner")
RANDOM_DEFAULT = os.path.join(ROOT, "models", "random-default")


def skip_reason() -> str | None:
    """Why the cluster cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "the test cluster needs root (network namespaces)"
    for cmd in ("slurmctld", "slurmd", "sbatch", "munged", "unshare", "ip"):
        if not shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            return f"{cmd} is not installed (scripts/setup.sh installs the Slurm packages)"
    return None


class Cluster:
    def __init__(self):
        out = subprocess.run(["bash", CLUSTER_SH, "up"], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("cluster.sh up failed:\n" + out.stderr[-4000:])
        self.env = dict(os.environ)
        for line in out.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line[len("export "):].partition("=")
                self.env[key] = value
        self.dir = self.env["PONDER_SLURM_CLUSTER"]
        self.work = tempfile.mkdtemp(prefix="ponder-slurm-test.", dir="/tmp")
        # `ponder slurm` records its submits here, not in the user's home.
        self.env["PONDER_STATE_DIR"] = os.path.join(self.work, "state")

    def down(self):
        subprocess.run(["bash", CLUSTER_SH, "down", self.dir], capture_output=True, text=True, timeout=120)
        shutil.rmtree(self.work, ignore_errors=True)

    def run(self, *args: str, timeout: float = 60, check: bool = True, env: dict | None = None,
            cwd: str | None = None) -> subprocess.CompletedProcess:
        out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env or self.env,
                             cwd=cwd or ROOT)
        if check and out.returncode != 0:
            raise AssertionError(f"{args} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out

    def ponder(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(PONDER, "slurm", *args, **kw)

    def on_node(self, node: str, *cmd: str, check: bool = False) -> subprocess.CompletedProcess:
        return self.run("bash", CLUSTER_SH, "exec", self.dir, node, *cmd, check=check, timeout=30)

    def deploy_file(self, name: str, text: str) -> str:
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def submit(self, deploy: str, *extra: str) -> str:
        out = self.ponder("submit", deploy, "--output-dir", os.path.join(self.work, "jobs"), *extra)
        job = out.stdout.strip()
        assert job.isdigit(), out.stdout + out.stderr
        return job

    def endpoint(self, job: str, wait: float = 120) -> dict:
        out = self.ponder("endpoint", job, "--wait", str(wait), "--json", timeout=wait + 30, check=False)
        if out.returncode != 0:
            raise AssertionError(f"endpoint {job}: {out.stderr}\n--- coordinator log:\n{self.batch_log(job)}")
        return json.loads(out.stdout)

    def status(self, job: str) -> dict:
        return json.loads(self.ponder("status", job, "--json").stdout)

    def batch_log(self, job: str) -> str:
        return self.ponder("logs", job, check=False).stdout

    def slurm_state(self, job: str) -> str:
        out = self.run("scontrol", "show", "job", "-o", job, check=False).stdout
        for word in out.split():
            if word.startswith("JobState="):
                return word.split("=", 1)[1]
        return "UNKNOWN"

    def wait_state(self, job: str, states: set[str], timeout: float = 60) -> str:
        until = time.monotonic() + timeout
        state = ""
        while time.monotonic() < until:
            state = self.slurm_state(job)
            if state in states:
                return state
            time.sleep(0.2)
        raise AssertionError(f"job {job} is {state}, not one of {states} after {timeout} s:\n{self.batch_log(job)}")

    def node_processes(self, node: str, pattern: str) -> list[str]:
        out = self.on_node(node, "pgrep", "-af", pattern).stdout
        return [line for line in out.splitlines() if line.strip() and "pgrep" not in line]

    def scancel_all(self):
        self.run("scancel", "--full", "-u", "root", check=False)


def http_json(url: str, body: dict | None = None, key: str | None = None, timeout: float = 60):
    """(status, parsed body, headers) of a GET or JSON POST."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return e.code, parsed, dict(e.headers)


def read_key(endpoint: dict) -> str:
    with open(endpoint["api_key_file"]) as f:
        return f.read().strip()


def key_mode(endpoint: dict) -> int:
    return os.stat(endpoint["api_key_file"]).st_mode & 0o777
