# Everything the report shows, computed from a loaded Run: per-problem strategy scores, the
# per-cell accuracies with paired bootstrap CIs, compute accounting, budget curves, coverage fits.
"""The numbers of the report (see docs/experiments.md, "The report", for every formula)."""

from __future__ import annotations

import collections
import dataclasses
import json
import math
from typing import Optional

import numpy as np

from . import metrics, stats
from .data import DEPLOYMENT_AXES, Point, Run

THINKING_AXES = ("max_thinking_tokens", "extend_thinking", "enable_thinking")
SERVER_KEYS = ("tp", "pp", "replicas", "backend", "dtype")   # of provenance server.ponder.server
SMALL_CELL = 100          # below this, one problem is worth >= 1 point of accuracy
STRATEGY_NAMES = {"pass@1": "pass@1", "pass@k": "pass@k", "maj@k": "maj@k",
                  "weighted-maj@k": "wmaj@k", "wmaj@k": "wmaj@k", "budget": "budget"}


@dataclasses.dataclass
class Cell:
    no: int                   # 0 = all problems, then the levels in order
    name: str                 # "all" or "level 3"
    level: Optional[int]
    problems: list            # problem ids, sorted
    est: dict                 # column -> point estimate (mean over present problems)
    ci: dict                  # column -> (lo, hi)
    n: dict                   # point_id -> problems of this cell present at the point
    boot: np.ndarray          # B x M bootstrap means
    col_index: dict           # column -> index into boot

    @property
    def small(self) -> bool:
        return len(self.problems) < SMALL_CELL

    def value(self, col):
        return (self.est.get(col, float("nan")),) + tuple(self.ci.get(col, (float("nan"),) * 2))

    def diff(self, col_a, col_b):
        """(estimate, lo, hi) of acc(col_a) - acc(col_b), paired over the same resamples."""
        if col_a not in self.col_index or col_b not in self.col_index:
            return (float("nan"),) * 3
        d = self.boot[:, self.col_index[col_a]] - self.boot[:, self.col_index[col_b]]
        lo, hi = stats.percentile_ci(d)
        return (self.est[col_a] - self.est[col_b], lo, hi)


@dataclasses.dataclass
class PointCompute:
    requests: int             # (point, problem) pairs: one request of n samples each
    samples: int
    failed: int
    prompt_tokens: float      # max over a request's samples, summed over requests
    cached_tokens: float
    completion_tokens: float
    reasoning_tokens: float
    answer_tokens: float
    flops: float              # executed: sum of flops
    flops_per_sample: float   # flops / rows with flops recorded (failed rows have none)
    nominal_flops: float      # sum of nominal_flops (each sample alone)
    nominal_per_sample: float  # nominal_flops / rows with nominal_flops recorded
    flops_ratio: float        # executed / nominal over the rows that have both
    completion_per_sample: float  # completion tokens / rows with them recorded
    mean_thinking: float      # mean reasoning_tokens over ok samples
    ok_samples: int


def _nansum(a) -> float:
    a = np.asarray(a, dtype=float)
    return float(np.nansum(a)) if len(a) else 0.0


def point_compute(pt: Point) -> PointCompute:
    probs = list(pt.problems.values())
    samples = sum(ps.n for ps in probs)
    ok = sum(int(ps.ok.sum()) for ps in probs)

    def once(arr):
        arr = arr[np.isfinite(arr)]
        return float(arr.max()) if len(arr) else 0.0

    flops = sum(_nansum(ps.flops) for ps in probs)
    flops_rows = sum(int(np.isfinite(ps.flops).sum()) for ps in probs)
    nominal = sum(_nansum(ps.nominal_flops) for ps in probs)
    nominal_rows = sum(int(np.isfinite(ps.nominal_flops).sum()) for ps in probs)
    both = [np.isfinite(ps.flops) & np.isfinite(ps.nominal_flops) for ps in probs]
    ex_both = sum(float(ps.flops[b].sum()) for ps, b in zip(probs, both))
    nom_both = sum(float(ps.nominal_flops[b].sum()) for ps, b in zip(probs, both))
    comp = sum(_nansum(ps.completion_tokens) for ps in probs)
    comp_rows = sum(int(np.isfinite(ps.completion_tokens).sum()) for ps in probs)
    reas_ok = np.concatenate([ps.reasoning_tokens[ps.ok] for ps in probs]) if probs else np.zeros(0)
    reas_ok = reas_ok[np.isfinite(reas_ok)]
    return PointCompute(
        requests=len(probs), samples=samples, failed=samples - ok,
        prompt_tokens=sum(once(ps.prompt_tokens) for ps in probs),
        cached_tokens=sum(once(ps.cached_tokens) for ps in probs),
        completion_tokens=comp,
        reasoning_tokens=sum(_nansum(ps.reasoning_tokens) for ps in probs),
        answer_tokens=sum(_nansum(ps.answer_tokens) for ps in probs),
        flops=flops,
        flops_per_sample=flops / flops_rows if flops_rows else float("nan"),
        nominal_flops=nominal if nominal_rows else float("nan"),
        nominal_per_sample=nominal / nominal_rows if nominal_rows else float("nan"),
        flops_ratio=ex_both / nom_both if nom_both > 0 else float("nan"),
        completion_per_sample=comp / comp_rows if comp_rows else float("nan"),
        mean_thinking=float(reas_ok.mean()) if len(reas_ok) else float("nan"),
        ok_samples=ok)


def thinking_before_delimiter(ps) -> np.ndarray:
    """Thinking tokens before the end-of-thinking delimiter, per row: the engine counts the
    delimiter (one token, `</think>`) in reasoning_tokens whether the model drew it or the engine
    inserted it at the budget, so it is reasoning_tokens - 1 when the thinking block closed
    (answer_tokens > 0 or content non-empty), else reasoning_tokens. NaN where NULL."""
    closed = ps.has_content | (np.nan_to_num(ps.answer_tokens, nan=0.0) > 0)
    return ps.reasoning_tokens - closed.astype(float)


def _group_key(params: dict, drop=THINKING_AXES) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items() if k not in drop))


def _budget_sort(pt: Point):
    p = pt.params
    direct = pt.is_direct()
    mtt = p.get("max_thinking_tokens")
    return (0 if direct else 1, math.inf if mtt is None else mtt, p.get("extend_thinking") or 0,
            pt.point_id)


class Analysis:
    def __init__(self, run: Run, seed: int = 0, resamples: int = 10000,
                 max_subsets: int = metrics.DEFAULT_MAX_SUBSETS, coverage_target: float = 0.9):
        self.run = run
        self.seed = seed
        self.resamples = resamples
        self.max_subsets = max_subsets
        self.coverage_target = coverage_target
        self.N = run.n_samples
        self.ks = metrics.k_grid(self.N)
        self.points = run.points
        self.requested = run.strategies()
        self.unknown_strategies = [s for s in self.requested if s not in STRATEGY_NAMES]
        shown = [STRATEGY_NAMES[s] for s in self.requested if s in STRATEGY_NAMES]
        self.shown = [s for s in metrics.STRATEGIES if s in shown] or list(metrics.STRATEGIES)
        self.show_budget = "budget" in shown
        self.warnings: list = []
        self._scores()
        self._cells()
        self.compute = {pt.point_id: point_compute(pt) for pt in self.points}
        no_flops = [pt.point_id for pt in self.points if not self.compute[pt.point_id].flops > 0]
        if no_flops:
            self.warnings.append(
                "no FLOPs recorded (flops NULL or 0 in every row) at point(s) "
                + ", ".join(map(str, no_flops)) + ": their FLOPs multipliers are missing; the "
                "token multiplier (completion tokens per row) stands in")
        if not run.has_nominal:
            self.warnings.append(
                "this store has no samples.nominal_flops column (written by an earlier runner): "
                "nominal FLOPs, executed / nominal and the nominal multiplier are empty, and its "
                "`flops` were split over a request's samples by completion tokens")
        elif not any(self.compute[pt.point_id].nominal_flops > 0 for pt in self.points):
            self.warnings.append("no nominal FLOPs recorded (nominal_flops NULL in every row: a "
                                 "server that does not report usage.nominal_flops): the nominal "
                                 "columns and the nominal multiplier are empty")
        self._budget_warnings()
        self._deployment_warnings()
        self._direct()
        self._coverage()

    def _budget_warnings(self):
        missing, over = [], []
        for pt in self.points:
            w = self.within_budget(pt)
            if w is None:
                continue
            if w["reached_n"] > w["reached_answer_n"]:
                missing.append(f"{pt.point_id} ({w['reached_n'] - w['reached_answer_n']} of "
                               f"{w['reached_n']})")
            if w["over"]:
                over.append(f"{pt.point_id} ({w['over']})")
        if missing:
            self.warnings.append(
                "samples that reached the thinking budget without a final answer (extracted "
                "NULL) at point(s) " + ", ".join(missing) + ": budget forcing should leave every "
                "capped sample with an answer")
        if over:
            self.warnings.append(
                "ok samples thinking beyond max_thinking_tokens (thinking before </think> > "
                "budget) at point(s) " + ", ".join(over))

    def _deployment_warnings(self):
        if not self.run.has_runs:
            return
        killed = [r.run_id for r in self.run.runs if r.finished_at is None]
        if killed:
            self.warnings.append(
                "run(s) " + ", ".join(map(str, killed)) + " have no finished_at (killed): their "
                "samples count in the accuracies but not in the Deployments throughput")
        orphans = self.rows_without_run()
        if orphans:
            self.warnings.append(
                f"{orphans} sample row(s) have no run_id (written before the runs table): they "
                "count in the accuracies but in no deployment's throughput")

    # ---- per-problem scores -------------------------------------------------------------
    def columns(self, pid: int) -> list:
        cols = [(pid, "pass@1", 1)]
        for s in ("pass@k", "maj@k", "wmaj@k"):
            cols += [(pid, s, k) for k in self.ks]
        return cols

    def _scores(self):
        self.scores = {}
        short = collections.Counter()
        for pt in self.points:
            d = {}
            for prob_id, ps in pt.problems.items():
                if ps.n < self.N:
                    short[pt.point_id] += 1
                d[prob_id] = metrics.problem_scores(ps.extracted, ps.correct, ps.logprob_sum,
                                                    ps.completion_tokens, self.ks, self.seed,
                                                    self.max_subsets)
            self.scores[pt.point_id] = d
        for pid, cnt in sorted(short.items()):
            self.warnings.append(
                f"point {pid}: {cnt} problem(s) hold fewer than N = {self.N} sample rows; they "
                f"are left out of the metrics at the k they cannot reach")

    # ---- cells and bootstrap ------------------------------------------------------------
    def _cells(self):
        present = sorted({p for pt in self.points for p in pt.problems})
        unsampled = sorted(set(self.run.levels) - set(present))
        if unsampled:
            self.warnings.append(
                f"{len(unsampled)} problem(s) of the problems table have no sample row at any "
                f"point and are not in any cell (e.g. {', '.join(unsampled[:3])})")
        for pt in self.points:
            lacking = len(set(present) - set(pt.problems))
            if lacking:
                self.warnings.append(
                    f"point {pt.point_id} has no sample row for {lacking} problem(s) other points "
                    "have: its accuracies are over the problems it has")
        levels = sorted({self.run.levels.get(p) for p in present},
                        key=lambda v: (v is None, v if v is not None else 0))
        groups = [("all", None, present)]
        for lv in levels:
            probs = [p for p in present if self.run.levels.get(p) == lv]
            groups.append(("level ?" if lv is None else f"level {lv}", lv, probs))
        if len(levels) == 1:
            groups = groups[:1] if levels[0] is None else groups
        cols = [c for pt in self.points for c in self.columns(pt.point_id)]
        self.all_columns = cols
        self.cells = []
        for no, (name, lv, probs) in enumerate(groups):
            X = np.full((len(probs), len(cols)), np.nan)
            for j, (pid, s, k) in enumerate(cols):
                sc = self.scores[pid]
                for i, p in enumerate(probs):
                    if p in sc:
                        X[i, j] = sc[p].get((s, k), np.nan)
            present_n = np.isfinite(X).sum(axis=0)
            est = np.where(present_n > 0, np.nansum(X, axis=0) / np.maximum(present_n, 1), np.nan)
            boot = (stats.bootstrap_means(X, self.resamples, self.seed, no) if len(probs)
                    else np.full((self.resamples, len(cols)), np.nan))
            ci = {}
            for j, c in enumerate(cols):
                ci[c] = stats.percentile_ci(boot[:, j])
            n = {pt.point_id: sum(1 for p in probs if p in pt.problems) for pt in self.points}
            self.cells.append(Cell(no, name, lv, probs, dict(zip(cols, est.tolist())), ci, n,
                                   boot, {c: j for j, c in enumerate(cols)}))
        small = [c.name for c in self.cells if c.small and c.problems]
        if small:
            self.warnings.append(
                "fewer than 100 problems (one problem is worth >= 1 point of accuracy) in: "
                + ", ".join(f"{c.name} ({len(c.problems)})" for c in self.cells
                            if c.small and c.problems) + "; these cells are marked ⚠")

    @property
    def overall(self) -> Cell:
        return self.cells[0]

    # ---- direct answer and compute multipliers -----------------------------------------
    def _direct(self):
        direct = [pt for pt in self.points if pt.is_direct()]
        self.direct_of = {}
        for pt in self.points:
            if not direct:
                self.direct_of[pt.point_id] = None
                continue
            key = dict(_group_key(pt.params))
            best = max(direct, key=lambda d: (sum(1 for kv in _group_key(d.params)
                                                   if key.get(kv[0]) == kv[1]), -d.point_id))
            self.direct_of[pt.point_id] = best
        self.has_direct = bool(direct)

    def multiplier(self, pid: int, k: int, what: str = "flops") -> float:
        """Cost of a k-sample strategy at point pid over one sample at its direct point:
        k * (per-sample cost at pid) / (per-sample cost at the direct point); the cost is executed
        FLOPs ("flops"), nominal FLOPs ("nominal") or completion tokens ("tokens")."""
        d = self.direct_of.get(pid)
        if d is None:
            return float("nan")
        a, b = self.compute[pid], self.compute[d.point_id]
        attr = {"flops": "flops_per_sample", "nominal": "nominal_per_sample",
                "tokens": "completion_per_sample"}[what]
        num, den = getattr(a, attr), getattr(b, attr)
        if not (den > 0) or not np.isfinite(num):
            return float("nan")
        return k * num / den

    def same_problems_as_direct(self, pid: int) -> bool:
        d = self.direct_of.get(pid)
        if d is None:
            return False
        return set(self.points_by_id()[pid].problems) == set(d.problems)

    def points_by_id(self) -> dict:
        return {pt.point_id: pt for pt in self.points}

    # ---- budget curves ------------------------------------------------------------------
    def budget_groups(self) -> list:
        """Budget curves: lists of (>= 2) points that differ only in the thinking axes, one per
        extend_thinking value, in budget order; the group's direct points join every curve."""
        groups = collections.OrderedDict()
        for pt in self.points:
            groups.setdefault(_group_key(pt.params), []).append(pt)
        out = []
        for pts in groups.values():
            direct = [pt for pt in pts if pt.is_direct()]
            by_ext = collections.OrderedDict()
            for pt in sorted(pts, key=_budget_sort):
                if not pt.is_direct():
                    by_ext.setdefault(pt.params.get("extend_thinking") or 0, []).append(pt)
            if not by_ext and len(direct) >= 2:
                by_ext[0] = []
            for ext, curve in by_ext.items():
                curve = sorted(direct + curve, key=_budget_sort)
                if len(curve) >= 2:
                    out.append((ext, curve))
        return out

    @staticmethod
    def within_budget(pt: Point) -> Optional[dict]:
        """Budget forcing at a point with a numeric max_thinking_tokens B (ok rows only), with
        T = thinking_before_delimiter: within budget T <= B; reached the budget T == B; of those,
        the share with a final answer (extracted not NULL/blank) and the share correct."""
        budget = pt.params.get("max_thinking_tokens")
        if budget is None or pt.params.get("enable_thinking") is False:
            return None
        T, ans, cor, fin = [], [], [], collections.Counter()
        for ps in pt.problems.values():
            t = thinking_before_delimiter(ps)
            for i in np.flatnonzero(ps.ok):
                T.append(t[i])
                ans.append(ps.extracted[i] is not None)
                cor.append(bool(ps.correct[i]))
                fin[ps.finish_reason[i] or "NULL"] += 1
        T = np.array(T, dtype=float)
        ans, cor = np.array(ans, dtype=bool), np.array(cor, dtype=bool)
        known = np.isfinite(T)
        n = len(T)
        reached = known & (T == budget)
        over = known & (T > budget)
        nr = int(reached.sum())
        nan = float("nan")
        return {"budget": budget, "ok": n,
                "within": float((known & (T <= budget)).sum() / n) if n else nan,
                "over": int(over.sum()),
                "reached_n": nr,
                "reached": nr / n if n else nan,
                "reached_answer_n": int((reached & ans).sum()),
                "reached_answer": float((reached & ans).sum() / nr) if nr else nan,
                "reached_acc": float((reached & cor).sum() / nr) if nr else nan,
                "unknown": int(n - known.sum()),
                "stop": fin.get("stop", 0) / n if n else nan,
                "length": fin.get("length", 0) / n if n else nan,
                "other": (n - fin.get("stop", 0) - fin.get("length", 0)) / n if n else nan,
                "mean": float(T[known].mean()) if known.any() else nan,
                "max": float(T[known].max()) if known.any() else nan}

    # ---- deployments --------------------------------------------------------------------
    def grid_deployment_axes(self) -> list:
        """The deployment axes the grid has (keys among nodes, tp, pp, replicas in params)."""
        return [a for a in DEPLOYMENT_AXES if any(a in pt.params for pt in self.points)]

    def deployments(self) -> list:
        """One dict per distinct deployment of the runs table: (deployment_json, the ponder
        server's tp/pp/replicas/backend/dtype), in order of its first run. Wall time and rates are
        over its runs with finished_at; ok samples and completion tokens are those of the same
        runs (samples.run_id), so that tokens/s = completion tokens / wall seconds."""
        if not self.run.has_runs:
            return []
        per_run = collections.defaultdict(lambda: [0, 0.0])   # run_id -> [ok rows, completion]
        for pt in self.points:
            for ps in pt.problems.values():
                for ok, rid, ct in zip(ps.ok, ps.run_id, ps.completion_tokens):
                    if ok and rid is not None:
                        per_run[rid][0] += 1
                        per_run[rid][1] += 0.0 if not np.isfinite(ct) else float(ct)
        groups = collections.OrderedDict()
        for r in self.run.runs:
            dep = r.deployment if isinstance(r.deployment, dict) else {}
            srv = r.server_settings()
            key = (json.dumps(dep, sort_keys=True, separators=(",", ":")),
                   tuple(repr(srv.get(k)) for k in SERVER_KEYS))
            groups.setdefault(key, (dep, srv, []))[2].append(r)
        out = []
        for (dep_text, _), (dep, srv, runs) in groups.items():
            done = [r for r in runs if r.finished_at is not None and r.started_at is not None]
            wall = sum(r.finished_at - r.started_at for r in done)
            ok = sum(per_run[r.run_id][0] for r in done)
            comp = sum(per_run[r.run_id][1] for r in done)
            killed = [r for r in runs if r not in done]

            def prov(key):
                vals = []
                for r in runs:
                    v = r.provenance.get(key) if isinstance(r.provenance, dict) else None
                    if v not in (None, "") and str(v) not in vals:
                        vals.append(str(v))
                return " ".join(vals)

            out.append({"deployment": dep_text, "values": dep, "server": srv,
                        "run_ids": [r.run_id for r in runs], "runs": len(runs),
                        "unfinished": len(killed), "wall_s": wall if done else float("nan"),
                        "ok_samples": ok, "completion_tokens": comp,
                        "tokens_per_s": comp / wall if wall > 0 else float("nan"),
                        "samples_per_s": ok / wall if wall > 0 else float("nan"),
                        "ok_unfinished": sum(per_run[r.run_id][0] for r in killed),
                        "slurm_jobs": prov("target_slurm_job_id"),
                        "slurm_nodes": prov("target_slurm_nodes")})
        return out

    def rows_without_run(self) -> int:
        return sum(sum(1 for rid in ps.run_id if rid is None)
                   for pt in self.points for ps in pt.problems.values())

    # ---- coverage -----------------------------------------------------------------------
    def _coverage(self):
        self.coverage = {}
        for cell in self.cells:
            for pt in self.points:
                cs = [cell.est.get((pt.point_id, "pass@k", k), np.nan) for k in self.ks]
                self.coverage[(cell.no, pt.point_id)] = stats.fit_coverage(self.ks, cs)
