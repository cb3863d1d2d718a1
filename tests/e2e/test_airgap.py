"""`ponder serve` is air-gapped by construction: run with --replicas 2 (so each replica's mpirun and
the ZeroMQ links are part of it) in a fresh network namespace that has only loopback (`unshare
--net`, then `ip link set lo up`) and under `strace -f`, it starts, answers real requests and shuts
down without attempting one connection off the machine. Every address that any process of its tree
gives to connect, sendto, sendmsg, sendmmsg or bind is loopback (127.0.0.0/8, ::1, ::ffff:127.x),
AF_UNIX or AF_NETLINK; a syscall on a connected socket (no address) sends where an earlier connect
said. Offenders are printed with their strace line. Skipped, with the reason, where unshare or
ptrace is not permitted (the test needs root, or CAP_SYS_ADMIN and CAP_SYS_PTRACE).

The test re-runs this file inside the namespace (`--inside LOG`): there it starts the traced
server, talks to it over HTTP on 127.0.0.1 and stops it with SIGTERM; outside, it reads the log."""
from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import MODEL, PONDER, ROOT, descendants, kill_tree  # noqa: E402

SYSCALLS = ("connect", "sendto", "sendmsg", "sendmmsg", "bind")
ALLOWED_FAMILIES = {"AF_UNIX", "AF_LOCAL", "AF_NETLINK", "AF_UNSPEC"}  # AF_UNSPEC: dissolves a UDP peer
INSIDE_TIMEOUT_S = 540  # the whole run inside the namespace; strace slows everything down
STARTUP_TIMEOUT_S = 300
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)$")


def run_probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def addresses(args: str) -> list[tuple[str, str | None]]:
    """(family, address or None) of every socket address in a syscall's strace arguments. Quoted
    strings (data buffers) are set aside first, so that bytes that look like an address are not."""
    strings = []

    def keep(m):
        strings.append(m.group(0)[1:-1])
        return f'"#{len(strings) - 1}"'

    bare = QUOTED.sub(keep, args)
    out = []
    for m in re.finditer(r"\{sa_family=(\w+)(.*?)\}", bare):
        family, rest = m.group(1), m.group(2)
        found = (re.search(r'inet_addr\("#(\d+)"\)', rest) or re.search(r'inet_pton\(AF_INET6?, "#(\d+)"', rest))
        out.append((family, strings[int(found.group(1))] if found else None))
    return out


def is_loopback(text: str) -> bool:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return False
    mapped = a.ipv4_mapped if a.version == 6 else None
    return a.is_loopback or (mapped is not None and mapped.is_loopback)


def offending(family: str, address: str | None) -> bool:
    if family in ALLOWED_FAMILIES:
        return False
    if family in ("AF_INET", "AF_INET6"):
        return address is None or not is_loopback(address)
    return True  # AF_PACKET, AF_VSOCK, ...: nothing ponder should touch


def read_trace(path: str) -> dict:
    """The strace -f log: offenders, loopback addresses seen, programs executed, pids traced."""
    result = {"offenders": [], "loopback": [], "execs": [], "pids": set(), "checked": 0}
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue  # "<... resumed>", signals, exits
            pid, call, args = m.groups()
            result["pids"].add(int(pid))
            if call == "execve":
                strings = QUOTED.findall(args)
                result["execs"].append((int(pid), " ".join(s[1:-1] for s in strings[1:6])))
                continue
            if call not in SYSCALLS:
                continue
            result["checked"] += 1
            for family, address in addresses(args):
                if offending(family, address):
                    result["offenders"].append(line.rstrip("\n"))
                elif address is not None:
                    result["loopback"].append((int(pid), call, address))
    return result


class AirGapped(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("unshare", "ip", "strace"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest(f"{tool} is not installed (scripts/setup.sh installs it)")
        probe = run_probe("unshare", "--net", "--", "ip", "link", "set", "lo", "up")
        if probe.returncode != 0:
            raise unittest.SkipTest(f"unshare --net is not permitted here: {probe.stderr.strip()}")
        probe = run_probe("strace", "-f", "-o", os.devnull, "-e", "trace=connect", "--", "true")
        if probe.returncode != 0:
            raise unittest.SkipTest(f"strace cannot trace here (ptrace refused?): {probe.stderr.strip()}")

    def test_serve_with_two_replicas_attempts_no_connection_off_loopback(self):
        work = tempfile.mkdtemp(prefix="ponder-airgap-")
        trace = os.path.join(work, "strace.log")
        inner = subprocess.Popen(["unshare", "--net", "--", "sh", "-c",
                                  'ip link set lo up && exec "$0" "$1" --inside "$2"',
                                  sys.executable, os.path.abspath(__file__), trace],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = inner.communicate(timeout=INSIDE_TIMEOUT_S + 30)
        except subprocess.TimeoutExpired:
            kill_tree(inner.pid)  # strace, the server, its mpiruns and ranks are all below it
            out, _ = inner.communicate()
            self.fail("the run inside the namespace passed its deadline:\n" + out[-4000:])
        self.assertEqual(inner.returncode, 0, out[-4000:])
        report = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(report["interfaces"], ["lo"], "the namespace has other interfaces")
        self.assertEqual(report["server_exit_code"], 0, out[-4000:])

        seen = read_trace(trace)
        offenders = seen["offenders"]
        self.assertFalse(offenders, f"{len(offenders)} syscalls with an address off loopback:\n" +
                         "\n".join(offenders[:50]))
        # Not vacuous: the replicas ran under the trace and their links were seen.
        programs = [cmd for _, cmd in seen["execs"]]
        self.assertTrue(any(re.search(r"\bmpirun\b", c) for c in programs), programs)
        self.assertGreaterEqual(sum(" replica " in f" {c} " for c in programs), 2, programs)
        inet = {pid for pid, call, _ in seen["loopback"] if call == "connect"}
        self.assertGreaterEqual(len(inet), 3, f"loopback connects from too few processes: {seen['loopback'][:20]}")
        self.assertGreater(seen["checked"], 30)
        print(f"\n{seen['checked']} connect/sendto/sendmsg/sendmmsg/bind calls of {len(seen['pids'])} processes, "
              f"all loopback, AF_UNIX or AF_NETLINK ({len(seen['loopback'])} with a loopback address)")
        shutil.rmtree(work, ignore_errors=True)


class ParseTrace(unittest.TestCase):
    """The strace line parser, on lines in strace's own format (so the test above can fail)."""

    def test_addresses_are_classified(self):
        lines = {
            '12 connect(5, {sa_family=AF_INET, sin_port=htons(41000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0': False,
            '12 connect(5, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, 16) = -1 '
            'ENETUNREACH (Network is unreachable)': True,
            '12 connect(5, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
            'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28 <unfinished ...>': True,
            '12 bind(18, {sa_family=AF_INET6, sin6_port=htons(0), sin6_flowinfo=htonl(0), '
            'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0': False,
            '12 sendto(3, "x", 1, 0, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 1': False,
            '12 connect(4, {sa_family=AF_UNIX, sun_path="/tmp/s"}, 110) = 0': False,
            '12 bind(7, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("0.0.0.0")}, 16) = 0': True,
            '12 sendmsg(9, {msg_name={sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("10.0.0.2")}, '
            'msg_namelen=16, msg_iov=[{iov_base="", iov_len=0}], msg_iovlen=1}, 0) = 0': True,
            # An address inside a data buffer is data, not a destination.
            '12 sendto(14, "{sa_family=AF_INET, sin_addr=inet_addr(\\"8.8.8.8\\")}", 50, 0, NULL, 0) = 50': False,
        }
        for line, bad in lines.items():
            pid, call, args = LINE.match(line).groups()
            found = [offending(f, a) for f, a in addresses(args)]
            self.assertEqual(any(found), bad, line)
            if "NULL, 0)" in line:
                self.assertEqual(found, [], line)


def traced_server(tracer: int) -> int:
    """The pid of `ponder serve`, strace's child."""
    for pid in descendants(tracer):
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read().split(b"\0")[1:2] == [b"serve"]:
                return pid
    raise RuntimeError("no ponder serve below strace")


def inside(trace: str) -> int:
    """In the namespace: the traced server, a real request each way, SIGTERM; a JSON line out."""
    libc = ctypes.CDLL(None, use_errno=True)
    command = ["strace", "-f", "-qq", "-o", trace, "-e", "trace=" + ",".join((*SYSCALLS, "execve")), "--",
               PONDER, "serve", "--model", MODEL, "--replicas", "2", "--threads", "1", "--kv-cache-bytes", "4MiB",
               "--port", "0", "--heartbeat-timeout-ms", "20000", "--startup-timeout-s", str(STARTUP_TIMEOUT_S)]
    tracer = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: libc.prctl(1, signal.SIGKILL))  # PR_SET_PDEATHSIG
    log, port, ready = [], [], threading.Event()

    def pump():
        for line in tracer.stdout:
            log.append(line)
            m = re.search(r"served at http://[^:]+:(\d+)/v1", line)
            if m and not port:
                port.append(int(m.group(1)))
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()

    def past_deadline():
        print(f"inside the namespace: past {INSIDE_TIMEOUT_S} s\n" + "".join(log[-60:]), flush=True)
        kill_tree(tracer.pid)
        os._exit(1)

    deadline = threading.Timer(INSIDE_TIMEOUT_S, past_deadline)
    deadline.daemon = True
    deadline.start()
    with open("/proc/net/dev") as f:  # this namespace's (sysfs would show the mounter's)
        report = {"interfaces": sorted(line.split(":")[0].strip() for line in f if ":" in line)}
    try:
        if not ready.wait(STARTUP_TIMEOUT_S) or not port:
            raise RuntimeError("ponder serve did not start under strace")
        base = f"http://127.0.0.1:{port[0]}"
        with urllib.request.urlopen(base + "/health", timeout=60) as r:
            report["health"] = json.loads(r.read())
        assert report["health"]["healthy_replicas"] == 2, report["health"]
        for stream in (False, True):
            body = {"messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 8, "stream": stream}
            req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            with urllib.request.urlopen(req, timeout=180) as r:
                text = r.read().decode()
            assert (text.rstrip().endswith("data: [DONE]") if stream else
                    json.loads(text)["usage"]["completion_tokens"] == 8), text[-500:]
        os.kill(traced_server(tracer.pid), signal.SIGTERM)
        report["server_exit_code"] = tracer.wait(180)  # strace exits with its tracee's status
    except Exception as e:  # noqa: BLE001 - reported with the server's log, then the tree is killed
        print(f"inside the namespace: {type(e).__name__}: {e}\n" + "".join(log[-60:]), flush=True)
        kill_tree(tracer.pid)
        tracer.wait()
        return 1
    print("".join(log[-5:]) + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        sys.exit(inside(sys.argv[2]))
    unittest.main(verbosity=2)
