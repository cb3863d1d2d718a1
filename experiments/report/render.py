# report.md, the CSVs (one per table) and the plots of an Analysis.
from __future__ import annotations

import collections
import datetime
import json
import os

from .analysis import SERVER_KEYS, SMALL_CELL, Analysis
from .data import DEPLOYMENT_AXES
from .tables import Col, Table

METHOD = """\
Every number below is computed from `results.sqlite` with these formulas; the CSV files under
`tables/` hold the same values at full precision.

**Per problem** (n = sample rows stored for the problem at the point, failed ones included;
c = rows with `correct = 1`; a failed row or a row with `correct` NULL counts as wrong):

* pass@1 = c / n (the mean over the n samples: DeepSeek-R1's protocol; = pass@k, maj@k and wmaj@k
  at k = 1).
* pass@k = 1 − C(n−c, k) / C(n, k) (unbiased estimator of Chen et al. 2021; 1 when n − c < k).
* maj@k = the mean, over size-k subsets S of the n samples, of [vote(S) is correct]. Only rows with
  an extracted answer vote (failed rows and rows whose `extracted` is NULL or blank do not, but
  stay in n); a
  subset in which nobody votes scores 0. The vote: the answer with the most votes; a tie goes to
  the answer with the higher sum of `logprob_sum` over its votes in S (NULL counts as −∞), then
  to the smallest answer string (Python string order).
* wmaj@k (logprob-weighted majority) = the same with the answer of the largest total weight,
  weight of a sample w = exp(logprob_sum / completion_tokens) (its geometric-mean token
  probability, in (0, 1]; 0 when either is NULL or completion_tokens = 0); a tie goes to more
  votes, then to the smallest string. An answer is correct when any of its rows has correct = 1.
* Subsets (one superset of N = {N} samples, subsampled for every k = {ks}): all C(n, k) subsets
  when C(n, k) ≤ {subsets} (exact: k = 1 and k = n always are), else {subsets} random k-subsets,
  row i = the first k entries of a random permutation of the positions 0..n−1 (samples ordered by
  `sample_index`), from `numpy.random.default_rng([{seed}, n, k]).permuted(tile(arange(n),
  ({subsets}, 1)), axis=1)`. The same subsets serve every problem and point (paired).

**Accuracy of a cell** (all problems, or one difficulty level) = the mean of the per-problem
values over the cell's problems present at the point.

**95 % confidence intervals**: percentile bootstrap over problems, B = {resamples} resamples, seed
{seed}: resample b draws the cell's P problems with replacement
(`numpy.random.default_rng([{seed}, cell_no]).integers(0, P, (m, P))` for chunks of m = 1000
rows, the last one shorter; cell_no 0 = all problems, then the levels in increasing order; the
all-problems cell is not stratified by level), every strategy, k and point is averaged with the
same draws, and the CI is the [2.5, 97.5] percentile of the B means. Differences (e.g.
maj@k − pass@1, or a point's pass@1 minus its direct point's) are paired: the percentile interval
of the per-resample difference. A cell of fewer than {small} problems (⚠) has each problem worth
≥ 1 point of accuracy.

**Compute** per point: prompt and cached tokens are the request's (shared by its n samples), so
they are counted once per (point, problem) request — the largest value among its rows; thinking
tokens = Σ `reasoning_tokens`, answer tokens = Σ `answer_tokens`, completion = Σ
`completion_tokens` over all rows (NULL = 0). **Executed FLOPs** = Σ `flops`: what the engine
computed (the request's `usage.flops`: the shared prompt once, prefix-cache hits skipped), split
by the runner over the request's samples in proportion to their `nominal_flops` (their
completion tokens where those are missing). **Nominal FLOPs** = Σ `nominal_flops`: each sample's
cost alone (its prompt and completion as one uncached, unshared sequence), the "k independent
samples" cost. **Executed / nominal** = Σ `flops` / Σ `nominal_flops` over the rows that have
both: the share of the independent cost that was computed, i.e. what sharing the prefill and the
prefix cache saved. A strategy at k uses k samples, so its cost per problem is k × F̄, with
F̄ = executed FLOPs / rows with `flops` recorded at the point (failed rows have none), and its
**compute multiplier** over a direct answer is k × F̄(point) / F̄(direct point), a direct point
being one with `enable_thinking` false or `max_thinking_tokens` 0 (the one sharing most other
parameters with the point). The **nominal multiplier** is the same with F̄ = nominal FLOPs /
rows with `nominal_flops` recorded, the token multiplier with completion tokens per row that has
them. pass@1 costs one sample (k = 1).

**Budget curves**: points that differ only in `max_thinking_tokens`, `extend_thinking` and
`enable_thinking`, one curve per `extend_thinking` value (the direct points join every curve);
x = mean `reasoning_tokens` over the point's ok rows. **Budget forcing** (ok rows of a point
with a numeric `max_thinking_tokens` B): the engine counts the end-of-thinking delimiter
(`</think>`, assumed one token, as for the models ponder serves) as a thinking token, whether the
model draws it or the engine inserts it at the budget, so the thinking before the delimiter is
T = `reasoning_tokens` − 1 when the block closed (`answer_tokens` > 0 or `content` non-empty),
else T = `reasoning_tokens` (a NULL `reasoning_tokens` counts as not within budget). A row is
within budget when T ≤ B and reached the budget when T = B; of the rows that reached it, "with
answer" is the share whose `extracted` is not NULL (blank counts as NULL) and "accuracy" the
share with `correct` = 1. Shares of `finish_reason` beside.

**Deployments** (stores with a `runs` table): one row per distinct deployment, i.e. per
(`deployment_json`, the ponder server's tp, pp, replicas, backend and dtype from the run's
provenance `server.ponder.server`). wall s = Σ (`finished_at` − `started_at`) over its runs with
`finished_at`; ok samples = rows with `status = 'ok'` whose `run_id` is one of those runs;
completion tokens = Σ `completion_tokens` of those rows; completion tokens/s = completion tokens
/ wall s; samples/s = ok samples / wall s. Runs without `finished_at` (killed) are counted but
have no wall time; their ok rows are listed apart.

**Coverage law** (Large Language Monkeys, Brown et al. 2024): log c(k) ≈ a·k^(−b), i.e.
c(k) = exp(a·k^(−b)), a < 0, b > 0, fit to the cell's pass@k by ordinary least squares of
log(−log c) = log(−a) − b·log k on log k (`numpy.polyfit`, degree 1), over the k with
0 < c < 1; k with c = 1 or c = 0 (log(−log c) infinite) are left out and listed, and with fewer
than two k left there is no fit. R² = 1 − SS_res/SS_tot in the log(−log c) space (what is
minimised); R²_c the same in coverage space. The asymptote of the law is c = 1; the k needed for
coverage t = {target:g} is k(t) = (log t / a)^(−1/b).
"""


def _params_short(params: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items())


def build_tables(an: Analysis) -> list:
    N, ks, cell0 = an.N, an.ks, an.overall
    shown = an.shown
    T = []

    # points and failures
    rows = []
    for pt in an.points:
        c = an.compute[pt.point_id]
        noans = sum(sum(1 for o, e in zip(ps.ok, ps.extracted) if o and e is None)
                    for ps in pt.problems.values())
        errs = collections.Counter(e or "(no error text)" for ps in pt.problems.values()
                                   for e in ps.errors)
        top = "; ".join(f"{n}× {e[:60]}" for e, n in errs.most_common(2))
        prob_fail = sum(1 for ps in pt.problems.values() if (~ps.ok).any())
        rows.append([pt.point_id, pt.label(), _params_short(pt.params), c.requests, c.samples,
                     c.failed, c.failed / c.samples if c.samples else float("nan"), prob_fail,
                     noans, top])
    T.append(Table("points", "Points and failed samples", [
        Col("point"), Col("label"), Col("params"), Col("problems", "int"), Col("samples", "int"),
        Col("failed", "int"), Col("failed %", "pct"), Col("problems with a failure", "int"),
        Col("ok, no answer", "int"), Col("errors (most common)")], rows,
        "Failed rows stay in n: they count as wrong in pass@1/pass@k and do not vote in "
        "maj@k/wmaj@k. 'ok, no answer': the completion had no extractable answer (also wrong)."))

    # headline accuracy at k = N
    cols = [Col("point"), Col("label"), Col("problems", "int")]
    heads = []
    for s in ("pass@1", "pass@k", "maj@k", "wmaj@k"):
        if s in shown:
            k = 1 if s == "pass@1" else N
            heads.append((s, k))
            cols.append(Col(s if s == "pass@1" else s.replace("@k", f"@{N}"), "ci"))
    rows = [[pt.point_id, pt.label(), cell0.n[pt.point_id]] +
            [cell0.value((pt.point_id, s, k)) for s, k in heads] for pt in an.points]
    T.append(Table("accuracy", f"Accuracy, all problems (k = N = {N}), % [95 % CI]", cols, rows,
                   ("⚠ " if cell0.small else "") + f"{len(cell0.problems)} problems."))

    # accuracy by k, every cell
    vs = [s for s in ("pass@k", "maj@k", "wmaj@k") if s in shown]
    rows_all = []
    for cell in an.cells:
        for pt in an.points:
            for k in ks:
                rows_all.append([cell.name, len(cell.problems), pt.point_id, k] +
                                [cell.value((pt.point_id, s, k)) for s in vs])
    byk = Table("accuracy_by_k", "Accuracy against k, % [95 % CI]",
                [Col("cell"), Col("cell problems", "int"), Col("point"), Col("k", "int")] +
                [Col(s, "ci") for s in vs], rows_all)
    T.append(byk)

    # paired differences
    rows_all = []
    for cell in an.cells:
        for pt in an.points:
            pid = pt.point_id
            d = an.direct_of.get(pid)
            for k in ks[1:] if len(ks) > 1 else ks:
                r = [cell.name, pid, k,
                     cell.diff((pid, "maj@k", k), (pid, "pass@1", 1)),
                     cell.diff((pid, "wmaj@k", k), (pid, "pass@1", 1)),
                     cell.diff((pid, "wmaj@k", k), (pid, "maj@k", k)),
                     cell.diff((pid, "pass@k", k), (pid, "pass@1", 1))]
                if d is not None and d.point_id != pid:
                    r += [d.point_id, cell.diff((pid, "pass@1", 1), (d.point_id, "pass@1", 1)),
                          cell.diff((pid, "maj@k", k), (d.point_id, "pass@1", 1))]
                else:
                    r += ["", (float("nan"),) * 3, (float("nan"),) * 3]
                rows_all.append(r)
    T.append(Table("differences", "Paired differences, percentage points [95 % CI]",
                   [Col("cell"), Col("point"), Col("k", "int"), Col("maj@k − pass@1", "dci"),
                    Col("wmaj@k − pass@1", "dci"), Col("wmaj@k − maj@k", "dci"),
                    Col("pass@k − pass@1", "dci"), Col("direct point"),
                    Col("pass@1 − direct pass@1", "dci"), Col("maj@k − direct pass@1", "dci")],
                   rows_all, "Same bootstrap resamples of problems for both terms."))

    # per level at k = N
    rows = []
    for cell in an.cells[1:]:
        for pt in an.points:
            rows.append([cell.name, "⚠" if cell.small else "", pt.point_id, cell.n[pt.point_id]]
                        + [cell.value((pt.point_id, s, k)) for s, k in heads])
    T.append(Table("levels", f"Accuracy per difficulty level (k = N = {N}), % [95 % CI]",
                   [Col("level"), Col("⚠ <100"), Col("point"), Col("problems", "int")]
                   + cols[3:], rows))

    # budget curves
    rows = []
    for gi, (ext, pts) in enumerate(an.budget_groups(), start=1):
        for pt in pts:
            p = pt.params
            rows.append([gi, pt.point_id, p.get("enable_thinking"),
                         p.get("max_thinking_tokens") if p.get("max_thinking_tokens") is not None
                         else "unlimited", p.get("extend_thinking"),
                         an.compute[pt.point_id].mean_thinking]
                        + [cell0.value((pt.point_id, s, k)) for s, k in heads])
    T.append(Table("budget", "Budget curves: accuracy against mean thinking tokens, % [95 % CI]",
                   [Col("curve", "int"), Col("point"), Col("enable_thinking"),
                    Col("max_thinking_tokens"), Col("extend_thinking"),
                    Col("mean thinking tokens", "num")] + cols[3:], rows))

    rows = []
    for pt in an.points:
        w = an.within_budget(pt)
        if w is None:
            continue
        rows.append([pt.point_id, w["budget"], pt.params.get("extend_thinking"), w["ok"],
                     w["within"], w["reached_n"], w["reached"], w["reached_answer"],
                     w["reached_acc"], w["stop"], w["length"], w["other"], w["mean"], w["max"],
                     w["unknown"]])
    T.append(Table("within_budget", "Budget forcing: samples within and at the thinking budget "
                   "(ok rows)",
                   [Col("point"), Col("max_thinking_tokens", "int"), Col("extend_thinking"),
                    Col("ok samples", "int"), Col("within budget %", "pct"),
                    Col("reached budget", "int"), Col("reached budget %", "pct"),
                    Col("reached: with answer %", "pct"), Col("reached: accuracy %", "pct"),
                    Col("finish stop %", "pct"), Col("finish length %", "pct"),
                    Col("finish other %", "pct"), Col("mean thinking before </think>", "num"),
                    Col("max thinking before </think>", "num"), Col("thinking NULL", "int")],
                   rows,
                   "T = thinking tokens before the end-of-thinking delimiter = reasoning_tokens − 1 "
                   "when the thinking block closed (answer_tokens > 0 or content non-empty), else "
                   "reasoning_tokens (the engine counts the delimiter `</think>`, one token, as a "
                   "thinking token, drawn or inserted at the budget). Within budget: T ≤ "
                   "max_thinking_tokens; reached budget: T = max_thinking_tokens; of those, with "
                   "answer: `extracted` not NULL (the grader found an answer), accuracy: "
                   "`correct` = 1."))

    # compute
    rows = []
    for pt in an.points:
        c = an.compute[pt.point_id]
        rows.append([pt.point_id, c.requests, c.samples, c.prompt_tokens, c.cached_tokens,
                     c.reasoning_tokens, c.answer_tokens, c.completion_tokens, c.flops,
                     c.nominal_flops, c.flops_ratio, c.flops_per_sample, c.nominal_per_sample,
                     c.mean_thinking])
    T.append(Table("compute", "Compute per point", [
        Col("point"), Col("requests", "int"), Col("samples", "int"),
        Col("prompt tokens", "int"), Col("cached tokens", "int"), Col("thinking tokens", "int"),
        Col("answer tokens", "int"), Col("completion tokens", "int"),
        Col("executed FLOPs", "sci"), Col("nominal FLOPs", "sci"),
        Col("executed / nominal", "num"), Col("executed FLOPs / sample", "sci"),
        Col("nominal FLOPs / sample", "sci"), Col("mean thinking / sample", "num")], rows,
        "Prompt and cached tokens once per request (point, problem); the rest summed over rows. "
        "Executed FLOPs = Σ `flops` (what the engine computed: the shared prompt once, cache hits "
        "skipped); nominal FLOPs = Σ `nominal_flops` (each sample alone: no cache, no sharing); "
        "executed / nominal over the rows that have both: what prompt sharing and the prefix "
        "cache saved."))

    rows_all = []
    for pt in an.points:
        pid = pt.point_id
        d = an.direct_of.get(pid)
        c = an.compute[pid]
        for s in ("pass@1", "pass@k", "maj@k", "wmaj@k"):
            if s not in shown:
                continue
            for k in ([1] if s == "pass@1" else ks):
                rows_all.append([pid, d.point_id if d else "", s, k,
                                 cell0.est.get((pid, s, k), float("nan")),
                                 k * c.flops_per_sample, k * c.nominal_per_sample,
                                 an.multiplier(pid, k, "flops"), an.multiplier(pid, k, "nominal"),
                                 an.multiplier(pid, k, "tokens")])
    T.append(Table("multiplier", "Compute multiplier over a direct answer",
                   [Col("point"), Col("direct point"), Col("strategy"), Col("k", "int"),
                    Col("accuracy %", "pct"), Col("executed FLOPs / problem", "sci"),
                    Col("nominal FLOPs / problem", "sci"), Col("× direct (FLOPs)", "mult"),
                    Col("× direct (nominal FLOPs)", "mult"), Col("× direct (tokens)", "mult")],
                   rows_all,
                   "" if an.has_direct else "no direct-answer point in this sweep"))

    # deployments
    deps = an.deployments()
    if deps:
        axes = [a for a in DEPLOYMENT_AXES if any(a in d["values"] for d in deps)]
        rows = []
        for d in deps:
            rows.append([d["deployment"]] + [d["values"].get(a) for a in axes]
                        + [d["server"].get(k) for k in SERVER_KEYS]
                        + [" ".join(map(str, d["run_ids"])), d["runs"], d["unfinished"],
                           d["wall_s"], d["ok_samples"], d["completion_tokens"],
                           d["tokens_per_s"], d["samples_per_s"], d["ok_unfinished"],
                           d["slurm_jobs"], d["slurm_nodes"]])
        T.append(Table("deployments", "Deployments", [Col("deployment")]
                       + [Col(a, "int") for a in axes]
                       + [Col("server " + k, "int" if k in ("tp", "pp", "replicas") else "text")
                          for k in SERVER_KEYS]
                       + [Col("run ids"), Col("runs", "int"), Col("unfinished runs", "int"),
                          Col("wall s", "num"), Col("ok samples", "int"),
                          Col("completion tokens", "int"), Col("completion tokens/s", "num"),
                          Col("samples/s", "num"), Col("ok samples, unfinished runs", "int"),
                          Col("Slurm job ids"), Col("Slurm nodes")], rows,
                       "One row per distinct deployment: the runs' `deployment_json` and the "
                       "ponder server's settings (provenance server.ponder.server; empty for "
                       "other servers). wall s = Σ (finished_at − started_at) over its runs with "
                       "finished_at; ok samples and completion tokens (Σ `completion_tokens`) are "
                       "the ok rows those same runs wrote (`samples.run_id`); completion tokens/s "
                       "= completion tokens / wall s, samples/s = ok samples / wall s. A run "
                       "without finished_at (killed) has no wall time: its ok rows are counted "
                       "apart."))

    # coverage fits
    rows_all = []
    for cell in an.cells:
        for pt in an.points:
            f = an.coverage[(cell.no, pt.point_id)]
            kt = f.k_for(an.coverage_target)
            note = f.note
            if kt == kt and kt > max(an.ks):
                note = (note + "; " if note else "") + f"k for c = {an.coverage_target:g} " \
                    f"extrapolates beyond N = {an.N}"
            rows_all.append([cell.name, pt.point_id, f.a, f.b, f.r2, f.r2_c, kt,
                             " ".join(map(str, f.used_k)), " ".join(map(str, f.dropped_one)),
                             " ".join(map(str, f.dropped_zero)), note])
    T.append(Table("coverage", f"Coverage law log c(k) = a·k^(−b) fit to pass@k",
                   [Col("cell"), Col("point"), Col("a", "num"), Col("b", "num"),
                    Col("R²", "num"), Col("R²_c", "num"),
                    Col(f"k for c = {an.coverage_target:g}", "num"), Col("k fitted"),
                    Col("k with c = 1 (left out)"), Col("k with c = 0 (left out)"),
                    Col("note")], rows_all))
    return T


def _subset(t: Table, pred, name_suffix="", title=None) -> Table:
    return Table(t.name + name_suffix, title or t.title, t.cols, [r for r in t.rows if pred(r)],
                 t.note)


def write_report(an: Analysis, out_dir: str, plots: bool = True) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    tdir = os.path.join(out_dir, "tables")
    pdir = os.path.join(out_dir, "plots")
    os.makedirs(tdir, exist_ok=True)
    tables = build_tables(an)
    csvs = [t.write_csv(tdir) for t in tables]
    images = {}
    if plots:
        from . import plots as P
        images = P.all_plots(an, pdir)
    by = {t.name: t for t in tables}
    meta = an.run.meta
    N = an.N
    md = []
    title = _spec_name(meta.get("spec_yaml")) or os.path.basename(os.path.dirname(an.run.path))
    md.append(f"# Sweep report: {title}\n")
    created = meta.get("created_unix")
    try:
        created = datetime.datetime.fromtimestamp(int(created), datetime.timezone.utc).isoformat()
    except (TypeError, ValueError):
        pass
    md.append("| run | |\n|---|---|")
    for k, v in [("served model", meta.get("served_model")), ("spec hash", meta.get("spec_hash")),
                 ("model config hash", meta.get("model_config_hash")),
                 ("ponder revision", meta.get("ponder_revision")), ("created", created),
                 ("samples per problem N", N), ("strategies", ", ".join(an.requested)),
                 ("points", len(an.points)), ("problems", len(an.overall.problems)),
                 ("report seed", an.seed), ("bootstrap resamples", an.resamples),
                 ("vote subsets per k", an.max_subsets), ("database", "results.sqlite")]:
        md.append(f"| {k} | {Table.cell('text', v)} |")
    md.append("")
    warns = list(an.warnings)
    if an.unknown_strategies:
        warns.append("strategies in meta that this report does not know: "
                     + ", ".join(an.unknown_strategies))
    failed = sum(an.compute[p.point_id].failed for p in an.points)
    if failed:
        warns.append(f"{failed} failed sample(s) in all: counted as wrong (in n, no vote); "
                     "per point in 'Points and failed samples'")
    if not an.has_direct:
        warns.append("no direct-answer point in this sweep: no compute multiplier")
    if warns:
        md.append("## Warnings\n")
        md += [f"* {w}" for w in warns]
        md.append("")

    def section(t: Table, level="##", extra=""):
        md.append(f"{level} {t.title}\n")
        if t.note:
            md.append(t.note + "\n")
        if extra:
            md.append(extra + "\n")
        md.append(t.markdown() if t.rows else "(none)")
        md.append(f"\nCSV: [tables/{t.name}.csv](tables/{t.name}.csv)\n")

    section(by["accuracy"])
    if images:
        md.append(f"![accuracy against k](plots/{images['accuracy_vs_k']})\n")
    section(by["points"])
    section(_subset(by["accuracy_by_k"], lambda r: r[0] == "all"), extra=(
        "All problems; the CSV has every level too."))
    section(_subset(by["differences"], lambda r: r[0] == "all" and r[2] == N), extra=(
        f"All problems, k = {N}; the CSV has every k and level."))
    section(by["levels"])
    if images:
        md.append(f"![per-level accuracy](plots/{images['levels']})\n")
    if an.show_budget:
        section(by["budget"])
        if images:
            md.append(f"![budget curve](plots/{images['budget']})\n")
        section(by["within_budget"])
    section(by["compute"])
    if images:
        md.append(f"![accuracy against FLOPs](plots/{images['accuracy_vs_flops']})\n")
    mult = by["multiplier"]
    section(_subset(mult, lambda r: r[2] == "pass@1" or r[3] == N), extra=(
        "pass@k, maj@k and wmaj@k at k all use k samples, so they share a cost; pass@1 and "
        f"k = N = {N} shown, every k in the CSV." if an.has_direct else ""))
    if "deployments" in by:
        section(by["deployments"], extra=(
            "Points that differ only in deployment axes send the same requests; their accuracies "
            "are in the tables above, one point each." if an.grid_deployment_axes() else ""))
        if images.get("throughput"):
            md.append(f"![throughput against the deployment](plots/{images['throughput']})\n")
    section(_subset(by["coverage"], lambda r: r[0] == "all"), extra=(
        "All problems; the CSV has the fit per level too."))
    if images:
        md.append(f"![coverage and its fit](plots/{images['coverage']})\n")
    md.append("## Method\n")
    md.append(METHOD.format(N=N, ks=", ".join(map(str, an.ks)), subsets=an.max_subsets,
                            seed=an.seed, resamples=an.resamples, small=SMALL_CELL,
                            target=an.coverage_target))
    md.append("## Spec\n")
    md.append("```yaml\n" + (meta.get("spec_yaml") or "(no spec_yaml in meta)").rstrip() + "\n```\n")
    other = {k: v for k, v in meta.items() if k not in ("spec_yaml",)}
    md.append("Meta:\n\n```json\n" + json.dumps(other, indent=1, sort_keys=True) + "\n```\n")
    md.append("## Provenance\n")
    for pt in an.points:
        md.append(f"* point {pt.point_id} `{pt.point_key}`: "
                  + (f"`{json.dumps(pt.provenance, sort_keys=True)}`" if pt.provenance is not None
                     else "(none)"))
    md.append("")
    if an.run.runs:
        md.append("Runs (`runs` table):\n")
        for r in an.run.runs:
            md.append(f"* run {r.run_id} `{r.deployment_json}` started_at {r.started_at!r} "
                      f"finished_at {r.finished_at!r}: "
                      + (f"`{json.dumps(r.provenance, sort_keys=True)}`"
                         if r.provenance is not None else "(none)"))
        md.append("")
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(md))
    return {"report": path, "csv": csvs,
            "plots": [os.path.join(pdir, v) for v in images.values()]}


def _spec_name(spec):
    if not spec:
        return None
    for line in spec.splitlines():
        if line.startswith("name:"):
            return line.split(":", 1)[1].strip().strip("'\"") or None
    return None
