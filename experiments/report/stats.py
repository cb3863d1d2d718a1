# Bootstrap confidence intervals over problems (paired across strategies and points) and the
# coverage-law fit of Large Language Monkeys. numpy only.
"""Bootstrap and coverage fit.

Bootstrap (percentile method): a cell (one difficulty level, or all problems) has P problems;
resample b = 1..B draws P problem indices uniformly with replacement (numpy
default_rng([seed, cell_no]).integers(0, P, (chunk, P)), chunks of 1000 rows in order), giving
count weights W[b, p]. Every per-problem score vector x (one per point, strategy and k) of the
cell is averaged with the SAME weights, mean_b = sum_p W[b,p] x_p / sum_p W[b,p] (problems a
point lacks are left out of both sums), so differences between any two vectors are paired: the
CI of maj@k - pass@1 is the percentile interval of mean_b(maj@k) - mean_b(pass@1). The 95 % CI
is [2.5th, 97.5th] percentile (numpy.percentile, linear interpolation) of the B values.

Coverage law (Brown et al. 2024): log c(k) = a * k^(-b), i.e. c(k) = exp(a * k^(-b)), a < 0,
b > 0. With y = log(-log c) = log(-a) - b log k, ordinary least squares of y on log k
(numpy.polyfit, degree 1) over the k with 0 < c(k) < 1; k with c = 1 (log(-log c) = -inf) or
c = 0 (+inf) are left out of the fit and listed. R^2 = 1 - SS_res / SS_tot of that linear fit
(in the y = log(-log c) space); R^2_c is the same in coverage space. The k needed for coverage
t: k(t) = (log t / a)^(-1/b).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

CHUNK = 1000


def bootstrap_weights(n_problems: int, resamples: int, seed: int, cell_no: int):
    """Yields the count-weight matrices W (chunk x P, float64) of the resamples in order."""
    rng = np.random.default_rng([seed, cell_no])
    done = 0
    while done < resamples:
        m = min(CHUNK, resamples - done)
        idx = rng.integers(0, n_problems, size=(m, n_problems))
        flat = (idx + (np.arange(m) * n_problems)[:, None]).ravel()
        W = np.bincount(flat, minlength=m * n_problems).reshape(m, n_problems).astype(float)
        yield W
        done += m


def bootstrap_means(X: np.ndarray, resamples: int, seed: int, cell_no: int) -> np.ndarray:
    """X: P x M per-problem scores (NaN = the problem is missing from that column). Returns the
    B x M bootstrap means (NaN where a resample holds none of a column's problems)."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    P, M = X.shape
    present = np.isfinite(X)
    Xz = np.where(present, X, 0.0)
    Pm = present.astype(float)
    out = np.empty((resamples, M))
    row = 0
    for W in bootstrap_weights(P, resamples, seed, cell_no):
        num = W @ Xz
        den = W @ Pm
        with np.errstate(invalid="ignore", divide="ignore"):
            out[row:row + len(W)] = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        row += len(W)
    return out


def percentile_ci(values: np.ndarray, level: float = 0.95):
    """(lo, hi) percentile interval of a 1-D array of bootstrap values (NaNs ignored)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (float("nan"), float("nan"))
    a = (1 - level) / 2 * 100
    lo, hi = np.percentile(v, [a, 100 - a])
    return (float(lo), float(hi))


@dataclasses.dataclass
class CoverageFit:
    a: float
    b: float
    r2: float                 # in log(-log c) space: what the least squares minimises
    r2_c: float               # in coverage space
    used_k: list
    dropped_one: list         # k with c = 1
    dropped_zero: list        # k with c = 0
    ok: bool
    note: str = ""

    def predict(self, k) -> np.ndarray:
        return np.exp(self.a * np.power(np.asarray(k, dtype=float), -self.b))

    def k_for(self, target: float) -> float:
        """k with predicted coverage `target` (0 < target < 1); NaN when the fit cannot reach it."""
        if not self.ok or not (0 < target < 1) or not (self.a < 0 and self.b > 0):
            return float("nan")
        return float((math.log(target) / self.a) ** (-1.0 / self.b))


def fit_coverage(ks, cs) -> CoverageFit:
    ks = np.asarray(ks, dtype=float)
    cs = np.asarray(cs, dtype=float)
    good = np.isfinite(cs)
    one = [int(k) for k, c in zip(ks, cs) if np.isfinite(c) and c >= 1.0]
    zero = [int(k) for k, c in zip(ks, cs) if np.isfinite(c) and c <= 0.0]
    use = good & (cs > 0) & (cs < 1)
    used = [int(k) for k in ks[use]]
    nan = float("nan")
    if use.sum() < 2:
        return CoverageFit(nan, nan, nan, nan, used, one, zero, False,
                           "fewer than 2 values of k with 0 < pass@k < 1")
    x = np.log(ks[use])
    y = np.log(-np.log(cs[use]))
    slope, intercept = np.polyfit(x, y, 1)
    a, b = -math.exp(intercept), -slope
    yhat = intercept + slope * x
    ss_res = float(((y - yhat) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else nan)
    chat = np.exp(a * np.power(ks[use], -b))
    ss_res_c = float(((cs[use] - chat) ** 2).sum())
    ss_tot_c = float(((cs[use] - cs[use].mean()) ** 2).sum())
    r2_c = 1 - ss_res_c / ss_tot_c if ss_tot_c > 0 else (1.0 if ss_res_c == 0 else nan)
    note = "" if b > 0 else "b <= 0: coverage does not grow with k"
    return CoverageFit(float(a), float(b), float(r2), float(r2_c), used, one, zero, True, note)
