#!/usr/bin/env python3
"""Load generator for `ponder serve` (or any OpenAI-compatible server).

Replays a fixed-seed mix of requests at a given request rate (Poisson arrivals) against
POST /v1/completions with streaming, and prints one JSON object: request and token throughput,
time to first token (TTFT), time per output token (TPOT) and end-to-end latency percentiles.
Prompts are token ids (exact lengths, no tokenizer needed) drawn from the mix's seed; outputs run
to max_tokens (ignore_eos), so every run of a mix does the same work.

  python3 bench/loadgen.py --url http://127.0.0.1:8000 --requests 200 --rate 4 \
      --input-len 64:256 --output-len 32:128 --vocab 32000

Standard library only (asyncio, HTTP/1.1 with chunked SSE).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import time
import urllib.parse


def parse_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition(":")
    lo_i, hi_i = int(lo), int(hi or lo)
    if lo_i < 1 or hi_i < lo_i:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX with 1 <= MIN <= MAX, got {text!r}")
    return lo_i, hi_i


def make_mix(args) -> list[dict]:
    rng = random.Random(args.seed)
    mix = []
    for i in range(args.requests):
        n_in = rng.randint(*args.input_len)
        n_out = rng.randint(*args.output_len)
        prompt = [rng.randrange(args.vocab_low, args.vocab) for _ in range(n_in)]
        mix.append({"prompt": prompt, "max_tokens": n_out})
    return mix


async def read_chunked_lines(reader: asyncio.StreamReader):
    """Yields the lines of a chunked (or close-delimited) HTTP body."""
    buffer = b""
    while True:
        size_line = await reader.readline()
        if not size_line:
            break
        size = int(size_line.strip().split(b";")[0] or b"0", 16)
        if size == 0:
            await reader.readline()
            break
        buffer += await reader.readexactly(size)
        await reader.readexactly(2)
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.rstrip(b"\r")
    if buffer:
        yield buffer


async def one_request(url, model, item, api_key, results, index):
    parts = urllib.parse.urlsplit(url)
    body = json.dumps({
        "model": model, "prompt": item["prompt"], "max_tokens": item["max_tokens"],
        "temperature": 0, "ignore_eos": True, "stream": True,
        "stream_options": {"include_usage": True},
    }).encode()
    head = (f"POST /v1/completions HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n")
    if api_key:
        head += f"Authorization: Bearer {api_key}\r\n"
    record = {"index": index, "input_tokens": len(item["prompt"]), "ok": False}
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        if status != 200:
            record["error"] = f"HTTP {status}: {(await reader.read(2000)).decode(errors='replace')}"
        else:
            first = last = None
            chunks = 0
            usage = None
            lines = (read_chunked_lines(reader) if headers.get("transfer-encoding") == "chunked"
                     else _plain_lines(reader))
            async for line in lines:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:]
                if data == b"[DONE]":
                    break
                event = json.loads(data)
                if event.get("usage"):
                    usage = event["usage"]
                if any(c.get("text") for c in event.get("choices", [])):
                    now = time.perf_counter()
                    first = first or now
                    last = now
                    chunks += 1
            end = time.perf_counter()
            out_tokens = (usage or {}).get("completion_tokens", chunks)
            record.update(ok=first is not None, output_tokens=out_tokens, e2e_s=end - start,
                          ttft_s=(first - start) if first else None,
                          tpot_s=((last - first) / (out_tokens - 1)) if first and out_tokens > 1 else None)
            if first is None:
                record["error"] = "no tokens streamed"
        writer.close()
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
        record["error"] = f"{type(e).__name__}: {e}"
    results.append(record)


async def _plain_lines(reader):
    while True:
        line = await reader.readline()
        if not line:
            return
        yield line.rstrip(b"\r\n")


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    pick = lambda q: v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))]
    return {"mean": statistics.fmean(v) * 1e3, "p50": pick(0.5) * 1e3, "p90": pick(0.9) * 1e3,
            "p99": pick(0.99) * 1e3, "max": v[-1] * 1e3}


async def run(args) -> dict:
    mix = make_mix(args)
    rng = random.Random(args.seed + 1)
    results: list[dict] = []
    tasks = []
    start = time.perf_counter()
    limit = asyncio.Semaphore(args.concurrency) if args.concurrency else None

    async def guarded(item, i):
        if limit:
            async with limit:
                await one_request(args.url, args.model, item, args.api_key, results, i)
        else:
            await one_request(args.url, args.model, item, args.api_key, results, i)

    for i, item in enumerate(mix):
        tasks.append(asyncio.create_task(guarded(item, i)))
        if args.rate > 0 and i + 1 < len(mix):
            await asyncio.sleep(rng.expovariate(args.rate))
    await asyncio.gather(*tasks)
    duration = time.perf_counter() - start
    ok = [r for r in results if r["ok"]]
    out_tokens = sum(r["output_tokens"] for r in ok)
    in_tokens = sum(r["input_tokens"] for r in ok)
    return {
        "benchmark": "loadgen",
        "url": args.url, "model": args.model, "seed": args.seed,
        "requests": len(mix), "completed": len(ok), "failed": len(results) - len(ok),
        "request_rate": args.rate if args.rate > 0 else "all at once",
        "input_len": list(args.input_len), "output_len": list(args.output_len),
        "duration_s": duration,
        "requests_per_s": len(ok) / duration,
        "output_tokens_per_s": out_tokens / duration,
        "total_tokens_per_s": (in_tokens + out_tokens) / duration,
        "ttft_ms": percentiles([r["ttft_s"] for r in ok if r["ttft_s"] is not None]),
        "tpot_ms": percentiles([r["tpot_s"] for r in ok if r["tpot_s"] is not None]),
        "e2e_ms": percentiles([r["e2e_s"] for r in ok]),
        "errors": sorted({r["error"] for r in results if "error" in r})[:5],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--model", default=None, help="model name (default: the first of GET /v1/models)")
    p.add_argument("--api-key", default=None)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--rate", type=float, default=4.0, help="requests per second (0: all at once)")
    p.add_argument("--concurrency", type=int, default=0, help="cap on requests in flight (0: none)")
    p.add_argument("--input-len", type=parse_range, default=(64, 256))
    p.add_argument("--output-len", type=parse_range, default=(32, 128))
    p.add_argument("--vocab", type=int, default=1000, help="prompt token ids are drawn below this")
    p.add_argument("--vocab-low", type=int, default=10, help="... and at or above this")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.requests < 1 or args.rate < 0 or args.vocab <= args.vocab_low:
        p.error("--requests must be >= 1, --rate >= 0, --vocab > --vocab-low")
    if args.model is None:
        import urllib.request
        req = urllib.request.Request(args.url + "/v1/models")
        if args.api_key:
            req.add_header("Authorization", f"Bearer {args.api_key}")
        with urllib.request.urlopen(req, timeout=10) as f:
            args.model = json.load(f)["data"][0]["id"]
    report = asyncio.run(run(args))
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0 if report["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
