"""The processes of a `ponder serve` under test, read from /proc (no package needed): its tree,
each replica's mpirun and ranks, resident memory and descriptors; the server itself with its log
pumped by a thread. Everything is stopped by pid, never by name."""
from __future__ import annotations

import collections
import ctypes
import os
import re
import signal
import subprocess
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, start time in clock ticks) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                children[st[0]].append(int(entry))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def sigkill(pids: list[int]):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Server:
    """`ponder serve ... --port 0`, its log pumped by a thread (counters and a tail), its tree
    remembered as (pid, start time) so that leftovers can be killed by pid, never by name."""

    PATTERNS = {"samples_moved": "continues elsewhere", "replicas_lost": " is lost",
                "replicas_back": " is back as ", "replicas_stay_down": "stays down"}

    def __init__(self, args: list[str], log_path: str | None = None, timeout: float = 300):
        libc = ctypes.CDLL(None, use_errno=True)
        # If this script is SIGKILLed, the server gets SIGKILL too (its replicas then exit on
        # their own when the coordinator stops answering their heartbeats).
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True,
                                     preexec_fn=lambda: libc.prctl(1, signal.SIGKILL))  # PR_SET_PDEATHSIG
        self.counts = collections.Counter()
        self.tail = collections.deque(maxlen=300)
        self.errors = collections.deque(maxlen=50)  # error lines that no kill explains
        self.port = None
        self.seen: set[tuple[int, int]] = set()  # (pid, start time) of every process seen in its tree
        self.back: list[tuple[float, int]] = []  # (monotonic time, replica index) of "is back as" lines
        ready = threading.Event()
        log_file = open(log_path, "w") if log_path else None

        def pump():
            for line in self.proc.stdout:
                self.tail.append(line)
                if log_file:
                    now = time.time()
                    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
                    log_file.write(f"[{stamp}] {line}")
                    log_file.flush()
                m = re.search(r"replica (\d+) is back as ", line)
                if m:
                    self.back.append((time.monotonic(), int(m.group(1))))
                m = re.search(r" is lost: .*; moving (\d+) placements", line)
                if m:
                    self.counts["placements_moved"] += int(m.group(1))
                for key, text in self.PATTERNS.items():
                    if text in line:
                        self.counts[key] += 1
                if line.startswith("E ") and " is lost" not in line:
                    self.errors.append(line.rstrip())
                m = re.search(r"served at http://[^:]+:(\d+)/v1", line)
                if m and self.port is None:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.port is None:
            self.kill()
            raise RuntimeError("ponder serve did not start:\n" + "".join(list(self.tail)[-40:]))

    def back_after(self, indexes: list[int], t: float) -> float | None:
        """Seconds from t until every replica of `indexes` logged that it is back, or None."""
        times = [min((bt for bt, i in self.back if i == index and bt >= t), default=None) for index in indexes]
        return None if None in times else max(times) - t

    def tree(self) -> list[int]:
        pids = descendants(self.proc.pid)
        for p in pids:
            st = proc_stat(p)
            if st:
                self.seen.add((p, st[1]))
        return pids

    def replicas(self) -> dict[int, int]:
        """replica index -> pid of its mpirun (the server's children)."""
        out = {}
        for p in children(self.proc.pid):
            args = cmdline(p)
            if args and os.path.basename(args[0]) in ("mpirun", "orterun", "mpiexec") and "--replica-index" in args:
                out[int(args[args.index("--replica-index") + 1])] = p
        return out

    def stop(self, timeout: float) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL to the server and to every process of its tree seen alive (same start time)."""
        if self.proc.poll() is None:
            self.tree()
            sigkill([self.proc.pid])
            self.proc.wait()
        for pid, start in self.seen:
            st = proc_stat(pid)
            if st and st[1] == start:
                sigkill([pid])


def children(pid: int) -> list[int]:
    """Direct children of pid."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[0] == pid:
                out.append(int(entry))
    return out
