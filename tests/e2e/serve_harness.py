"""Starts and stops a real `ponder serve` for the end-to-end tests, and talks HTTP to it with the
standard library only (urllib for plain calls, http.client for server-sent events)."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PONDER = os.environ.get("PONDER", os.path.join(ROOT, "build", "release", "bin", "ponder"))
MODEL = os.path.join(ROOT, "models", "tiny-reasoner")


class Server:
    """`ponder serve ARGS --port 0`; the port is read from the line it prints when ready. An HTTPS
    server's calls use `ssl_context` (it trusts the test's CA)."""

    def __init__(self, *args: str, timeout: float = 180, ssl_context=None):
        self.log: list[str] = []
        self.ssl_context = ssl_context
        self.scheme = "http"
        self.proc = subprocess.Popen([PONDER, "serve", "--port", "0", *args], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.port = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.log.append(line)
                m = re.search(r"served at (https?)://[^:]+:(\d+)/v1", line)
                if m and self.port is None:
                    self.scheme, self.port = m.group(1), int(m.group(2))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.port is None:
            self.kill()
            raise RuntimeError("ponder serve did not start:\n" + "".join(self.log[-40:]))
        self.base = f"{self.scheme}://127.0.0.1:{self.port}"

    def replica_groups(self) -> list[int]:
        """Process groups of the replicas' mpirun children (one per replica)."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True,
                             text=True).stdout.split()
        return [int(p) for p in out]

    @staticmethod
    def kill_replica(mpirun_pid: int):
        """SIGKILLs one replica: its mpirun and every rank below it (Open MPI puts each rank in a
        process group of its own, so killing mpirun's group would leave the ranks running)."""
        kill_tree(mpirun_pid)

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        for group in self.replica_groups():
            kill_tree(group)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    # --- HTTP -----------------------------------------------------------------------------------

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=60, context=self.ssl_context) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path: str, body, headers: dict | None = None) -> tuple[int, dict]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=120, context=self.ssl_context) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            try:
                return e.code, json.loads(text)
            except json.JSONDecodeError:
                return e.code, {"raw": text}

    def stream(self, path: str, body: dict, stop_after: int | None = None) -> list:
        """The events of an SSE response (parsed JSON, or the string "[DONE]"). With stop_after,
        closes the connection after that many events (a client that goes away)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.request("POST", path, json.dumps({**body, "stream": True}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise AssertionError(f"HTTP {resp.status}: {resp.read().decode()}")
        events = []
        for raw in resp:
            line = raw.decode().rstrip("\r\n")
            if not line.startswith("data: "):
                continue
            data = line[6:]
            events.append("[DONE]" if data == "[DONE]" else json.loads(data))
            if data == "[DONE]" or (stop_after is not None and len(events) >= stop_after):
                break
        conn.close()
        return events


def descendants(pid: int) -> list[int]:
    """Every process below `pid`."""
    out, todo = [], [pid]
    while todo:
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(todo.pop())],
                                  capture_output=True, text=True).stdout.split()
        out += [int(c) for c in children]
        todo += [int(c) for c in children]
    return out


def kill_tree(pid: int):
    """SIGKILL to `pid` and everything below it (found first, so none is re-parented unseen)."""
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate, timeout: float = 30, interval: float = 0.05):
    until = time.time() + timeout
    while time.time() < until:
        if predicate():
            return True
        time.sleep(interval)
    return False


def metric(text: str, name: str) -> float:
    """Sum of a Prometheus metric's samples (any labels)."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    if not found:
        raise KeyError(name)
    return total
