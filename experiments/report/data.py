# Reading a sweep's results.sqlite (the schema the C++ runner writes) into per-point, per-problem
# arrays. Pure Python + numpy.
"""The results database of `ponder sweep` and its in-memory form.

Every sample row is kept: failed samples stay in their problem's sample list (status 'failed',
no answer, counted as wrong), so no row is ever dropped on the way to a metric.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from typing import Any, Optional

import numpy as np

# The schema of experiments/results_store.cpp (kSchema). SCHEMA_V1 is the first release's: no
# samples.nominal_flops / samples.run_id and no runs table; load() reads both (PRAGMA table_info).
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE points (point_id INTEGER PRIMARY KEY, point_key TEXT UNIQUE NOT NULL,
                     params_json TEXT NOT NULL, provenance_json TEXT);
CREATE TABLE problems (problem_id TEXT PRIMARY KEY, level INTEGER, question TEXT NOT NULL,
                       answer TEXT NOT NULL);
CREATE TABLE samples (sample_key TEXT PRIMARY KEY, point_id INTEGER NOT NULL,
                      problem_id TEXT NOT NULL, sample_index INTEGER NOT NULL, seed INTEGER,
                      status TEXT NOT NULL, error TEXT, content TEXT, reasoning TEXT,
                      extracted TEXT, correct INTEGER, prompt_tokens INTEGER,
                      cached_tokens INTEGER, completion_tokens INTEGER, reasoning_tokens INTEGER,
                      answer_tokens INTEGER, flops REAL, finish_reason TEXT, logprob_sum REAL,
                      latency_s REAL, attempts INTEGER, finished_unix INTEGER);
"""

# What was added since, as results_store.cpp adds it to an older store when it opens one.
SCHEMA = SCHEMA_V1 + """
ALTER TABLE samples ADD COLUMN nominal_flops REAL;
ALTER TABLE samples ADD COLUMN run_id INTEGER;
CREATE TABLE runs (run_id INTEGER PRIMARY KEY, deployment_json TEXT NOT NULL,
                   provenance_json TEXT, started_at REAL NOT NULL, finished_at REAL);
"""

# Grid keys that change the deployment, not the request (experiments/sweep_spec.cpp).
DEPLOYMENT_AXES = ("nodes", "tp", "pp", "replicas")

SAMPLE_COLUMNS = ("problem_id", "sample_index", "status", "error", "extracted", "correct",
                  "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens",
                  "answer_tokens", "flops", "finish_reason", "logprob_sum", "nominal_flops",
                  "run_id", "has_content")
# A column the store lacks (nominal_flops, run_id in SCHEMA_V1 stores) is read as NULL.
# Selected as an expression: whether the answer part (after </think>) is non-empty.
EXPRESSIONS = {"has_content": "(content IS NOT NULL AND content != '')"}


@dataclasses.dataclass
class ProblemSamples:
    """The samples of one problem at one point, ordered by sample_index."""
    problem_id: str
    level: Optional[int]
    sample_index: np.ndarray      # int
    ok: np.ndarray                # bool: status == 'ok'
    correct: np.ndarray           # bool: correct == 1 (failed / NULL -> False)
    extracted: list               # str or None (failed samples: None)
    logprob_sum: np.ndarray       # float, NaN where NULL
    completion_tokens: np.ndarray  # float, NaN where NULL
    reasoning_tokens: np.ndarray  # float, NaN where NULL
    answer_tokens: np.ndarray     # float, NaN where NULL
    flops: np.ndarray             # float, NaN where NULL: executed FLOPs (the request's, split)
    nominal_flops: np.ndarray     # float, NaN where NULL / absent: the sample's cost alone
    run_id: list                  # int or None (NULL / absent)
    has_content: np.ndarray       # bool: content non-empty
    prompt_tokens: np.ndarray     # float, NaN where NULL
    cached_tokens: np.ndarray     # float, NaN where NULL
    finish_reason: list
    errors: list                  # error text of failed samples

    @property
    def n(self) -> int:
        return len(self.sample_index)


@dataclasses.dataclass
class Point:
    point_id: int
    point_key: str
    params: dict
    provenance: Any
    problems: dict                # problem_id -> ProblemSamples

    def is_direct(self) -> bool:
        """A direct answer: thinking disabled, or a thinking budget of 0 tokens."""
        p = self.params
        return p.get("enable_thinking") is False or p.get("max_thinking_tokens") == 0

    def deployment(self) -> dict:
        """The point's deployment-axis values (nodes, tp, pp, replicas), {} without such axes."""
        return {k: self.params[k] for k in DEPLOYMENT_AXES if k in self.params}

    def label(self) -> str:
        p = self.params
        if p.get("enable_thinking") is False:
            think = "no thinking"
        elif p.get("max_thinking_tokens") is None:
            think = "think ∞"
        else:
            think = f"think {p['max_thinking_tokens']}"
        ext = p.get("extend_thinking")
        if ext:
            think += f" +ext {ext}"
        dep = "".join(f" {k}={v}" for k, v in self.deployment().items())
        return f"#{self.point_id} {think}{dep}"


@dataclasses.dataclass
class RunRecord:
    """A row of the runs table: one runner on one deployment."""
    run_id: int
    deployment_json: str
    deployment: Any               # the parsed deployment_json (a dict normally)
    provenance: Any               # the parsed provenance_json (None when NULL)
    started_at: Optional[float]
    finished_at: Optional[float]  # None: the run was killed

    def server_settings(self) -> dict:
        """provenance.server.ponder.server (a ponder server's settings), {} elsewhere."""
        p = self.provenance
        for key in ("server", "ponder", "server"):
            if not isinstance(p, dict):
                return {}
            p = p.get(key)
        return p if isinstance(p, dict) else {}


@dataclasses.dataclass
class Run:
    path: str
    meta: dict
    points: list                  # [Point], ordered by point_id
    levels: dict                  # problem_id -> level (None allowed)
    samples_declared: Optional[int]
    runs: list = dataclasses.field(default_factory=list)   # [RunRecord] by run_id
    has_runs: bool = False        # the store has a runs table
    sample_columns: frozenset = frozenset()   # columns of its samples table

    @property
    def has_nominal(self) -> bool:
        return "nominal_flops" in self.sample_columns

    @property
    def n_samples(self) -> int:
        """N: the declared samples per problem (meta 'samples'), else the largest seen."""
        seen = max((ps.n for pt in self.points for ps in pt.problems.values()), default=0)
        if self.samples_declared:
            return max(self.samples_declared, 1)
        return seen

    def strategies(self) -> list:
        raw = self.meta.get("strategies")
        if raw:
            try:
                v = json.loads(raw)
                if isinstance(v, list):
                    return [str(s) for s in v]
            except ValueError:
                pass
        return ["pass@1", "pass@k", "maj@k", "weighted-maj@k", "budget"]


def _f(v) -> float:
    return float("nan") if v is None else float(v)


def _json_or_text(v):
    if v is None:
        return None
    try:
        return json.loads(v)
    except ValueError:
        return v


def load(path: str) -> Run:
    """Reads RUN_DIR/results.sqlite (or the .sqlite file itself)."""
    db = os.path.join(path, "results.sqlite") if os.path.isdir(path) else path
    if not os.path.exists(db):
        raise FileNotFoundError(f"no results database at {db}")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        levels = dict(con.execute("SELECT problem_id, level FROM problems").fetchall())
        points = []
        for pid, key, params, prov in con.execute(
                "SELECT point_id, point_key, params_json, provenance_json FROM points "
                "ORDER BY point_id"):
            try:
                provenance = json.loads(prov) if prov else None
            except ValueError:
                provenance = prov
            points.append(Point(pid, key, json.loads(params), provenance, {}))
        by_id = {p.point_id: p for p in points}
        have = frozenset(r[1] for r in con.execute("PRAGMA table_info(samples)"))
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        runs = []
        if "runs" in tables:
            for rid, dep, prov, t0, t1 in con.execute(
                    "SELECT run_id, deployment_json, provenance_json, started_at, finished_at "
                    "FROM runs ORDER BY run_id"):
                runs.append(RunRecord(rid, dep, _json_or_text(dep), _json_or_text(prov),
                                      t0, t1))
        exprs = [EXPRESSIONS.get(c, c) if (c in have or c in EXPRESSIONS) else "NULL"
                 for c in SAMPLE_COLUMNS]
        rows: dict = {}
        q = ("SELECT point_id, " + ", ".join(exprs) +
             " FROM samples ORDER BY point_id, problem_id, sample_index")
        for r in con.execute(q):
            rows.setdefault((r[0], r[1]), []).append(r[1:])
    finally:
        con.close()
    unknown = sorted({k[0] for k in rows} - set(by_id))
    if unknown:
        raise ValueError(f"samples reference points missing from the points table: {unknown}")
    for (point_id, problem_id), rs in rows.items():
        c = {name: [r[i] for r in rs] for i, name in enumerate(SAMPLE_COLUMNS)}
        ok = np.array([s == "ok" for s in c["status"]])
        by_id[point_id].problems[problem_id] = ProblemSamples(
            problem_id=problem_id,
            level=levels.get(problem_id),
            sample_index=np.array(c["sample_index"], dtype=np.int64),
            ok=ok,
            correct=np.array([bool(o) and v == 1 for o, v in zip(ok, c["correct"])]),
            extracted=[e if o and e is not None and e.strip() != "" else None
                       for o, e in zip(ok, c["extracted"])],
            logprob_sum=np.array([_f(v) for v in c["logprob_sum"]]),
            completion_tokens=np.array([_f(v) for v in c["completion_tokens"]]),
            reasoning_tokens=np.array([_f(v) for v in c["reasoning_tokens"]]),
            answer_tokens=np.array([_f(v) for v in c["answer_tokens"]]),
            flops=np.array([_f(v) for v in c["flops"]]),
            nominal_flops=np.array([_f(v) for v in c["nominal_flops"]]),
            run_id=list(c["run_id"]),
            has_content=np.array([bool(v) for v in c["has_content"]], dtype=bool),
            prompt_tokens=np.array([_f(v) for v in c["prompt_tokens"]]),
            cached_tokens=np.array([_f(v) for v in c["cached_tokens"]]),
            finish_reason=list(c["finish_reason"]),
            errors=[e for s, e in zip(c["status"], c["error"]) if s != "ok"],
        )
    declared = meta.get("samples")
    try:
        declared = int(declared) if declared is not None else None
    except ValueError:
        declared = None
    return Run(db, meta, points, levels, declared, runs, "runs" in tables, have)
