# End-to-end tests of the sweep report (python3 -m experiments.report) on synthetic
# results.sqlite files in the runner's schema: the files it writes, and the numbers in
# report.md / tables/*.csv recomputed straight from the database with plain SQL and the formulas
# the report states. /usr/bin/python3 with Debian's python3-numpy and python3-matplotlib.
#
#   /usr/bin/python3 -m unittest tests/experiments/test_report.py   (from the repository root)

import csv
import itertools
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from experiments.report import synthetic  # noqa: E402
from experiments.report.data import SCHEMA  # noqa: E402

SEED = 5
RESAMPLES = 1000


def run_report(run_dir, *extra):
    cmd = [sys.executable, "-m", "experiments.report", run_dir, "--seed", str(SEED),
           "--resamples", str(RESAMPLES), *extra]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{r.stdout}\n{r.stderr}")
    return r


def read_csv(run_dir, name):
    with open(os.path.join(run_dir, "tables", name + ".csv")) as f:
        return list(csv.DictReader(f))


def fnum(s):
    return float("nan") if s == "" else float(s)


# ---- the stated formulas, from SQL rows only ----------------------------------------------

def sql_rows(con, point_id, problem_id):
    return con.execute(
        "SELECT status, extracted, correct, logprob_sum, completion_tokens FROM samples "
        "WHERE point_id = ? AND problem_id = ? ORDER BY sample_index",
        (point_id, problem_id)).fetchall()


def vote(rows, weighted):
    """The report's stated vote over explicit rows (failed / no answer: no vote)."""
    tally = {}
    for status, ext, _, lp, ct in rows:
        if status != "ok" or ext is None or not ext.strip():
            continue
        cnt, lps, w = tally.get(ext, (0, 0.0, 0.0))
        lps += -math.inf if lp is None else lp
        w += math.exp(lp / ct) if lp is not None and ct else 0.0
        tally[ext] = (cnt + 1, lps, w)
    if not tally:
        return None
    if weighted:
        return min(tally, key=lambda a: (-tally[a][2], -tally[a][0], a))
    return min(tally, key=lambda a: (-tally[a][0], -tally[a][1], a))


def right_answers(rows):
    return {ext for status, ext, correct, _, _ in rows if status == "ok" and correct == 1}


def vote_score(rows, k, weighted, seed, max_subsets=200):
    n = len(rows)
    if math.comb(n, k) <= max_subsets:
        subsets = list(itertools.combinations(range(n), k))
    else:   # the stated draw
        subsets = np.random.default_rng([seed, n, k]).permuted(
            np.tile(np.arange(n), (max_subsets, 1)), axis=1)[:, :k].tolist()
    right = right_answers(rows)
    wins = [vote([rows[i] for i in S], weighted) for S in subsets]
    return sum(w is not None and w in right for w in wins) / len(subsets)


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = os.path.join(cls.tmp.name, "run")
        cls.db = synthetic.make_db(cls.dir, levels=(1, 2, 3, 4), per_level=20, samples=16)
        cls.proc = run_report(cls.dir)
        with open(os.path.join(cls.dir, "report.md")) as f:
            cls.md = f.read()
        cls.con = sqlite3.connect(cls.db)

    @classmethod
    def tearDownClass(cls):
        cls.con.close()
        cls.tmp.cleanup()

    def points(self):
        return [r[0] for r in self.con.execute("SELECT point_id FROM points ORDER BY point_id")]

    def problems(self, level=None):
        q = "SELECT problem_id FROM problems" + ("" if level is None else " WHERE level = ?")
        return [r[0] for r in self.con.execute(q + " ORDER BY problem_id",
                                               () if level is None else (level,))]

    def test_files(self):
        for name in ("accuracy_vs_k", "accuracy_vs_flops", "budget", "coverage", "levels"):
            path = os.path.join(self.dir, "plots", name + ".png")
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", path)
            self.assertIn(f"](plots/{name}.png)", self.md)
        for name in ("points", "accuracy", "accuracy_by_k", "differences", "levels", "budget",
                     "within_budget", "compute", "multiplier", "coverage"):
            self.assertTrue(read_csv(self.dir, name), name)
            self.assertIn(f"(tables/{name}.csv)", self.md)
        for text in ("## Method", "1 − C(n−c, k) / C(n, k)", "exp(logprob_sum / completion_tokens)",
                     f"seed\n{SEED}", f"B = {RESAMPLES}", "log(−log c)", "## Spec",
                     "## Provenance", "fewer than 100 problems", "failed sample(s)",
                     "grid:", '"backend": "cpu"'):
            self.assertIn(text, self.md)

    def test_reproducible(self):
        with tempfile.TemporaryDirectory() as out:
            run_report(self.dir, "--out", out, "--no-plots")
            for name in ("accuracy_by_k", "differences", "coverage"):
                self.assertEqual(read_csv(out, name), read_csv(self.dir, name), name)

    def test_pass_at_1_and_k_from_sql(self):
        acc = {int(r["point"]): r for r in read_csv(self.dir, "accuracy")}
        for pid in self.points():
            # pass@1 = mean over problems of (correct rows / all rows), failed rows wrong
            (p1,) = self.con.execute(
                "SELECT AVG(p) FROM (SELECT AVG(CASE WHEN status = 'ok' AND correct = 1 "
                "THEN 1.0 ELSE 0.0 END) AS p FROM samples WHERE point_id = ? "
                "GROUP BY problem_id)", (pid,)).fetchone()
            self.assertAlmostEqual(fnum(acc[pid]["pass@1"]), p1, places=12)
            # pass@16 = mean over problems of 1 - C(n-c, 16) / C(n, 16)
            vals = [1 - math.comb(n - c, 16) / math.comb(n, 16) for n, c in self.con.execute(
                "SELECT COUNT(*), SUM(status = 'ok' AND correct = 1) FROM samples "
                "WHERE point_id = ? GROUP BY problem_id", (pid,))]
            self.assertAlmostEqual(fnum(acc[pid]["pass@16"]), sum(vals) / len(vals), places=12)
            # the rounded Markdown cell
            row = next(l for l in self.md.splitlines() if l.startswith(f"| {pid} | #{pid} "))
            self.assertIn(f"| {100 * p1:.1f} [", row)

    def test_votes_from_sql(self):
        byk = read_csv(self.dir, "accuracy_by_k")
        get = {(r["cell"], int(r["point"]), int(r["k"])): r for r in byk}
        for pid in (1, 3):
            for k in (16, 4, 1):     # k = 16, 1 exact; k = 4: 200 of the C(16, 4) subsets
                m = w = 0.0
                probs = self.problems()
                for prob in probs:
                    rows = sql_rows(self.con, pid, prob)
                    m += vote_score(rows, k, False, SEED)
                    w += vote_score(rows, k, True, SEED)
                r = get[("all", pid, k)]
                self.assertAlmostEqual(fnum(r["maj@k"]), m / len(probs), places=12)
                self.assertAlmostEqual(fnum(r["wmaj@k"]), w / len(probs), places=12)

    def test_levels_and_bootstrap_from_sql(self):
        lv = {(r["level"], int(r["point"])): r for r in read_csv(self.dir, "levels")}
        for level in (1, 4):
            probs = self.problems(level)
            x = []
            for prob in probs:
                (p,) = self.con.execute(
                    "SELECT AVG(CASE WHEN status = 'ok' AND correct = 1 THEN 1.0 ELSE 0.0 END) "
                    "FROM samples WHERE point_id = 2 AND problem_id = ?", (prob,)).fetchone()
                x.append(p)
            x = np.array(x)
            r = lv[(f"level {level}", 2)]
            self.assertAlmostEqual(fnum(r["pass@1"]), x.mean(), places=12)
            # the stated bootstrap: default_rng([seed, cell_no]), cell_no = level order (1-based)
            rng = np.random.default_rng([SEED, level])
            means = x[rng.integers(0, len(x), size=(RESAMPLES, len(x)))].mean(axis=1)
            lo, hi = np.percentile(means, [2.5, 97.5])
            self.assertAlmostEqual(fnum(r["pass@1_lo"]), lo, places=9)
            self.assertAlmostEqual(fnum(r["pass@1_hi"]), hi, places=9)

    def test_paired_difference_from_sql(self):
        d = {(r["cell"], int(r["point"]), int(r["k"])): r for r in read_csv(self.dir, "differences")}
        probs = self.problems()
        p1 = np.array([self.con.execute(
            "SELECT AVG(CASE WHEN status = 'ok' AND correct = 1 THEN 1.0 ELSE 0.0 END) "
            "FROM samples WHERE point_id = 4 AND problem_id = ?", (p,)).fetchone()[0]
            for p in probs])
        maj = np.array([vote_score(sql_rows(self.con, 4, p), 16, False, SEED) for p in probs])
        rng = np.random.default_rng([SEED, 0])
        idx = rng.integers(0, len(probs), size=(RESAMPLES, len(probs)))
        diff = maj[idx].mean(axis=1) - p1[idx].mean(axis=1)
        lo, hi = np.percentile(diff, [2.5, 97.5])
        r = d[("all", 4, 16)]
        self.assertAlmostEqual(fnum(r["maj@k − pass@1"]), maj.mean() - p1.mean(), places=12)
        self.assertAlmostEqual(fnum(r["maj@k − pass@1_lo"]), lo, places=9)
        self.assertAlmostEqual(fnum(r["maj@k − pass@1_hi"]), hi, places=9)

    def test_compute_from_sql(self):
        comp = {int(r["point"]): r for r in read_csv(self.dir, "compute")}
        pts = {int(r["point"]): r for r in read_csv(self.dir, "points")}
        for pid in self.points():
            # prompt / cached tokens once per request (point, problem)
            (prompt, cached) = self.con.execute(
                "SELECT SUM(p), SUM(c) FROM (SELECT MAX(prompt_tokens) AS p, "
                "MAX(cached_tokens) AS c FROM samples WHERE point_id = ? GROUP BY problem_id)",
                (pid,)).fetchone()
            think, ans, flops, rows, failed = self.con.execute(
                "SELECT TOTAL(reasoning_tokens), TOTAL(answer_tokens), TOTAL(flops), COUNT(*), "
                "SUM(status = 'failed') FROM samples WHERE point_id = ?", (pid,)).fetchone()
            c = comp[pid]
            self.assertEqual(int(c["prompt tokens"]), prompt)
            self.assertEqual(int(c["cached tokens"]), cached)
            self.assertEqual(float(c["thinking tokens"]), think)
            self.assertEqual(float(c["answer tokens"]), ans)
            self.assertAlmostEqual(float(c["FLOPs"]) / flops, 1.0, places=12)
            self.assertEqual(int(pts[pid]["failed"]), failed)
            self.assertGreater(failed, 0)
        # the multiplier: k * (FLOPs / rows at the point) / (FLOPs / rows at the direct point)
        per_row = dict(self.con.execute(
            "SELECT point_id, TOTAL(flops) / COUNT(flops) FROM samples GROUP BY point_id"))
        direct = [pid for pid, params in self.con.execute("SELECT point_id, params_json FROM points")
                  if json.loads(params).get("max_thinking_tokens") == 0]
        self.assertEqual(direct, [1])
        for r in read_csv(self.dir, "multiplier"):
            pid, k = int(r["point"]), int(r["k"])
            self.assertEqual(int(r["direct point"]), 1)
            self.assertAlmostEqual(fnum(r["× direct (FLOPs)"]), k * per_row[pid] / per_row[1],
                                   places=9)

    def test_within_budget_from_sql(self):
        wb = {int(r["point"]): r for r in read_csv(self.dir, "within_budget")}
        for pid, params in self.con.execute("SELECT point_id, params_json FROM points"):
            budget = json.loads(params)["max_thinking_tokens"]
            if budget is None:
                self.assertNotIn(pid, wb)
                continue
            (share,) = self.con.execute(
                "SELECT AVG(reasoning_tokens <= ?) FROM samples WHERE point_id = ? "
                "AND status = 'ok'", (budget, pid)).fetchone()
            self.assertAlmostEqual(fnum(wb[pid]["within budget %"]), share, places=12)

    def test_coverage_fit_from_csv(self):
        byk = read_csv(self.dir, "accuracy_by_k")
        for r in read_csv(self.dir, "coverage"):
            if r["cell"] != "all" or r["a"] == "":
                continue
            pid = int(r["point"])
            ks = [int(k) for k in r["k fitted"].split()]
            c = [fnum(next(x["pass@k"] for x in byk if x["cell"] == "all" and
                           int(x["point"]) == pid and int(x["k"]) == k)) for k in ks]
            slope, icept = np.polyfit(np.log(ks), np.log(-np.log(c)), 1)
            self.assertAlmostEqual(fnum(r["a"]), -math.exp(icept), places=9)
            self.assertAlmostEqual(fnum(r["b"]), -slope, places=9)


class SmallRuns(unittest.TestCase):
    def make(self, path, points, problems, rows, samples):
        con = sqlite3.connect(path)
        con.executescript(SCHEMA)
        con.executemany("INSERT INTO meta VALUES (?, ?)", {
            "spec_yaml": "name: tiny\n", "spec_hash": "x", "served_model": "m",
            "model_config_hash": "y", "ponder_revision": "r", "created_unix": "0",
            "strategies": json.dumps(["pass@1", "pass@k", "maj@k", "weighted-maj@k", "budget"]),
            "samples": str(samples)}.items())
        con.executemany("INSERT INTO points VALUES (?, ?, ?, ?)",
                        [(i, f"p{i}", json.dumps(p), None) for i, p in points])
        con.executemany("INSERT INTO problems VALUES (?, ?, ?, ?)", problems)
        con.executemany("INSERT INTO samples (sample_key, point_id, problem_id, sample_index, "
                        "status, extracted, correct, prompt_tokens, completion_tokens, "
                        "reasoning_tokens, answer_tokens, flops, finish_reason, logprob_sum) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.commit()
        con.close()

    def test_single_problem_no_direct_point(self):
        with tempfile.TemporaryDirectory() as d:
            params = {"temperature": 1.0, "max_thinking_tokens": None, "enable_thinking": True}
            ans = ["12", "12", "13", None]
            rows = [(f"k{i}", 1, "q1", i, "ok" if a else "failed", a,
                     None if a is None else int(a == "12"), 10, 20, 15, 5, 1e6, "stop", -3.0)
                    for i, a in enumerate(ans)]
            self.make(os.path.join(d, "results.sqlite"), [(1, params)],
                      [("q1", 2, "What is 3 * 4?", "12")], rows, 4)
            run_report(d)
            acc = read_csv(d, "accuracy")[0]
            self.assertAlmostEqual(float(acc["pass@1"]), 0.5)
            self.assertEqual(float(acc["pass@1_lo"]), 0.5)   # one problem: no spread
            self.assertEqual(float(acc["maj@4"]), 1.0)
            self.assertEqual(float(acc["pass@4"]), 1.0)
            with open(os.path.join(d, "report.md")) as f:
                md = f.read()
            self.assertIn("no direct-answer point in this sweep", md)
            self.assertEqual(int(read_csv(d, "points")[0]["failed"]), 1)


if __name__ == "__main__":
    unittest.main()
