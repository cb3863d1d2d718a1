# A synthetic results.sqlite in the runner's schema, for the report's tests and for trying the
# report without a model: python3 -m experiments.report.synthetic OUT_DIR [--problems-per-level 24]
"""Synthetic sweep: levels 1..L, a max_thinking_tokens grid with a direct point (budget 0), one
extend_thinking point, N samples per problem, a few failed samples. Accuracy rises with the
thinking budget and falls with the level; wrong answers come from a few distractors per problem
so that votes split and tie."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sqlite3

from .data import SCHEMA

DEFAULT_GRID = ((0, 0), (32, 0), (128, 0), (512, 0), (None, 0), (128, 1))


def make_db(path: str, levels=(1, 2, 3, 4, 5), per_level: int = 24, samples: int = 16,
            grid=DEFAULT_GRID, seed: int = 7, failure_rate: float = 0.02) -> str:
    """Writes path (a directory gets results.sqlite inside); returns the database path."""
    if os.path.isdir(path) or not path.endswith(".sqlite"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, "results.sqlite")
    if os.path.exists(path):
        os.remove(path)
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    spec = ("name: synthetic\nmodel: models/tiny-reasoner\nsamples: %d\n"
            "grid:\n  max_thinking_tokens: [0, 32, 128, 512, null]\n" % samples)
    meta = {"spec_yaml": spec, "spec_hash": hashlib.sha256(spec.encode()).hexdigest()[:16],
            "served_model": "tiny-reasoner (synthetic)", "model_config_hash": "deadbeef",
            "ponder_revision": "synthetic", "created_unix": "1767225600",
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
    for point_id, (budget, ext) in enumerate(grid, start=1):
        params = {"temperature": 1.0, "top_p": 1.0, "max_tokens": 960, "seed": 1,
                  "max_thinking_tokens": budget, "extend_thinking": ext, "enable_thinking": True}
        key = json.dumps(params, sort_keys=True)
        prov = {"replicas": 1, "backend": "cpu", "started_unix": 1767225600 + point_id}
        con.execute("INSERT INTO points VALUES (?, ?, ?, ?)",
                    (point_id, key, json.dumps(params), json.dumps(prov)))
        rows = []
        for pid, lv, q, ans in problems:
            prompt = 12 + len(q) // 2
            cached = 0 if point_id == 1 else prompt - 4
            for s in range(samples):
                skey = f"{point_id}/{pid}/{s}"
                if rng.random() < failure_rate:
                    rows.append((skey, point_id, pid, s, 1000 + s, "failed",
                                 "HTTP 503: replica unavailable after 3 attempts", None, None,
                                 None, None, prompt, cached, None, None, None, None, None, None,
                                 None, 3, 1767230000))
                    continue
                want = need[pid] * math.exp(rng.gauss(0, 0.25)) * (1.3 if ext else 1.0)
                think = want if budget is None else min(want, budget * (1.5 if ext else 1.0))
                think = int(round(think))
                ability = 2.0 * min(1.0, think / need[pid]) - 0.8 + 0.5 * ext
                p_ok = 1 / (1 + math.exp(-(ability * 2 - difficulty[pid])))
                r = rng.random()
                finish = "stop"
                if r < p_ok:
                    extracted, correct = ans, 1
                elif r < p_ok + (1 - p_ok) * 0.1:
                    extracted, correct, finish = None, 0, "length"
                else:
                    extracted = str(int(ans) + rng.choice([1, -1, 10, 100, -10]))
                    correct = 0
                answer_toks = 8 + len(ans)
                comp = think + answer_toks
                mean_lp = -0.25 if correct else -0.55
                lp = comp * (mean_lp + rng.gauss(0, 0.08))
                content = f"\\boxed{{{extracted}}}" if extracted is not None else "..."
                rows.append((skey, point_id, pid, s, 1000 + s, "ok", None, content, "working",
                             extracted, correct, prompt, cached, comp, think, answer_toks,
                             2 * 2.5e6 * (comp + prompt / samples), finish, lp,
                             0.01 * comp, 1, 1767230000))
        con.executemany("INSERT INTO samples VALUES (" + ",".join("?" * 22) + ")", rows)
    con.commit()
    con.close()
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--problems-per-level", type=int, default=24)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    print(make_db(a.out, per_level=a.problems_per_level, samples=a.samples, seed=a.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
