"""`ponder serve --replicas 2` on its default host (127.0.0.1) listens on loopback only: every
listening TCP socket (IPv4 and IPv6) of every process in the server's tree — the coordinator, each
replica's mpirun (Open MPI's out-of-band and PMIx listeners) and the ranks — is bound to a
loopback address. Sockets are read from /proc/net/tcp{,6} and matched to processes through the
socket inodes in /proc/PID/fd, so no package is needed."""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import MODEL, Server, descendants  # noqa: E402

TCP_LISTEN = "0A"


def address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address of /proc/net/tcp{,6}: the kernel's words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = struct.unpack("<%dI" % (len(raw) // 4), raw)
    packed = struct.pack(">%dI" % len(words), *words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return ipaddress.ip_address(socket.inet_ntop(family, packed))


def listening_sockets() -> dict[int, tuple[str, int]]:
    """inode -> (address, port) of every listening TCP socket in this network namespace."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], int(fields[9])
                if state != TCP_LISTEN:
                    continue
                hex_address, hex_port = local.split(":")
                found[inode] = (address(hex_address), int(hex_port, 16))
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, ProcessLookupError):
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[len("socket:["):-1]))
    return inodes


def command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def is_loopback(a) -> bool:
    mapped = a.ipv4_mapped if a.version == 6 else None  # ::ffff:127.0.0.1
    return a.is_loopback or (mapped is not None and mapped.is_loopback)


class ListenersOnLoopback:
    """A server started with ARGS, checked by the test below (a mixin: unittest skips it alone)."""

    ARGS: tuple[str, ...] = ()
    LAUNCHERS = 0  # mpiruns expected in the tree

    @classmethod
    def setUpClass(cls):
        cls.server = Server("--model", MODEL, "--threads", "1", "--kv-cache-bytes", "1048576",
                            "--max-n", "2", *cls.ARGS)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            print("".join(cls.server.log[-30:]), file=sys.stderr)
        assert code == 0, f"ponder serve exited {code} after SIGTERM"

    def listeners(self) -> list[tuple[int, str, object, int]]:
        """(pid, command, address, port) of each listening socket in the server's process tree."""
        tree = [self.server.proc.pid, *descendants(self.server.proc.pid)]
        sockets = listening_sockets()
        out = []
        for pid in tree:
            for inode in socket_inodes(pid) & sockets.keys():
                out.append((pid, command(pid), *sockets[inode]))
        return out

    def test_every_listener_of_the_process_tree_is_on_loopback(self):
        tree = [self.server.proc.pid, *descendants(self.server.proc.pid)]
        launchers = [p for p in tree if os.path.basename(command(p).split(" ")[0]) == "mpirun"]
        self.assertEqual(len(launchers), self.LAUNCHERS, [command(p) for p in tree])
        # The replicas answer (they run under whatever ponder put around mpirun).
        status, body = self.server.post("/v1/chat/completions",
                                        {"model": "tiny-reasoner", "max_tokens": 4,
                                         "messages": [{"role": "user", "content": "2 + 2?"}]})
        self.assertEqual(status, 200, body)
        listeners = self.listeners()
        report = "\n".join(f"  pid {pid} {a}:{port}  {cmd[:100]}"
                           for pid, cmd, a, port in listeners)
        # Not vacuous: the HTTP API and each mpirun's out-of-band listener are among them.
        self.assertIn(self.server.port, [port for _, _, _, port in listeners], report)
        listening = {pid for pid, _, _, _ in listeners}
        self.assertEqual(listening & set(launchers), set(launchers), report)
        public = [f"{os.path.basename(cmd.split(' ')[0])} (pid {pid}) on {a}:{port}"
                  for pid, cmd, a, port in listeners if not is_loopback(a)]
        self.assertFalse(public, "listening off loopback:\n" + report)


class TwoReplicas(ListenersOnLoopback, unittest.TestCase):
    ARGS = ("--replicas", "2")
    LAUNCHERS = 2


class TwoReplicasOfTwoRanks(ListenersOnLoopback, unittest.TestCase):
    """Ranks that talk to each other (shared memory) listen nowhere either."""

    ARGS = ("--replicas", "2", "--tp", "2")
    LAUNCHERS = 2


if __name__ == "__main__":
    unittest.main()
