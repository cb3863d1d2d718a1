# A synthetic results.sqlite in the runner's schema, for the report's tests and for trying the
# report without a model: python3 -m experiments.report.synthetic OUT_DIR [--problems-per-level 24]
"""Synthetic sweep: levels 1..L, a max_thinking_tokens grid with a direct point (budget 0), one
extend_thinking point, N samples per problem, a few failed samples, on two deployments (a
`replicas` grid axis: 1 and 2) with a runs table (the second deployment's first run killed, then
resumed). Accuracy rises with the thinking budget and falls with the level; wrong answers come
from a few distractors per problem so that votes split and tie.

Thinking follows the engine's accounting: reasoning_tokens counts the end-of-thinking delimiter
(one token) when the block closed, drawn by the model or inserted at max_thinking_tokens, so a
capped sample has reasoning_tokens = budget + 1; a few samples stop inside the thinking block
(reasoning_tokens = what they thought, answer_tokens 0, content ''), and some capped samples
ramble to max_tokens without a final answer. nominal_flops = 2·P·(prompt + completion) per
sample; flops = the request's executed 2·P·(uncached prompt + Σ completion), split in proportion
to nominal_flops (schema "v1": no nominal_flops, no runs, split by completion tokens, as the
first release of the runner stored it)."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sqlite3

from .data import SCHEMA, SCHEMA_V1

DEFAULT_GRID = ((0, 0), (32, 0), (128, 0), (512, 0), (None, 0), (128, 1))
DEFAULT_DEPLOYMENTS = ({"replicas": 1}, {"replicas": 2})
PARAMS = 2.5e6            # the synthetic model's parameters: 2·P FLOPs per token
MAX_TOKENS = 960
START = 1767225600.0


def make_db(path: str, levels=(1, 2, 3, 4, 5), per_level: int = 24, samples: int = 16,
            grid=DEFAULT_GRID, seed: int = 7, failure_rate: float = 0.02,
            deployments=DEFAULT_DEPLOYMENTS, schema: str = "current") -> str:
    """Writes path (a directory gets results.sqlite inside); returns the database path.
    deployments: one dict of deployment-axis values each ((), or ({},): no axis); schema
    "current" (results_store.cpp's) or "v1" (no runs table, no nominal_flops / run_id)."""
    if os.path.isdir(path) or not path.endswith(".sqlite"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, "results.sqlite")
    if os.path.exists(path):
        os.remove(path)
    v1 = schema == "v1"
    deployments = [dict(d) for d in deployments] or [{}]
    if v1:
        deployments = [{}]
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_V1 if v1 else SCHEMA)
    axes = {k: sorted({d[k] for d in deployments if k in d}) for d in deployments for k in d}
    spec = ("name: synthetic\nmodel: models/tiny-reasoner\nsamples: %d\n"
            "grid:\n  max_thinking_tokens: [0, 32, 128, 512, null]\n" % samples
            + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in axes.items()))
    meta = {"spec_yaml": spec, "spec_hash": hashlib.sha256(spec.encode()).hexdigest()[:16],
            "served_model": "tiny-reasoner (synthetic)", "model_config_hash": "deadbeef",
            "ponder_revision": "synthetic", "created_unix": str(int(START)),
            "strategies": json.dumps(["pass@1", "pass@k", "maj@k", "weighted-maj@k", "budget"]),
            "samples": str(samples)}
    con.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    problems = []
    for lv in levels:
        for i in range(per_level):
            a, b = rng.randint(10, 999), rng.randint(10, 99)
            pid = f"arith-test-l{lv}-{i:04d}"
            problems.append((pid, lv, f"What is {a} * {b}?", str(a * b)))
    con.executemany("INSERT INTO problems VALUES (?, ?, ?, ?)", problems)
    difficulty = {p[0]: 0.9 * (p[1] - 3) + rng.gauss(0, 1.0) for p in problems}
    need = {p[0]: 60 * p[1] * math.exp(rng.gauss(0, 0.3)) for p in problems}

    point_id = 0
    clock = START
    run_no = 0
    for di, dep in enumerate(deployments):
        # The last of several deployments is run twice: killed part-way, then resumed.
        split = len(deployments) > 1 and di == len(deployments) - 1
        runs = []
        for part in ((0, 1) if split else (0,)):
            run_no += 1
            runs.append({"run_id": run_no, "killed": split and part == 0, "tokens": 0})
        cut = len(problems) // 3 if split else len(problems)   # problems done by the killed run
        prov_of = {}
        for r in runs:
            replicas = dep.get("replicas", 1) * dep.get("nodes", 1)
            r["prov"] = {
                "ponder_revision": "synthetic", "model_config_hash": "deadbeef",
                "served_model": "tiny-reasoner (synthetic)",
                "server_url": f"http://127.0.0.1:{8000 + r['run_id']}/v1",
                "server": {"id": "tiny-reasoner", "object": "model", "owned_by": "ponder",
                           "root": "models/tiny-reasoner", "max_model_len": 2048,
                           "ponder": {"server": {"model": "models/tiny-reasoner",
                                                 "dtype": "float32", "backend": "cpu",
                                                 "tp": dep.get("tp", 1), "pp": dep.get("pp", 1),
                                                 "replicas": replicas, "api_key_set": False}}},
                "model_files": {"config.json": "sha256:" + "ab" * 32,
                                "tokenizer.json": "sha256:" + "cd" * 32},
                "deployment": dep, "slurm_job_id": None, "slurm_job_nodelist": None,
                "target_slurm_job_id": str(4100 + r["run_id"]),
                "target_slurm_nodes": f"cn{r['run_id']:02d}"}
            prov_of[r["run_id"]] = r["prov"]
        for budget, ext in grid:
            point_id += 1
            params = {"temperature": 1.0, "top_p": 1.0, "max_tokens": MAX_TOKENS, "seed": 1,
                      "max_thinking_tokens": budget, "extend_thinking": ext,
                      "enable_thinking": True, **dep}
            key = json.dumps(params, sort_keys=True)
            prov = ({"replicas": 1, "backend": "cpu", "started_unix": int(START) + point_id}
                    if v1 else runs[-1]["prov"])
            con.execute("INSERT INTO points VALUES (?, ?, ?, ?)",
                        (point_id, key, json.dumps(params), json.dumps(prov)))
            rows = []
            for qi, (pid, lv, q, ans) in enumerate(problems):
                run = runs[0] if qi < cut else runs[-1]
                prompt = 12 + len(q) // 2
                cached = 0 if budget == grid[0][0] and ext == grid[0][1] else prompt - 4
                request = []
                for s in range(samples):
                    request.append(_sample(rng, point_id, pid, s, ans, prompt, cached, budget,
                                           ext, need[pid], difficulty[pid], failure_rate))
                ok = [r for r in request if r["status"] == "ok"]
                executed = 2 * PARAMS * ((prompt - cached) + sum(r["comp"] for r in ok))
                nominal_sum = sum(r["nominal"] for r in ok)
                comp_sum = sum(r["comp"] for r in ok)
                for r in request:
                    if r["status"] == "ok":
                        r["flops"] = (executed * r["comp"] / comp_sum if v1
                                      else executed * r["nominal"] / nominal_sum)
                        run["tokens"] += r["comp"]
                    row = [r[c] for c in ("key", "point_id", "pid", "s", "seed", "status",
                                          "error", "content", "reasoning", "extracted",
                                          "correct", "prompt", "cached", "comp", "reas",
                                          "answer", "flops", "finish", "lp", "latency",
                                          "attempts", "finished")]
                    if not v1:
                        row += [r["nominal"], run["run_id"]]
                    rows.append(row)
            con.executemany("INSERT INTO samples VALUES (" + ",".join("?" * len(rows[0])) + ")",
                            rows)
        if not v1:
            for r in runs:
                tok_s = 1500.0 * (dep.get("replicas", 1) * dep.get("nodes", 1)) ** 0.85 \
                    / max(1, dep.get("tp", 1)) ** 0.1
                wall = r["tokens"] / tok_s
                started = clock + 30.0        # the deployment's start-up is not in the run
                con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
                            (r["run_id"], json.dumps(dep), json.dumps(r["prov"]), started,
                             None if r["killed"] else started + wall))
                clock = started + wall + 5.0
    con.commit()
    con.close()
    return path


def _sample(rng, point_id, pid, s, ans, prompt, cached, budget, ext, need, difficulty,
            failure_rate) -> dict:
    r = {"key": f"{point_id}/{pid}/{s}", "point_id": point_id, "pid": pid, "s": s,
         "seed": 1000 + s, "prompt": prompt, "cached": cached, "finished": 1767230000,
         "error": None, "content": None, "reasoning": None, "extracted": None, "correct": None,
         "comp": None, "reas": None, "answer": None, "flops": None, "nominal": None,
         "finish": None, "lp": None, "latency": None}
    if rng.random() < failure_rate:
        r.update(status="failed", error="HTTP 503: replica unavailable after 3 attempts",
                 attempts=3)
        return r
    want = int(round(need * math.exp(rng.gauss(0, 0.25)) * (1.3 if ext else 1.0)))
    think = want if budget is None else min(want, budget)
    capped = budget is not None and want >= budget
    u = rng.random()
    closed, finish = True, "stop"
    if think + 1 >= MAX_TOKENS or (not capped and (u < 0.01 or (budget is None and u < 0.03))):
        # stops (or runs into max_tokens) inside the thinking block: no delimiter, no answer
        closed = False
        if think + 1 >= MAX_TOKENS or u >= 0.01:
            think, finish = MAX_TOKENS, "length"
        else:
            think = max(1, think // 2)
    ability = 2.0 * min(1.0, think / need) - 0.8 + 0.5 * ext
    p_ok = 1 / (1 + math.exp(-(ability * 2 - difficulty)))
    v = rng.random()
    if not closed:
        extracted, correct, answer_toks = None, 0, 0
    elif capped and v < 0.08:
        # after the forced delimiter the answer rambles to max_tokens: no final answer
        extracted, correct, finish = None, 0, "length"
        answer_toks = max(1, MAX_TOKENS - (think + 1))
    elif v < p_ok:
        extracted, correct, answer_toks = ans, 1, 8 + len(ans)
    elif v < p_ok + (1 - p_ok) * 0.1:
        extracted, correct, finish = None, 0, "length"
        answer_toks = max(1, MAX_TOKENS - (think + 1))
    else:
        extracted = str(int(ans) + rng.choice([1, -1, 10, 100, -10]))
        correct, answer_toks = 0, 8 + len(ans)
    reas = think + 1 if closed else think          # the delimiter is a thinking token
    comp = reas + answer_toks
    mean_lp = -0.25 if correct else -0.55
    content = ("" if not closed else
               f"\\boxed{{{extracted}}}" if extracted is not None else "...")
    r.update(status="ok", content=content, reasoning="working", extracted=extracted,
             correct=correct, comp=comp, reas=reas, answer=answer_toks,
             nominal=2 * PARAMS * (prompt + comp), finish=finish,
             lp=comp * (mean_lp + rng.gauss(0, 0.08)), latency=0.01 * comp, attempts=1)
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--problems-per-level", type=int, default=24)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--replicas", type=int, nargs="*", default=[1, 2],
                    help="the replicas axis (default 1 2; none: no deployment axis)")
    ap.add_argument("--schema", choices=("current", "v1"), default="current",
                    help="v1: a store of the first release (no runs table, no nominal_flops)")
    a = ap.parse_args(argv)
    print(make_db(a.out, per_level=a.problems_per_level, samples=a.samples, seed=a.seed,
                  deployments=[{"replicas": r} for r in a.replicas], schema=a.schema))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
