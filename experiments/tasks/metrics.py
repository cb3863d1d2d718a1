# Accuracy metrics over sampled completions (greedy, pass@1, unbiased pass@k, majority vote
# maj@k) per difficulty level, graded by a task's answer checker. Pure Python.
"""Grading of completions against task records.

Completions are JSONL, one line per problem: {"id": ..., "completions": ["...", ...]} (or
{"id": ..., "completion": "..."} for a single one). Records are the task JSONL lines
({"id", "question", "answer", "difficulty"}).
"""

from __future__ import annotations

import collections
import math
from typing import Callable, Optional, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021) from n samples of which c are correct."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def majority_answer(answers: Sequence[Optional[str]]) -> Optional[str]:
    """The most frequent non-missing answer; ties go to the answer seen first."""
    counts = collections.Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def completions_of(line: dict) -> list[str]:
    if "completions" in line:
        return list(line["completions"])
    return [line["completion"]]


def grade(records: Sequence[dict], completions: dict[str, list[str]],
          extract: Callable[[str], Optional[str]], normalize: Callable[[str], str],
          k: Optional[int] = None) -> dict[str, dict]:
    """Per-level metrics {"<difficulty>": {"n", "samples", "pass@1", "pass@k", "maj@k"}} over
    the records that have completions; k defaults to the smallest sample count. Every graded
    problem must have at least k samples. A single sample gives only "pass@1"."""
    by_level: dict[str, list[tuple[str, list[Optional[str]]]]] = collections.defaultdict(list)
    for r in records:
        if r["id"] not in completions:
            continue
        answers = [extract(c) for c in completions[r["id"]]]
        by_level[str(r["difficulty"])].append((normalize(r["answer"]), answers))
    if not by_level:
        raise ValueError("no completion matches a record id")
    if k is None:
        k = min(len(a) for items in by_level.values() for _, a in items)
    out = {}
    for level in sorted(by_level, key=int):
        items = by_level[level]
        n_samples = min(len(a) for _, a in items)
        if n_samples < k:
            raise ValueError(f"level {level}: a problem has {n_samples} samples, fewer than k={k}")
        m = {"n": len(items), "samples": n_samples}
        m["pass@1"] = sum(sum(a == ref for a in ans) / len(ans) for ref, ans in items) / len(items)
        if k > 1:
            m[f"pass@{k}"] = sum(pass_at_k(len(ans), sum(a == ref for a in ans), k)
                                 for ref, ans in items) / len(items)
            m[f"maj@{k}"] = sum(majority_answer(ans[:k]) == ref for ref, ans in items) / len(items)
        out[level] = m
    return out
