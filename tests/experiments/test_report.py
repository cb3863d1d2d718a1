# End-to-end tests of the sweep report (python3 -m experiments.report) on synthetic
# results.sqlite files in the runner's schema (the current one: runs table, nominal_flops, run_id,
# a replicas axis; and the first release's, without them): the files it writes, and the numbers
# in report.md / tables/*.csv recomputed straight from the database with plain SQL and the
# formulas the report states. /usr/bin/python3 with Debian's python3-numpy and python3-matplotlib.
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


# Thinking tokens before </think>, as the report states it: reasoning_tokens − 1 when the block
# closed (answer_tokens > 0 or content non-empty), else reasoning_tokens.
T_SQL = ("(CASE WHEN answer_tokens > 0 OR (content IS NOT NULL AND content != '') "
         "THEN reasoning_tokens - 1 ELSE reasoning_tokens END)")


def budget_shares_from_sql(con, point_id, budget):
    """(within, reached, reached with answer, reached accuracy, reached count) over ok rows."""
    n, within, reached, answered, right = con.execute(
        f"SELECT COUNT(*), TOTAL({T_SQL} <= :b), TOTAL({T_SQL} = :b), "
        f"TOTAL({T_SQL} = :b AND extracted IS NOT NULL AND TRIM(extracted) != ''), "
        f"TOTAL({T_SQL} = :b AND correct = 1) FROM samples "
        "WHERE point_id = :p AND status = 'ok'", {"b": budget, "p": point_id}).fetchone()
    nan = float("nan")
    return (within / n, reached / n, answered / reached if reached else nan,
            right / reached if reached else nan, int(reached))


def assert_close_or_blank(tc, csv_value, want, places=12):
    if isinstance(want, float) and math.isnan(want):
        tc.assertEqual(csv_value, "")
    else:
        tc.assertAlmostEqual(fnum(csv_value), want, places=places)


def check_within_budget(tc, con, run_dir):
    wb = {int(r["point"]): r for r in read_csv(run_dir, "within_budget")}
    seen = 0
    for pid, params in con.execute("SELECT point_id, params_json FROM points"):
        budget = json.loads(params)["max_thinking_tokens"]
        if budget is None:
            tc.assertNotIn(pid, wb)
            continue
        within, reached, answered, acc, nreached = budget_shares_from_sql(con, pid, budget)
        r = wb[pid]
        tc.assertAlmostEqual(fnum(r["within budget %"]), within, places=12)
        tc.assertAlmostEqual(fnum(r["reached budget %"]), reached, places=12)
        tc.assertEqual(int(r["reached budget"]), nreached)
        assert_close_or_blank(tc, r["reached: with answer %"], answered)
        assert_close_or_blank(tc, r["reached: accuracy %"], acc)
        seen += 1
    return wb, seen


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
        for name in ("accuracy_vs_k", "accuracy_vs_flops", "budget", "coverage", "levels",
                     "throughput"):
            path = os.path.join(self.dir, "plots", name + ".png")
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", path)
            self.assertIn(f"](plots/{name}.png)", self.md)
        for name in ("points", "accuracy", "accuracy_by_k", "differences", "levels", "budget",
                     "within_budget", "compute", "multiplier", "coverage", "deployments"):
            self.assertTrue(read_csv(self.dir, name), name)
            self.assertIn(f"(tables/{name}.csv)", self.md)
        for text in ("## Method", "1 − C(n−c, k) / C(n, k)", "exp(logprob_sum / completion_tokens)",
                     f"seed\n{SEED}", f"B = {RESAMPLES}", "log(−log c)", "## Spec",
                     "## Provenance", "fewer than 100 problems", "failed sample(s)",
                     "grid:", '"backend": "cpu"', "## Deployments",
                     "Σ `flops` / Σ `nominal_flops` over the rows that have\nboth",
                     "T = `reasoning_tokens` − 1 when the block closed",
                     "assumed one token", "Σ (`finished_at` − `started_at`)",
                     "have no finished_at (killed)", "reached the thinking budget without a final",
                     "#7 think 0 replicas=2", "Runs (`runs` table)"):
            self.assertIn(text, self.md)

    def test_reproducible(self):
        with tempfile.TemporaryDirectory() as out:
            run_report(self.dir, "--out", out, "--no-plots")
            for name in ("accuracy_by_k", "differences", "coverage", "compute", "within_budget",
                         "deployments"):
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
            self.assertAlmostEqual(float(c["executed FLOPs"]) / flops, 1.0, places=12)
            self.assertEqual(int(pts[pid]["failed"]), failed)
            self.assertGreater(failed, 0)
        # the multiplier: k * (FLOPs / rows at the point) / (FLOPs / rows at the direct point)
        per_row = dict(self.con.execute(
            "SELECT point_id, TOTAL(flops) / COUNT(flops) FROM samples GROUP BY point_id"))
        nominal_row = dict(self.con.execute(
            "SELECT point_id, TOTAL(nominal_flops) / COUNT(nominal_flops) FROM samples "
            "GROUP BY point_id"))
        params = {pid: json.loads(p) for pid, p in
                  self.con.execute("SELECT point_id, params_json FROM points")}
        direct = [pid for pid in sorted(params) if params[pid].get("max_thinking_tokens") == 0]
        self.assertEqual(direct, [1, 7])
        # the direct point of a point: the one sharing its other parameters (here: replicas)
        direct_of = {pid: next(d for d in direct
                               if params[d]["replicas"] == params[pid]["replicas"])
                     for pid in params}
        for r in read_csv(self.dir, "multiplier"):
            pid, k = int(r["point"]), int(r["k"])
            d = direct_of[pid]
            self.assertEqual(int(r["direct point"]), d)
            self.assertAlmostEqual(fnum(r["× direct (FLOPs)"]), k * per_row[pid] / per_row[d],
                                   places=9)
            self.assertAlmostEqual(fnum(r["× direct (nominal FLOPs)"]),
                                   k * nominal_row[pid] / nominal_row[d], places=9)
            self.assertAlmostEqual(fnum(r["executed FLOPs / problem"]) / (k * per_row[pid]), 1,
                                   places=12)
            self.assertAlmostEqual(fnum(r["nominal FLOPs / problem"]) / (k * nominal_row[pid]),
                                   1, places=12)

    def test_within_budget_from_sql(self):
        wb, seen = check_within_budget(self, self.con, self.dir)
        self.assertEqual(seen, 10)
        # the synthetic store has capped samples with and without a final answer, and the
        # engine's accounting: a capped sample has reasoning_tokens = budget + 1, within budget
        (capped_raw,) = self.con.execute(
            "SELECT COUNT(*) FROM samples s JOIN points p USING (point_id) WHERE s.status = 'ok' "
            "AND s.reasoning_tokens = json_extract(p.params_json, '$.max_thinking_tokens') + 1"
            ).fetchone()
        self.assertGreater(capped_raw, 0)
        self.assertTrue(all(fnum(r["within budget %"]) == 1.0 for r in wb.values()))
        answers = [fnum(r["reached: with answer %"]) for r in wb.values()]
        self.assertTrue(all(a > 0 for a in answers) and any(a < 1 for a in answers), answers)
        (unclosed,) = self.con.execute(
            "SELECT COUNT(*) FROM samples WHERE status = 'ok' AND answer_tokens = 0 "
            "AND content = ''").fetchone()
        self.assertGreater(unclosed, 0)

    def test_flops_from_sql(self):
        comp = {int(r["point"]): r for r in read_csv(self.dir, "compute")}
        for pid in self.points():
            executed, nominal, ex_both, nom_both, rows_n = self.con.execute(
                "SELECT TOTAL(flops), TOTAL(nominal_flops), "
                "TOTAL(CASE WHEN nominal_flops IS NOT NULL THEN flops END), "
                "TOTAL(CASE WHEN flops IS NOT NULL THEN nominal_flops END), COUNT(nominal_flops) "
                "FROM samples WHERE point_id = ?", (pid,)).fetchone()
            c = comp[pid]
            self.assertAlmostEqual(fnum(c["executed FLOPs"]) / executed, 1, places=12)
            self.assertAlmostEqual(fnum(c["nominal FLOPs"]) / nominal, 1, places=12)
            self.assertAlmostEqual(fnum(c["executed / nominal"]), ex_both / nom_both, places=12)
            self.assertAlmostEqual(fnum(c["nominal FLOPs / sample"]) / (nominal / rows_n), 1,
                                   places=12)
            self.assertLess(ex_both / nom_both, 1.0)    # the shared prompt runs once
        # per request, executed FLOPs split in proportion to nominal: flops / nominal constant
        (spread,) = self.con.execute(
            "SELECT MAX(r) - MIN(r) FROM (SELECT MAX(flops / nominal_flops) - "
            "MIN(flops / nominal_flops) AS r FROM samples WHERE status = 'ok' "
            "GROUP BY point_id, problem_id)").fetchone()
        self.assertLess(spread, 1e-12)

    def test_deployments_from_sql(self):
        deps = read_csv(self.dir, "deployments")
        groups = {}
        for rid, dep, prov, t0, t1 in self.con.execute(
                "SELECT run_id, deployment_json, provenance_json, started_at, finished_at "
                "FROM runs ORDER BY run_id"):
            srv = json.loads(prov)["server"]["ponder"]["server"]
            key = (json.dumps(json.loads(dep), sort_keys=True, separators=(",", ":")),
                   srv["tp"], srv["pp"], srv["replicas"], srv["backend"], srv["dtype"])
            groups.setdefault(key, []).append((rid, t0, t1, json.loads(prov)))
        self.assertEqual(len(groups), 2)
        self.assertEqual(len(deps), 2)
        for (dep, tp, pp, replicas, backend, dtype), runs in groups.items():
            row = next(r for r in deps if r["deployment"] == dep)
            done = [rid for rid, t0, t1, _ in runs if t1 is not None]
            killed = [rid for rid, t0, t1, _ in runs if t1 is None]
            wall = sum(t1 - t0 for _, t0, t1, _ in runs if t1 is not None)
            q = ("SELECT COUNT(*), TOTAL(completion_tokens) FROM samples WHERE status = 'ok' "
                 "AND run_id IN (%s)")
            ok, tokens = self.con.execute(q % ",".join(map(str, done))).fetchone()
            (ok_killed,) = self.con.execute(
                q % ",".join(map(str, killed or [-1]))).fetchone()[:1]
            self.assertEqual(row["run ids"], " ".join(str(r[0]) for r in runs))
            self.assertEqual(int(row["runs"]), len(runs))
            self.assertEqual(int(row["unfinished runs"]), len(killed))
            self.assertEqual(int(row["replicas"]), json.loads(dep)["replicas"])
            self.assertEqual(int(row["server replicas"]), replicas)
            self.assertEqual(row["server backend"], backend)
            self.assertAlmostEqual(fnum(row["wall s"]), wall, places=6)
            self.assertEqual(int(row["ok samples"]), ok)
            self.assertEqual(float(row["completion tokens"]), tokens)
            self.assertAlmostEqual(fnum(row["completion tokens/s"]), tokens / wall, places=6)
            self.assertAlmostEqual(fnum(row["samples/s"]), ok / wall, places=9)
            self.assertEqual(int(row["ok samples, unfinished runs"]), ok_killed)
            self.assertEqual(row["Slurm job ids"],
                             " ".join(p["target_slurm_job_id"] for *_, p in runs))
            # the rounded Markdown row
            md_row = next(l for l in self.md.splitlines() if l.startswith(f"| {dep} |"))
            self.assertIn(f"| {tokens / wall:.4g} |", md_row)
        # every ok row of the store is in exactly one run, killed or not
        (orphans,) = self.con.execute("SELECT COUNT(*) FROM samples WHERE run_id IS NULL "
                                      "OR run_id NOT IN (SELECT run_id FROM runs)").fetchone()
        self.assertEqual(orphans, 0)

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


class OldStore(unittest.TestCase):
    """A store of the first release: no runs table, no samples.nominal_flops / run_id."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = os.path.join(cls.tmp.name, "run")
        cls.db = synthetic.make_db(cls.dir, levels=(1, 2), per_level=12, samples=8,
                                   schema="v1")
        cls.con = sqlite3.connect(cls.db)
        run_report(cls.dir)
        with open(os.path.join(cls.dir, "report.md")) as f:
            cls.md = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.con.close()
        cls.tmp.cleanup()

    def test_schema_is_old(self):
        cols = {r[1] for r in self.con.execute("PRAGMA table_info(samples)")}
        self.assertNotIn("nominal_flops", cols)
        self.assertNotIn("run_id", cols)
        self.assertIsNone(self.con.execute(
            "SELECT name FROM sqlite_master WHERE name = 'runs'").fetchone())

    def test_report_without_runs_and_nominal(self):
        self.assertFalse(os.path.exists(os.path.join(self.dir, "tables", "deployments.csv")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "plots", "throughput.png")))
        self.assertNotIn("## Deployments", self.md)
        self.assertIn("no samples.nominal_flops column", self.md)
        comp = {int(r["point"]): r for r in read_csv(self.dir, "compute")}
        for pid, flops in self.con.execute(
                "SELECT point_id, TOTAL(flops) FROM samples GROUP BY point_id"):
            self.assertAlmostEqual(fnum(comp[pid]["executed FLOPs"]) / flops, 1, places=12)
            self.assertEqual(comp[pid]["nominal FLOPs"], "")
            self.assertEqual(comp[pid]["executed / nominal"], "")
        for r in read_csv(self.dir, "multiplier"):
            self.assertEqual(r["× direct (nominal FLOPs)"], "")
            self.assertNotEqual(r["× direct (FLOPs)"], "")

    def test_within_budget_from_sql(self):
        _, seen = check_within_budget(self, self.con, self.dir)
        self.assertEqual(seen, 5)


class SmallRuns(unittest.TestCase):
    def make_current(self, path, params, samples, runs, n_declared):
        """A store in the current schema: samples and runs as lists of dicts."""
        con = sqlite3.connect(path)
        con.executescript(SCHEMA)
        con.executemany("INSERT INTO meta VALUES (?, ?)", {
            "spec_yaml": "name: tiny\n", "samples": str(n_declared),
            "strategies": json.dumps(["pass@1", "pass@k", "maj@k", "weighted-maj@k",
                                      "budget"])}.items())
        con.execute("INSERT INTO points VALUES (1, 'p1', ?, NULL)", (json.dumps(params),))
        con.execute("INSERT INTO problems VALUES ('q1', 1, 'What is 3 * 4?', '12')")
        for i, r in enumerate(samples):
            r = {"sample_key": f"k{i}", "point_id": 1, "problem_id": "q1", "sample_index": i,
                 **r}
            con.execute(f"INSERT INTO samples ({', '.join(r)}) VALUES "
                        f"({', '.join('?' * len(r))})", list(r.values()))
        for r in runs:
            con.execute(f"INSERT INTO runs ({', '.join(r)}) VALUES ({', '.join('?' * len(r))})",
                        list(r.values()))
        con.commit()
        con.close()

    def test_budget_edge_cases_and_a_killed_run(self):
        """Budget 4: capped with and without an answer, under, unclosed, over budget; one run
        finished, one killed, one row without run_id; a server that is not ponder."""
        ok = {"status": "ok", "finish_reason": "stop", "logprob_sum": -1.0, "prompt_tokens": 10}
        rows = [
            # capped (T = 5 - 1 = 4), with the answer, right
            dict(ok, reasoning_tokens=5, answer_tokens=3, completion_tokens=8,
                 content="\\boxed{12}", extracted="12", correct=1, flops=8.0,
                 nominal_flops=10.0, run_id=1),
            # capped, rambles to max_tokens: no answer
            dict(ok, reasoning_tokens=5, answer_tokens=10, completion_tokens=15, content="...",
                 extracted=None, correct=0, finish_reason="length", flops=12.0,
                 nominal_flops=15.0, run_id=1),
            # closed under the budget (T = 2)
            dict(ok, reasoning_tokens=3, answer_tokens=2, completion_tokens=5,
                 content="\\boxed{13}", extracted="13", correct=0, flops=4.0,
                 nominal_flops=5.0, run_id=1),
            # never closed (T = 3): answer_tokens 0, content ''
            dict(ok, reasoning_tokens=3, answer_tokens=0, completion_tokens=3, content="",
                 extracted=None, correct=0, flops=2.0, nominal_flops=3.0, run_id=2),
            # over the budget (T = 6)
            dict(ok, reasoning_tokens=7, answer_tokens=2, completion_tokens=9,
                 content="\\boxed{12}", extracted="12", correct=1, flops=7.0,
                 nominal_flops=None, run_id=2),
            # closed (content) with answer_tokens NULL: T = 4, capped, right
            dict(ok, reasoning_tokens=5, answer_tokens=None, completion_tokens=7,
                 content="\\boxed{12}", extracted="12", correct=1, flops=5.0,
                 nominal_flops=7.0, run_id=None),
            {"status": "failed", "error": "HTTP 503", "run_id": 2},
        ]
        prov = {"server_url": "http://x/v1", "server": {"id": "m", "owned_by": "vllm"}}
        runs = [{"run_id": 1, "deployment_json": "{}", "provenance_json": json.dumps(prov),
                 "started_at": 100.0, "finished_at": 160.0},
                {"run_id": 2, "deployment_json": "{}", "provenance_json": json.dumps(prov),
                 "started_at": 200.0, "finished_at": None}]
        params = {"temperature": 1.0, "max_thinking_tokens": 4, "enable_thinking": True}
        with tempfile.TemporaryDirectory() as d:
            db = os.path.join(d, "results.sqlite")
            self.make_current(db, params, rows, runs, 7)
            run_report(d)
            wb = read_csv(d, "within_budget")[0]
            self.assertAlmostEqual(float(wb["within budget %"]), 5 / 6)
            self.assertEqual(int(wb["reached budget"]), 3)
            self.assertAlmostEqual(float(wb["reached budget %"]), 3 / 6)
            self.assertAlmostEqual(float(wb["reached: with answer %"]), 2 / 3)
            self.assertAlmostEqual(float(wb["reached: accuracy %"]), 2 / 3)
            self.assertEqual(float(wb["max thinking before </think>"]), 6)
            with sqlite3.connect(db) as con:
                self.assertEqual(budget_shares_from_sql(con, 1, 4),
                                 (5 / 6, 3 / 6, 2 / 3, 2 / 3, 3))
            comp = read_csv(d, "compute")[0]
            self.assertEqual(float(comp["executed FLOPs"]), 38.0)
            self.assertEqual(float(comp["nominal FLOPs"]), 40.0)
            self.assertAlmostEqual(float(comp["executed / nominal"]), 31.0 / 40.0)
            self.assertAlmostEqual(float(comp["nominal FLOPs / sample"]), 40.0 / 5)
            dep = read_csv(d, "deployments")
            self.assertEqual(len(dep), 1)
            dep = dep[0]
            self.assertEqual(dep["deployment"], "{}")
            self.assertEqual(dep["server tp"], "")
            self.assertEqual(dep["run ids"], "1 2")
            self.assertEqual(int(dep["unfinished runs"]), 1)
            self.assertEqual(float(dep["wall s"]), 60.0)
            self.assertEqual(int(dep["ok samples"]), 3)
            self.assertEqual(float(dep["completion tokens"]), 28.0)
            self.assertAlmostEqual(float(dep["completion tokens/s"]), 28.0 / 60)
            self.assertAlmostEqual(float(dep["samples/s"]), 3 / 60)
            self.assertEqual(int(dep["ok samples, unfinished runs"]), 2)
            self.assertFalse(os.path.exists(os.path.join(d, "plots", "throughput.png")))
            with open(os.path.join(d, "report.md")) as f:
                md = f.read()
            for text in ("1 of 3", "beyond max_thinking_tokens", "run(s) 2 have no finished_at",
                         "1 sample row(s) have no run_id"):
                self.assertIn(text, md)

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
