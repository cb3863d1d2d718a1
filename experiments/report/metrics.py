# Per-problem scores of the test-time-compute strategies (pass@1, unbiased pass@k, maj@k,
# logprob-weighted maj@k) from one superset of N samples, subsampled for every k. numpy only.
"""Strategy estimators over the N stored samples of a problem.

Every function returns the score of ONE problem (a number in [0, 1]); the accuracy of a point is
the mean over its problems. Formulas (n = samples stored for the problem, failed ones included;
c = samples with correct = 1):

  pass@1       = c / n                                  (DeepSeek-R1: mean over the n samples)
  pass@k       = 1 - C(n-c, k) / C(n, k)                (Chen et al. 2021, unbiased)
  maj@k        = mean over size-k subsets S of [vote(S) is correct]
  wmaj@k       = same with the logprob-weighted vote

Subsets: all C(n, k) of them when C(n, k) <= `max_subsets` (exact), else `max_subsets` uniform
random k-subsets (each without replacement) from numpy.random.default_rng([seed, n, k]): row i is
the first k entries of a random permutation of 0..n-1 (`Generator.permuted` of the tiled
identity), indices into the samples ordered by sample_index. The same subsets serve every
problem and every point that has n samples (common random numbers: paired comparisons).

Votes: only samples with an extracted answer vote (failed samples and samples with no answer do
not, but stay in n). A subset in which nobody votes scores 0.
  maj:  the answer with the most votes; a tie goes to the answer with the higher sum of
        logprob_sum over its voting samples in the subset (NULL logprob_sum counts as -inf),
        then to the smallest answer string (Python string order).
  wmaj: the answer with the largest total weight, w = exp(logprob_sum / completion_tokens) per
        voting sample (the geometric-mean token probability, in (0, 1]; 0 when logprob_sum is
        NULL or completion_tokens is NULL/0); a tie goes to more votes, then the smallest string.
An answer is correct when any of its samples has correct = 1.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from typing import Optional

import numpy as np

try:
    from experiments.tasks.metrics import pass_at_k
except ImportError:  # run from elsewhere than the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from experiments.tasks.metrics import pass_at_k

DEFAULT_MAX_SUBSETS = 200
STRATEGIES = ("pass@1", "pass@k", "maj@k", "wmaj@k")


def k_grid(n: int) -> list:
    """k = 1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    if n >= 1:
        ks.append(n)
    return ks


_SUBSET_CACHE: dict = {}


def subsets(n: int, k: int, seed: int, max_subsets: int = DEFAULT_MAX_SUBSETS) -> np.ndarray:
    """The size-k subsets (rows of sample positions 0..n-1) the vote estimators average over."""
    key = (n, k, seed, max_subsets)
    if key not in _SUBSET_CACHE:
        if k > n or k < 1:
            raise ValueError(f"k={k} needs 1 <= k <= n={n}")
        if math.comb(n, k) <= max_subsets:
            s = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
        else:
            rng = np.random.default_rng([seed, n, k])
            s = rng.permuted(np.tile(np.arange(n, dtype=np.int64), (max_subsets, 1)),
                             axis=1)[:, :k]
        _SUBSET_CACHE[key] = s
    return _SUBSET_CACHE[key]


def sample_weight(logprob_sum: np.ndarray, completion_tokens: np.ndarray) -> np.ndarray:
    """w = exp(logprob_sum / completion_tokens); 0 where either is missing or tokens <= 0."""
    lp = np.asarray(logprob_sum, dtype=float)
    ct = np.asarray(completion_tokens, dtype=float)
    good = np.isfinite(lp) & np.isfinite(ct) & (ct > 0)
    w = np.zeros(len(lp))
    w[good] = np.exp(lp[good] / ct[good])
    return w


class Votes:
    """One problem's samples as vote classes: answers sorted by string, -1 for no answer."""

    def __init__(self, extracted, correct, logprob_sum, completion_tokens):
        answers = sorted({a for a in extracted if a is not None})
        index = {a: i for i, a in enumerate(answers)}
        self.answers = answers
        self.r = len(answers)
        self.n = len(extracted)
        self.cls = np.array([-1 if a is None else index[a] for a in extracted], dtype=np.int64)
        correct = np.asarray(correct, dtype=bool)
        self.class_correct = np.zeros(self.r + 1, dtype=bool)   # the extra slot: no answer
        for c, ok in zip(self.cls, correct):
            if c >= 0 and ok:
                self.class_correct[c] = True
        lp = np.asarray(logprob_sum, dtype=float)
        self.lp = np.where(np.isfinite(lp), lp, -np.inf)
        self.w = sample_weight(logprob_sum, completion_tokens)

    def _tally(self, S: np.ndarray):
        m, k = S.shape
        r1 = self.r + 1
        a = self.cls[S]
        a = np.where(a >= 0, a, self.r)
        flat = (a + (np.arange(m) * r1)[:, None]).ravel()
        counts = np.bincount(flat, minlength=m * r1).reshape(m, r1)
        lps = self.lp[S].ravel()
        # bincount cannot add -inf; sum finite parts, then mark classes holding a -inf
        fin = np.isfinite(lps)
        lpsum = np.bincount(flat, weights=np.where(fin, lps, 0.0), minlength=m * r1)
        has_inf = np.bincount(flat, weights=(~fin).astype(float), minlength=m * r1) > 0
        lpsum = np.where(has_inf, -np.inf, lpsum).reshape(m, r1)
        wsum = np.bincount(flat, weights=self.w[S].ravel(), minlength=m * r1).reshape(m, r1)
        return counts[:, :self.r], lpsum[:, :self.r], wsum[:, :self.r]

    def winners(self, S: np.ndarray, weighted: bool) -> np.ndarray:
        """The winning class per subset row; self.r (the 'no answer' slot) where nobody voted."""
        m = S.shape[0]
        if self.r == 0:
            return np.full(m, self.r)
        counts, lpsum, wsum = self._tally(S)
        voted = counts.max(axis=1) > 0
        if weighted:
            key1 = np.where(counts > 0, wsum, -1.0)
            tie = key1 == key1.max(axis=1, keepdims=True)
            key2 = np.where(tie, counts, -1)
            tie &= key2 == key2.max(axis=1, keepdims=True)
        else:
            tie = counts == counts.max(axis=1, keepdims=True)
            key2 = np.where(tie, lpsum, -np.inf)
            tie &= key2 == key2.max(axis=1, keepdims=True)
        win = np.argmax(tie, axis=1)          # first True: the smallest answer string
        return np.where(voted, win, self.r)

    def vote_score(self, k: int, seed: int, weighted: bool,
                   max_subsets: int = DEFAULT_MAX_SUBSETS) -> float:
        if k > self.n:
            return float("nan")
        S = subsets(self.n, k, seed, max_subsets)
        return float(self.class_correct[self.winners(S, weighted)].mean())


def pass1(correct) -> float:
    c = np.asarray(correct, dtype=bool)
    return float(c.mean()) if len(c) else float("nan")


def passk(correct, k: int) -> float:
    c = np.asarray(correct, dtype=bool)
    n = len(c)
    if k > n or n == 0:
        return float("nan")
    return pass_at_k(n, int(c.sum()), k)


def problem_scores(extracted, correct, logprob_sum, completion_tokens, ks, seed: int,
                   max_subsets: int = DEFAULT_MAX_SUBSETS) -> dict:
    """{(strategy, k): score} of one problem; pass@1 is stored under k = 1 only."""
    v = Votes(extracted, correct, logprob_sum, completion_tokens)
    out = {("pass@1", 1): pass1(correct)}
    for k in ks:
        out[("pass@k", k)] = passk(correct, k)
        out[("maj@k", k)] = v.vote_score(k, seed, False, max_subsets)
        out[("wmaj@k", k)] = v.vote_score(k, seed, True, max_subsets)
    return out


def majority_of(answers, logprobs) -> Optional[str]:
    """The maj vote of one explicit set of samples (reference implementation, plain Python)."""
    tally: dict = {}
    for a, lp in zip(answers, logprobs):
        if a is None:
            continue
        cnt, s = tally.get(a, (0, 0.0))
        lp = -math.inf if lp is None or (isinstance(lp, float) and math.isnan(lp)) else lp
        tally[a] = (cnt + 1, s + lp)
    if not tally:
        return None
    return min(tally, key=lambda a: (-tally[a][0], -tally[a][1], a))


def weighted_majority_of(answers, logprobs, completion_tokens) -> Optional[str]:
    """The wmaj vote of one explicit set of samples (reference implementation, plain Python)."""
    tally: dict = {}
    for a, lp, ct in zip(answers, logprobs, completion_tokens):
        if a is None:
            continue
        ok = lp is not None and ct is not None and ct > 0 and math.isfinite(lp)
        w = math.exp(lp / ct) if ok else 0.0
        cnt, s = tally.get(a, (0, 0.0))
        tally[a] = (cnt + 1, s + w)
    if not tally:
        return None
    return min(tally, key=lambda a: (-tally[a][1], -tally[a][0], a))
