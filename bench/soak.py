#!/usr/bin/env python3
"""Soak and fault benchmark for `ponder serve --replicas R`: N concurrent seeded SSE streams for a
duration while replicas are SIGKILLed at an interval and restarted by the server's supervision.

Every stream must complete and equal its reference token for token (the references are computed
first on the same server with no faults; a second pass in another order checks they are
reproducible). Streams are seeded with temperature > 0, so a sample that moves to another replica
when its first one dies must go on with the very tokens it would have made. A request that gets
503 + Retry-After (no replica alive) waits and retries; the retry must equal the reference too.
Resident memory of the server process and of its whole tree is sampled over time.

  python3 bench/soak.py                 # 256 streams, 10 minutes, 2 replicas, a kill every 30 s
  python3 bench/soak.py --short         # CI: 32 streams, ~50 s, 2 kills (one replica, then all)

Prints one JSON object on stdout (progress on stderr). Exits 1 when any stream was lost,
duplicated or mismatched, a replica did not come back, restarts do not match the kills, or the
server did not stop cleanly; never on a timing. Standard library only; HTTP to 127.0.0.1 only.
Everything it starts is stopped by pid at the end, also on an error or Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak_http import Counters, http_get, metric, stream_once  # noqa: E402
from soak_processes import ROOT, Server, cmdline, descendants, fd_count, proc_stat, rss_kib, sigkill  # noqa: E402

PROMPTS = ["What is 47 * 23 + 158?", "Compute 12*7-5.", "What is 305 - 78 * 3?", "81+9*14=?",
           "What is 6 * 7 + 8 * 9?", "What is 999 + 1?", "Compute 123*4.", "What is 2 + 2?",
           "What is 56 - 17 + 300?", "40*40-1=?"]
MAX_RETRIES = 60         # 503 retries of one stream before it counts as lost
RETRY_AFTER_CAP_S = 10


def log(msg: str):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- jobs, streams and their checks -----------------------------------------------------------

def make_jobs(count: int, seed: int, lengths: tuple[int, int], model: str) -> list[dict]:
    """Distinct seeded requests: both endpoints, n = 1 and 2, several temperatures and cuts."""
    jobs = []
    for j in range(count):
        rng = random.Random(f"{seed}:{j}")
        prompt = PROMPTS[j % len(PROMPTS)]
        body = {"model": model, "max_tokens": rng.randint(*lengths), "temperature": rng.choice([0.7, 0.9, 1.0, 1.3]),
                "seed": seed * 100003 + j, "n": 2 if j % 8 == 5 else 1, "ignore_eos": True, "stream": True,
                "stream_options": {"include_usage": True}}
        if j % 3 == 1:
            body["top_p"] = 0.9
        if j % 5 == 2:
            body["top_k"] = 40
        if j % 4 == 3:
            path = "/v1/completions"
            body["prompt"] = f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n<think>\n"
            body["logprobs"] = 0
        else:
            path = "/v1/chat/completions"
            body["messages"] = [{"role": "user", "content": prompt}]
            body["logprobs"] = True
        jobs.append({"id": j, "path": path, "body": json.dumps(body).encode(), "n": body["n"],
                     "max_tokens": body["max_tokens"]})
    return jobs


def check(job: dict, got: dict, ref: dict | None) -> tuple[str, str] | None:
    """None when the stream is whole and equals the reference; else (kind, what is wrong)."""
    if sorted(got["choices"]) != list(range(job["n"])):
        return "lost_or_duplicated", f"choices {sorted(got['choices'])}, expected {job['n']}"
    for i, (_, _, tokens, finish) in got["choices"].items():
        if len(tokens) != job["max_tokens"]:  # ignore_eos: exactly max_tokens each
            return "lost_or_duplicated", f"choice {i}: {len(tokens)} tokens, expected {job['max_tokens']}"
        if finish != "length":
            return "lost_or_duplicated", f"choice {i}: finish_reason {finish!r}, expected 'length'"
    if got["completion_tokens"] != job["n"] * job["max_tokens"]:
        return ("lost_or_duplicated",
                f"usage.completion_tokens {got['completion_tokens']}, expected {job['n'] * job['max_tokens']}")
    for i, want in (ref or {"choices": {}})["choices"].items():
        have = got["choices"][i]
        if have[2] != want[2]:
            k = next((k for k, (x, y) in enumerate(zip(have[2], want[2])) if x != y), len(want[2]))
            return "mismatched", (f"choice {i} differs from its reference from token {k}: got "
                                  f"{list(have[2][k:k + 6])}, expected {list(want[2][k:k + 6])}")
        if have != want:
            return "mismatched", (f"choice {i}: the tokens are the reference's, the text is not: got "
                                  f"{have[:2]!r:.300}, expected {want[:2]!r:.300}")
    return None


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * (len(xs) - 1)))))]


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return None if var == 0 else 60 * sum((t - mt) * (v - mv) for t, v in points) / var


# --- the benchmark ------------------------------------------------------------------------------

class Soak:
    def __init__(self, server: Server, args):
        self.server, self.args = server, args
        self.port = server.port
        self.stats = collections.Counter()
        self.failures: list[dict] = []
        self.ttft, self.latency, self.tokens_done = [], [], 0
        self.in_flight = 0
        self.kills: list[dict] = []
        self.memory: list[tuple[float, int, int, int]] = []  # (t, server KiB, tree KiB, server fds)
        self.max_logprob_diff = 0.0
        self.problems: list[str] = []  # benchmark-level failures (a replica that did not come back, ...)
        self.counters = Counters()

    def fail(self, kind: str, job: dict, detail: str, retries: int):
        self.stats[kind] += 1
        if len(self.failures) < 20:
            self.failures.append({"kind": kind, "job": job["id"], "path": job["path"], "retries": retries,
                                  "detail": detail})
        log(f"FAIL {kind} job {job['id']}: {detail}")

    async def run_stream(self, job: dict, ref: dict | None) -> dict | None:
        """One stream to its end (503s retried after Retry-After); its result when it is whole."""
        retries = 0
        while True:
            self.in_flight += 1
            try:
                a = await stream_once(self.port, job)
            finally:
                self.in_flight -= 1
            if a.status == 503 and retries < MAX_RETRIES:
                retries += 1
                self.stats["retries_503"] += 1
                if a.retry_after is None:
                    self.stats["503_without_retry_after"] += 1
                    self.problems.append(f"a 503 without Retry-After: {a.error}")
                await asyncio.sleep(min(float(a.retry_after or 1), RETRY_AFTER_CAP_S))
                continue
            break
        if retries:
            self.stats["streams_retried"] += 1
        if a.error is not None:
            self.fail("lost", job, a.error, retries)
            return None
        got = a.result()
        wrong = check(job, got, ref)
        if wrong:
            self.fail(wrong[0], job, wrong[1], retries)
            return None
        if ref is not None:
            for i, values in got["logprobs"].items():
                for x, y in zip(values, ref["logprobs"][i]):
                    if x is not None and y is not None:
                        self.max_logprob_diff = max(self.max_logprob_diff, abs(x - y))
        self.stats["streams_ok"] += 1
        if a.t_first is not None:
            self.ttft.append(a.t_first - a.t_start)
        self.latency.append(a.t_end - a.t_start)
        self.tokens_done += got["completion_tokens"]
        return got

    async def references(self, jobs: list[dict]) -> dict:
        """Every job once on the quiet server, then a second time in another order (other batches)."""
        sem = asyncio.Semaphore(self.args.streams)
        refs = {}

        async def one(job, ref):
            async with sem:
                return job["id"], await self.run_stream(job, ref)

        t0 = time.monotonic()
        for job_id, got in await asyncio.gather(*(one(j, None) for j in jobs)):
            if got is None:
                raise RuntimeError(f"the reference of job {job_id} failed on the quiet server")
            refs[job_id] = got
        quiet_s = time.monotonic() - t0
        repeat = list(reversed(jobs))[:min(len(jobs), 2 * self.args.streams)]
        results = await asyncio.gather(*(one(j, refs[j["id"]]) for j in repeat))
        bad = [job_id for job_id, got in results if got is None]
        if bad:
            raise RuntimeError(f"{len(bad)} references are not reproducible on the quiet server (jobs {bad[:10]}): "
                               "faults could not be told from nondeterminism")
        self.quiet = {"jobs": len(jobs), "seconds": round(quiet_s, 2), "repeated": len(repeat),
                      "tokens_per_s": round(sum(j["n"] * j["max_tokens"] for j in jobs) / quiet_s, 1)}
        self.stats.clear()
        self.ttft, self.latency, self.tokens_done = [], [], 0
        return refs

    async def health(self) -> tuple[int | None, dict]:
        try:
            status, body = await http_get(self.port, "/health")
            return status, json.loads(body)
        except (OSError, ConnectionError, TimeoutError, ValueError):
            return None, {}

    async def outage_probes(self, rng: random.Random, victims: list[int], t_kill: float) -> int:
        """Once /health says no replica is alive (if it does before they are back), new streams:
        they get 503 + Retry-After and are retried until served. Returns how many were started."""
        until = time.monotonic() + 10
        while time.monotonic() < until and self.server.back_after(victims, t_kill) is None:
            if (await self.health())[0] == 503:
                jobs = [self.jobs[rng.randrange(len(self.jobs))] for _ in range(self.args.outage_probes)]
                self.stats["streams_started"] += len(jobs)
                self.stats["outage_probes"] += len(jobs)
                await asyncio.gather(*(self.run_stream(job, self.refs[job["id"]]) for job in jobs))
                return len(jobs)
            await asyncio.sleep(0.02)
        return 0

    async def wait_healthy(self, restarts_at_least: dict[int, int], timeout: float) -> bool:
        """Every replica healthy, each index in restarts_at_least restarted at least that often."""
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            states = (await self.health())[1].get("replica_states") or []
            if (len(states) == self.args.replicas and all(s["state"] == "healthy" for s in states) and
                    all(s["restarts"] >= restarts_at_least.get(s["index"], 0) for s in states)):
                return True
            await asyncio.sleep(0.1)
        return False

    async def killer(self, t0: float, end: float):
        """SIGKILLs replicas at the interval: one at a time (its mpirun tree, or only its rank
        processes, alternately), every kill_all_every-th kill all of them at once."""
        if self.args.kill_interval <= 0:
            return
        k, single = 0, 0
        rng = random.Random(f"kills:{self.args.seed}")
        while self.args.kills is None or k < self.args.kills:
            # Jittered, so that kills do not keep landing at the same phase of the streams.
            at = t0 + (k + 1 + rng.uniform(-0.2, 0.2)) * self.args.kill_interval
            if at > end - min(10.0, self.args.kill_interval / 2):
                return
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            if not await self.wait_healthy({}, 180):
                self.problems.append(f"before kill {k + 1}: not every replica healthy after 180 s")
                return
            restarts = {s["index"]: s["restarts"] for s in (await self.health())[1]["replica_states"]}
            replicas = self.server.replicas()
            k += 1
            if self.args.kill_all_every and k % self.args.kill_all_every == 0:
                victims, mode = sorted(replicas), "all"
            else:
                victims, mode = [single % self.args.replicas], ("tree" if single % 2 == 0 else "ranks")
                single += 1
            pids = []
            for index in victims:
                mpirun = replicas.get(index)
                if mpirun is None:
                    self.problems.append(f"kill {k}: no mpirun found for replica {index}")
                    continue
                below = descendants(mpirun)
                ranks = [p for p in below if "replica" in cmdline(p)[1:2]]
                pids += ranks if mode == "ranks" else [mpirun, *below]
            moved_before = self.server.counts["samples_moved"]
            placements_before = self.server.counts["placements_moved"]
            in_flight = self.in_flight
            t_kill = time.monotonic()
            sigkill(pids)
            log(f"kill {k} ({mode}): replicas {victims}, pids {pids}, {in_flight} streams in flight")
            probes = asyncio.create_task(self.outage_probes(rng, victims, t_kill)) if mode == "all" else None
            back = await self.wait_healthy({i: restarts[i] + 1 for i in victims}, 180)
            health_s = time.monotonic() - t_kill
            probed = await probes if probes else 0
            # From the server's log ("replica I is back as ..."), which may come just after /health
            # shows it; /health itself answers late when the client is loaded.
            recovered = self.server.back_after(victims, t_kill)
            for _ in range(100):
                if recovered is not None or not back:
                    break
                await asyncio.sleep(0.1)
                recovered = self.server.back_after(victims, t_kill)
            self.kills.append({"t_s": round(t_kill - t0, 1), "mode": mode, "replicas": victims, "pids": pids,
                               "streams_in_flight": in_flight, "outage_probes": probed,
                               "recovered_s": None if recovered is None else round(recovered, 2),
                               "healthy_seen_s": round(health_s, 2),
                               "placements_moved": self.server.counts["placements_moved"] - placements_before,
                               "samples_moved": self.server.counts["samples_moved"] - moved_before})
            if not back:
                self.problems.append(f"kill {k}: replicas {victims} not healthy again after 180 s")
                return

    def sample_memory(self, t0: float):
        pid = self.server.proc.pid
        tree = self.server.tree()
        self.memory.append((time.monotonic() - t0, rss_kib(pid), sum(rss_kib(p) for p in [pid, *tree]), fd_count(pid)))

    async def scrape(self, t0: float):
        try:
            self.counters.scrape((await http_get(self.port, "/metrics"))[1].decode(), time.monotonic() - t0)
        except (OSError, ConnectionError, TimeoutError, ValueError) as e:
            log(f"/metrics: {type(e).__name__}: {e}")

    async def sampler(self, t0: float, stop: asyncio.Event):
        next_scrape = 0.0
        while not stop.is_set():
            self.sample_memory(t0)
            if time.monotonic() - t0 >= next_scrape:
                next_scrape += 5
                await self.scrape(t0)
            try:
                await asyncio.wait_for(stop.wait(), self.args.sample_interval)
            except TimeoutError:
                pass

    async def progress(self, t0: float, stop: asyncio.Event):
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 30)
            except TimeoutError:
                m = self.memory[-1] if self.memory else (0, 0, 0, 0)
                log(f"t={time.monotonic() - t0:.0f}s ok={self.stats['streams_ok']} failed="
                    f"{len(self.failures)} in_flight={self.in_flight} kills={len(self.kills)} "
                    f"retries={self.stats['retries_503']} server_rss={m[1] / 1024:.1f}MiB "
                    f"tree_rss={m[2] / 1024:.1f}MiB")

    async def run(self) -> dict:
        status, body = await http_get(self.port, "/v1/models")
        model = json.loads(body)["data"][0]["id"]
        jobs = make_jobs(self.args.jobs, self.args.seed, self.args.max_tokens, model)
        log(f"references: {len(jobs)} jobs with {self.args.streams} in flight, no faults")
        refs = await self.references(jobs)
        self.jobs, self.refs = jobs, refs
        log(f"references done ({self.quiet}); soak: {self.args.streams} streams for {self.args.duration} s")
        metrics0 = (await http_get(self.port, "/metrics"))[1].decode()
        t0 = time.monotonic()
        self.counters.scrape(metrics0, 0)
        end = t0 + self.args.duration
        stop = asyncio.Event()
        helpers = [asyncio.create_task(self.sampler(t0, stop)), asyncio.create_task(self.progress(t0, stop))]
        killer = asyncio.create_task(self.killer(t0, end))

        async def slot(s: int):
            rng = random.Random(f"slot:{self.args.seed}:{s}")
            while time.monotonic() < end:
                if self.server.proc.poll() is not None:
                    if "the server exited" not in " ".join(self.problems):
                        self.problems.append(f"the server exited ({self.server.proc.returncode}) during the soak")
                    return
                job = jobs[rng.randrange(len(jobs))]
                self.stats["streams_started"] += 1
                await self.run_stream(job, refs[job["id"]])

        try:
            await asyncio.gather(*(slot(s) for s in range(self.args.streams)))
            t_streams = time.monotonic() - t0
            await killer
            if not await self.wait_healthy({}, 180):
                self.problems.append("at the end: not every replica healthy after 180 s")
        finally:
            stop.set()
            killer.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        await asyncio.sleep(2)  # idle: every connection closed
        metrics1 = (await http_get(self.port, "/metrics"))[1].decode()
        elapsed = time.monotonic() - t0
        self.counters.scrape(metrics1, elapsed)
        self.sample_memory(t0)
        return self.report(metrics0, metrics1, t_streams, elapsed)

    def report(self, m0: str, m1: str, t_streams: float, elapsed: float) -> dict:
        mem = self.memory

        def series(col):
            pts = [(m[0], m[col] / 1024) for m in mem]
            half = [p for p in pts if p[0] >= elapsed / 2]
            return {"first_mib": round(pts[0][1], 1), "last_mib": round(pts[-1][1], 1),
                    "max_mib": round(max(v for _, v in pts), 1),
                    "slope_mib_per_min": round(slope_per_min(pts) or 0, 3),
                    "slope_second_half_mib_per_min": round(slope_per_min(half) or 0, 3)}

        def ms(xs, q):
            v = percentile(xs, q)
            return None if v is None else round(v, 4)

        killed = sum(len(k["replicas"]) for k in self.kills)
        restarts = metric(m1, "ponder_replica_restarts_total") - metric(m0, "ponder_replica_restarts_total")
        if restarts != killed:
            self.problems.append(f"/metrics counts {restarts:.0f} replica restarts during the soak, "
                                 f"{killed} were killed")
        recovered = [k["recovered_s"] for k in self.kills if k["recovered_s"] is not None]
        return {
            "streams": {"concurrent": self.args.streams, "started": self.stats["streams_started"],
                        "completed_equal_to_reference": self.stats["streams_ok"],
                        "lost": self.stats["lost"], "lost_or_duplicated_tokens": self.stats["lost_or_duplicated"],
                        "mismatched": self.stats["mismatched"], "retried_after_503": self.stats["streams_retried"],
                        "retries_503": self.stats["retries_503"], "outage_probes": self.stats["outage_probes"],
                        "503_without_retry_after": self.stats["503_without_retry_after"]},
            "failures": self.failures,
            "tokens": {"completed": self.tokens_done, "per_s": round(self.tokens_done / t_streams, 1),
                       # Summed over the replicas, whose counters restart from 0 with them: an upper bound.
                       "preemptions_at_most": int(self.counters.total("ponder_preemptions_total"))},
            "ttft_s": {"p50": ms(self.ttft, 50), "p99": ms(self.ttft, 99), "max": ms(self.ttft, 100)},
            "latency_s": {"p50": ms(self.latency, 50), "p99": ms(self.latency, 99), "max": ms(self.latency, 100)},
            "faults": {"kills": len(self.kills), "replicas_killed": killed, "replica_restarts_metric": int(restarts),
                       "http_503_metric": int(self.counters.total("ponder_http_requests_total", 'status="503"',
                                                                  'endpoint="/v1/')),
                       "placements_moved_log": self.server.counts["placements_moved"],
                       "samples_moved_log": self.server.counts["samples_moved"],
                       "recovery_s": {"p50": ms(recovered, 50), "max": ms(recovered, 100)},
                       "kills_detail": self.kills},
            "memory": {"samples": len(mem), "interval_s": self.args.sample_interval,
                       "note": "last = idle, after the streams ended and every replica was healthy again",
                       "server_rss": series(1), "tree_rss": series(2),
                       "server_fds": {"first": mem[0][3], "last": mem[-1][3], "max": max(m[3] for m in mem)}},
            "quiet_reference_pass": self.quiet,
            "max_logprob_diff_vs_reference": self.max_logprob_diff,
            "findings": {"counters_that_decreased": dict(self.counters.decreases),
                         "counter_decrease_examples": self.counters.examples,
                         "unexplained_error_log_lines": list(self.server.errors)[:10]},
            "problems": self.problems,
            "seconds": {"soak": round(t_streams, 1), "with_drain_and_recovery": round(elapsed, 1)},
        }


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--short", action="store_true",
                   help="CI: 32 streams for 50 s, 2 kills 16 s apart (one replica, then all), 64 jobs of 64:256 tokens")
    p.add_argument("--streams", type=int, help="concurrent streams (default 256)")
    p.add_argument("--duration", type=float, help="seconds of soak after the references (default 600)")
    p.add_argument("--replicas", type=int, default=2, help="replicas of tp = pp = 1 (default 2)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per replica rank")
    p.add_argument("--kill-interval", type=float, help="seconds between kills, 0: none (default 30)")
    p.add_argument("--kills", type=int, help="at most this many kills (default: as the duration allows)")
    p.add_argument("--kill-all-every", type=int, help="every K-th kill takes all replicas (default 4; 0: never)")
    p.add_argument("--jobs", type=int, help="distinct seeded requests (default 512)")
    p.add_argument("--max-tokens", default=None, help="MIN:MAX tokens per stream (default 64:384)")
    p.add_argument("--outage-probes", type=int, default=4,
                   help="streams started while no replica is alive, after each kill of all (default 4)")
    p.add_argument("--restart-backoff-ms", type=int, default=500,
                   help="the server's replica_restart_backoff_ms (default 500)")
    p.add_argument("--sample-interval", type=float, default=2.0, help="seconds between memory samples")
    p.add_argument("--seed", type=int, default=1, help="of the jobs, the slots' choices and the kills")
    p.add_argument("--model", default=os.path.join(ROOT, "models", "tiny-reasoner"), help="model directory")
    p.add_argument("--ponder", default=os.environ.get("PONDER", os.path.join(ROOT, "build/release/bin/ponder")),
                   help="the ponder binary (default $PONDER, else build/release/bin/ponder)")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--server-log", help="write the server's log (stdout and stderr) here, with times")
    a = p.parse_args(argv)
    defaults = ({"streams": 32, "duration": 50, "kill_interval": 16, "kills": 2, "kill_all_every": 2, "jobs": 64,
                 "max_tokens": "64:256"} if a.short else
                {"streams": 256, "duration": 600, "kill_interval": 30, "kill_all_every": 4, "jobs": 512,
                 "max_tokens": "64:384"})
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    lo, _, hi = a.max_tokens.partition(":")
    a.max_tokens = (int(lo), int(hi or lo))
    return a


def machine(load_at_start) -> dict:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpu": model, "cpus": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1),
            "load_average_1m_at_start": round(load_at_start[0], 2),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "kernel": os.uname().release}


def main(argv=None) -> int:
    args = parse_args(argv)
    # Ctrl-C, also when started as a background job (SIGINT ignored), and SIGTERM: asyncio.run
    # cancels the run, then the server and its tree are stopped below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    command = [args.ponder, "serve", "--model", args.model, "--replicas", str(args.replicas),
               "--threads", str(args.threads), "--port", "0", "--max-n", "2",
               "--max-replica-restarts", "1000000", "--replica-restart-backoff-ms", str(args.restart_backoff_ms),
               "--drain-timeout-s", "10"]
    log(" ".join(command))
    t_start = time.monotonic()
    load_at_start = os.getloadavg()
    server = Server(command, args.server_log)
    result, code = None, 1
    try:
        soak = Soak(server, args)
        result = asyncio.run(soak.run())
        rc = server.stop(timeout=120)
        if rc != 0:
            result["problems"].append(f"ponder serve exited {rc} after SIGTERM")
        left = sorted(p for p, start in server.seen if (proc_stat(p) or (0, None))[1] == start)
        if left:
            result["problems"].append(f"processes of the server's tree still alive after it stopped: {left}")
        result["server_exit_code"] = rc
        result["command"] = " ".join(command)
        result["settings"] = {k: v for k, v in vars(args).items() if k not in ("ponder", "model", "out")}
        result["machine"] = machine(load_at_start)
        result["seconds"]["total"] = round(time.monotonic() - t_start, 1)
        s = result["streams"]
        bad = s["lost"] + s["lost_or_duplicated_tokens"] + s["mismatched"] + s["503_without_retry_after"]
        code = 1 if bad or result["problems"] else 0
    except KeyboardInterrupt:
        log("interrupted: stopping the server")
    except Exception as e:  # noqa: BLE001 - reported, then everything started is stopped
        log(f"error: {type(e).__name__}: {e}")
        log("server log tail:\n" + "".join(list(server.tail)[-30:]))
    finally:
        if server.proc.poll() is None:
            server.stop(timeout=15)
        server.kill()
    if result is not None:
        text = json.dumps(result, indent=2)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
        if code:
            log("FAILED: " + "; ".join(result["problems"] + [f"{len(result['failures'])} failed streams"]))
    return code


if __name__ == "__main__":
    sys.exit(main())
