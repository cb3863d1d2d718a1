"""HTTP/1.1 over asyncio for the soak benchmark (chunked bodies, server-sent events), the streams of
the OpenAI API gathered per choice, and Prometheus text read back. Loopback only."""
from __future__ import annotations

import asyncio
import collections
import json
import time

IDLE_TIMEOUT_S = 120     # a stream with no byte for this long is lost
ATTEMPT_TIMEOUT_S = 600  # and one attempt never takes longer than this


async def http_open(port: int, method: str, path: str, body: bytes | None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body or b'')}\r\n\r\n")
    writer.write(head.encode() + (body or b""))
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before the status line")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return reader, writer, status, headers


async def http_body(reader, headers):
    """Yields the body's pieces as they come."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("connection closed inside a chunked body")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]
    elif "content-length" in headers:
        yield await reader.readexactly(int(headers["content-length"]))
    else:
        while chunk := await reader.read(65536):
            yield chunk


async def http_get(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    async with asyncio.timeout(timeout):
        reader, writer, status, headers = await http_open(port, "GET", path, None)
        try:
            return status, b"".join([piece async for piece in http_body(reader, headers)])
        finally:
            writer.close()


def metric(text: str, name: str, *labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels contain every one of `labels`."""
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + " ") or line.startswith(name + "{")) and all(x in line for x in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Counters:
    """Follows every `counter` of /metrics across scrapes: its increase (a drop counts as a reset,
    as Prometheus' increase() does) and how often each one went down, which a counter never should."""

    def __init__(self):
        self.last: dict[str, float] = {}
        self.increase = collections.Counter()
        self.decreases = collections.Counter()
        self.examples: dict[str, str] = {}
        self.scrapes = 0

    def scrape(self, text: str, t: float):
        counters = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ") and
                    line.split()[3] == "counter"}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            series, value = line.rsplit(" ", 1)
            name = series.split("{")[0]
            if name not in counters:
                continue
            v = float(value)
            if series in self.last:
                old = self.last[series]
                if v < old:
                    self.decreases[name] += 1
                    self.examples.setdefault(name, f"{series} went from {old:g} to {v:g} at t={t:.0f}s")
                self.increase[series] += v if v < old else v - old
            elif self.scrapes:  # a series that appears counts from 0
                self.increase[series] += v
            self.last[series] = v
        self.scrapes += 1

    def total(self, name: str, *labels: str) -> float:
        return sum(v for series, v in self.increase.items()
                   if series.split("{")[0] == name and all(x in series for x in labels))


class Attempt:
    """One HTTP request of a stream: its status and, for a 200, what the events carried."""

    def __init__(self):
        self.status = None
        self.retry_after = None
        self.error = None  # why it did not complete
        self.choices = collections.defaultdict(lambda: {"reasoning": [], "text": [], "tokens": [], "logprobs": [],
                                                        "finish": None})
        self.usage = None
        self.done = False
        self.t_start = time.monotonic()
        self.t_first = None
        self.t_end = None

    def add(self, event: dict):
        if "error" in event:
            self.error = f"error event: {json.dumps(event['error'])[:300]}"
        for c in event.get("choices") or []:
            ch = self.choices[c["index"]]
            delta = c.get("delta")
            if delta is not None:  # chat
                ch["reasoning"].append(delta.get("reasoning_content") or "")
                ch["text"].append(delta.get("content") or "")
            else:
                ch["text"].append(c.get("text") or "")
            lp = c.get("logprobs")
            if lp:
                if "content" in lp:
                    ch["tokens"] += [bytes(t["bytes"]) for t in lp["content"] or []]  # exact, even mid-character
                    ch["logprobs"] += [t["logprob"] for t in lp["content"] or []]
                else:
                    ch["tokens"] += lp.get("tokens") or []
                    ch["logprobs"] += lp.get("token_logprobs") or []
                if self.t_first is None and ch["tokens"]:
                    self.t_first = time.monotonic()
            if c.get("finish_reason"):
                ch["finish"] = c["finish_reason"]
        if event.get("usage"):
            self.usage = event["usage"]

    def result(self) -> dict:
        """What must equal the reference: per choice its text, tokens and finish; the usage count."""
        return {"choices": {i: ("".join(c["reasoning"]), "".join(c["text"]), tuple(c["tokens"]), c["finish"])
                            for i, c in sorted(self.choices.items())},
                "completion_tokens": (self.usage or {}).get("completion_tokens"),
                "logprobs": {i: c["logprobs"] for i, c in self.choices.items()}}


async def stream_once(port: int, job: dict) -> Attempt:
    a = Attempt()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ATTEMPT_TIMEOUT_S
    writer = None
    try:
        async with asyncio.timeout(IDLE_TIMEOUT_S) as cm:
            reader, writer, a.status, headers = await http_open(port, "POST", job["path"], job["body"])
            if a.status != 200:
                a.retry_after = headers.get("retry-after")
                body = b"".join([p async for p in http_body(reader, headers)])
                a.error = f"HTTP {a.status}: {body[:300].decode(errors='replace')}"
                return a
            buffer = b""
            async for piece in http_body(reader, headers):
                cm.reschedule(min(loop.time() + IDLE_TIMEOUT_S, deadline))
                buffer += piece
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.startswith(b"data: "):
                        continue
                    data = line[6:].strip()
                    if data == b"[DONE]":
                        a.done = True
                    else:
                        a.add(json.loads(data))
        if not a.done and a.error is None:
            a.error = "the stream ended without [DONE]"
    except TimeoutError:
        a.error = "no data for %d s (or the attempt passed %d s)" % (IDLE_TIMEOUT_S, ATTEMPT_TIMEOUT_S)
    except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
        a.error = f"{type(e).__name__}: {e}"
    finally:
        a.t_end = time.monotonic()
        if writer is not None:
            writer.close()
    return a
