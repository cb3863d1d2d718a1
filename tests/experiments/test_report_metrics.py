# Unit tests of the sweep report's estimators (experiments/report): pass@1, pass@k, maj@k and
# weighted maj@k on hand-computed cases, the vote subsets, the coverage-law fit and the
# bootstrap. /usr/bin/python3 with Debian's python3-numpy.
#
#   /usr/bin/python3 -m unittest tests/experiments/test_report_metrics.py   (from the repository root)

import itertools
import math
import os
import sys
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from experiments.report import metrics, stats  # noqa: E402


def brute_vote(extracted, correct, lps, cts, k, weighted):
    """Exact mean over all C(n, k) subsets with the plain-Python reference votes."""
    n = len(extracted)
    right = {a for a, c in zip(extracted, correct) if c and a is not None}
    tot = 0
    combos = list(itertools.combinations(range(n), k))
    for S in combos:
        a = [extracted[i] for i in S]
        lp = [lps[i] for i in S]
        if weighted:
            w = metrics.weighted_majority_of(a, lp, [cts[i] for i in S])
        else:
            w = metrics.majority_of(a, lp)
        tot += w is not None and w in right
    return tot / len(combos)


def scores(extracted, correct, lps=None, cts=None, ks=None, seed=0, max_subsets=200):
    n = len(extracted)
    lps = [-1.0] * n if lps is None else lps
    cts = [10] * n if cts is None else cts
    lpa = np.array([np.nan if v is None else v for v in lps], dtype=float)
    cta = np.array([np.nan if v is None else v for v in cts], dtype=float)
    return metrics.problem_scores(extracted, correct, lpa, cta, ks or metrics.k_grid(n), seed,
                                  max_subsets)


class PassAtK(unittest.TestCase):
    def test_grid(self):
        self.assertEqual(metrics.k_grid(16), [1, 2, 4, 8, 16])
        self.assertEqual(metrics.k_grid(12), [1, 2, 4, 8, 12])
        self.assertEqual(metrics.k_grid(1), [1])

    def test_hand_cases(self):
        c = [True, False, True, False]
        self.assertAlmostEqual(metrics.pass1(c), 0.5)
        self.assertAlmostEqual(metrics.passk(c, 2), 1 - 1 / 6)   # 1 - C(2,2)/C(4,2)
        self.assertAlmostEqual(metrics.passk(c, 3), 1.0)          # n - c < k
        self.assertAlmostEqual(metrics.passk(c, 4), 1.0)
        c = [True] + [False] * 7
        self.assertAlmostEqual(metrics.passk(c, 2), 1 - math.comb(7, 2) / math.comb(8, 2))
        self.assertTrue(math.isnan(metrics.passk(c, 9)))

    def test_all_wrong_all_right(self):
        s = scores(["1", "2", None, "2"], [False] * 4)
        self.assertTrue(all(v == 0 for v in s.values()), s)
        s = scores(["5"] * 4, [True] * 4)
        self.assertTrue(all(v == 1 for v in s.values()), s)


class Votes(unittest.TestCase):
    def test_tie_goes_to_higher_summed_logprob(self):
        # one vote each: "8" has the higher logprob_sum
        s = scores(["7", "8"], [True, False], lps=[-5.0, -3.0], ks=[2])
        self.assertEqual(s[("maj@k", 2)], 0.0)
        s = scores(["7", "8"], [True, False], lps=[-3.0, -5.0], ks=[2])
        self.assertEqual(s[("maj@k", 2)], 1.0)
        # 2 votes each: sums -2-2 = -4 for "7" against -1-4 = -5 for "8"
        s = scores(["7", "8", "7", "8"], [True, False, True, False],
                   lps=[-2.0, -1.0, -2.0, -4.0], ks=[4])
        self.assertEqual(s[("maj@k", 4)], 1.0)

    def test_tie_then_smallest_string(self):
        # equal logprobs: the smallest string in Python order ("10" < "7")
        s = scores(["7", "10"], [True, False], lps=[-1.0, -1.0], ks=[2])
        self.assertEqual(s[("maj@k", 2)], 0.0)
        s = scores(["7", "10"], [False, True], lps=[-1.0, -1.0], ks=[2])
        self.assertEqual(s[("maj@k", 2)], 1.0)
        # a NULL logprob counts as -inf: the other answer wins the tie
        s = scores(["5", "6"], [True, False], lps=[None, -100.0], ks=[2])
        self.assertEqual(s[("maj@k", 2)], 0.0)
        self.assertEqual(metrics.majority_of(["5", "6"], [None, -100.0]), "6")

    def test_k_equals_n_is_the_vote_of_all(self):
        ext = ["3", "3", "4", "4", "4", None]
        cor = [True, True, False, False, False, False]
        s = scores(ext, cor)
        self.assertEqual(s[("maj@k", 6)], 0.0)
        self.assertEqual(s[("pass@k", 6)], 1.0)
        self.assertAlmostEqual(s[("pass@1", 1)], 2 / 6)
        self.assertAlmostEqual(s[("maj@k", 1)], 2 / 6)   # maj@1 = pass@1

    def test_failed_samples_stay_in_n_and_do_not_vote(self):
        # rows 1, 2 failed (no answer, not correct): n = 4
        ext = ["3", None, None, "4"]
        cor = [True, False, False, False]
        s = scores(ext, cor, lps=[-1.0, None, None, -2.0], ks=[1, 2, 4])
        self.assertAlmostEqual(s[("pass@1", 1)], 0.25)
        self.assertAlmostEqual(s[("pass@k", 2)], 1 - math.comb(3, 2) / math.comb(4, 2))
        self.assertEqual(s[("maj@k", 4)], 1.0)        # 1 vote each, "3" has the higher logprob
        # k = 2: subsets {0,1},{0,2},{0,3} right, {1,2} nobody votes, {1,3},{2,3} wrong
        self.assertAlmostEqual(s[("maj@k", 2)], 3 / 6)
        all_failed = scores([None] * 3, [False] * 3, lps=[None] * 3, cts=[None] * 3)
        self.assertTrue(all(v == 0 for v in all_failed.values()))

    def test_subset_average_hand_case(self):
        # "1" right; ties between "1" and "2" go to "2" (higher logprob): 3 of 6 pairs right
        ext, cor = ["1", "1", "2", None], [True, True, False, False]
        lps = [-10.0, -10.0, -1.0, -1.0]
        s = scores(ext, cor, lps=lps, ks=[2])
        self.assertAlmostEqual(s[("maj@k", 2)], 0.5)
        self.assertAlmostEqual(brute_vote(ext, cor, lps, [10] * 4, 2, False), 0.5)

    def test_weighted_vote(self):
        # w = exp(lp / tokens): "A" 2 votes of exp(-2) each = 0.27, "B" 1 vote of exp(-0.1)
        ext, cor = ["A", "A", "B"], [False, False, True]
        lps, cts = [-20.0, -20.0, -1.0], [10, 10, 10]
        s = scores(ext, cor, lps=lps, cts=cts, ks=[3])
        self.assertEqual(s[("maj@k", 3)], 0.0)
        self.assertEqual(s[("wmaj@k", 3)], 1.0)
        w = metrics.sample_weight(np.array([-20.0, np.nan, -3.0]), np.array([10, 5, 0]))
        np.testing.assert_allclose(w, [math.exp(-2), 0, 0])
        # equal weights: more votes, then the smallest string
        self.assertEqual(metrics.weighted_majority_of(["b", "a"], [None, None], [1, 1]), "a")
        s = scores(["b", "a", "b"], [True, False, True], lps=[None] * 3, ks=[3])
        self.assertEqual(s[("wmaj@k", 3)], 1.0)

    def test_exact_matches_brute_force(self):
        rng = np.random.default_rng(3)
        for trial in range(30):
            n = int(rng.integers(1, 8))
            pool = ["1", "2", "3", None]
            ext = [pool[i] for i in rng.integers(0, 4, n)]
            cor = [a == "1" for a in ext]
            lps = [float(v) for v in rng.integers(-6, 0, n)]     # integers: ties happen
            cts = [int(v) for v in rng.integers(1, 4, n)]
            s = scores(ext, cor, lps=lps, cts=cts)
            for k in metrics.k_grid(n):
                for strat, wt in (("maj@k", False), ("wmaj@k", True)):
                    self.assertAlmostEqual(s[(strat, k)], brute_vote(ext, cor, lps, cts, k, wt),
                                           msg=f"{ext} {lps} {cts} k={k} {strat}")

    def test_random_subsets(self):
        n, k = 10, 5                        # C(10, 5) = 252 > 200: random subsets
        S = metrics.subsets(n, k, seed=11)
        self.assertEqual(S.shape, (200, 5))
        self.assertTrue(all(len(set(r)) == k for r in S.tolist()))
        again = np.random.default_rng([11, n, k]).permuted(
            np.tile(np.arange(n), (200, 1)), axis=1)[:, :k]
        np.testing.assert_array_equal(S, again)               # the documented draw
        self.assertFalse(np.array_equal(S, metrics.subsets(n, k, seed=12)))
        self.assertEqual(metrics.subsets(6, 3, seed=1).shape, (20, 3))   # all of them
        ext = ["1"] * 4 + ["2"] * 3 + ["3"] * 2 + [None]
        cor = [a == "1" for a in ext]
        lps = [-1.0] * n
        s = scores(ext, cor, lps=lps, ks=[5], seed=11)
        right = {"1"}
        mc = np.mean([metrics.majority_of([ext[i] for i in r], [lps[i] for i in r]) in right
                      for r in S.tolist()])
        self.assertAlmostEqual(s[("maj@k", 5)], mc)         # the stated estimator
        exact = brute_vote(ext, cor, lps, [10] * n, 5, False)
        self.assertLess(abs(s[("maj@k", 5)] - exact), 0.1)  # and close to the exact mean


class CoverageFit(unittest.TestCase):
    def test_recovers_known_a_b(self):
        ks = np.array([1, 2, 4, 8, 16, 32, 64, 128])
        for a, b in ((-1.5, 0.6), (-0.3, 1.2), (-4.0, 0.25)):
            c = np.exp(a * ks ** (-b))
            f = stats.fit_coverage(ks, c)
            self.assertTrue(f.ok)
            self.assertAlmostEqual(f.a, a, places=9)
            self.assertAlmostEqual(f.b, b, places=9)
            self.assertAlmostEqual(f.r2, 1.0, places=9)
            for t in (0.5, 0.9, 0.99):
                kt = f.k_for(t)
                self.assertAlmostEqual(float(f.predict(kt)), t, places=9)

    def test_noisy_and_edge_values(self):
        rng = np.random.default_rng(5)
        ks = np.array([1, 2, 4, 8, 16, 32])
        a, b = -1.0, 0.5
        c = np.exp(a * ks ** (-b) * np.exp(rng.normal(0, 0.02, len(ks))))
        f = stats.fit_coverage(ks, c)
        self.assertLess(abs(f.a - a), 0.1)
        self.assertLess(abs(f.b - b), 0.1)
        self.assertGreater(f.r2, 0.95)
        # c = 1 and c = 0 are left out and listed
        f = stats.fit_coverage([1, 2, 4, 8], [0.0, 0.3, 0.6, 1.0])
        self.assertEqual(f.dropped_zero, [1])
        self.assertEqual(f.dropped_one, [8])
        self.assertEqual(f.used_k, [2, 4])
        f = stats.fit_coverage([1, 2, 4], [0.5, 1.0, 1.0])
        self.assertFalse(f.ok)
        self.assertTrue(math.isnan(f.k_for(0.9)))


class Bootstrap(unittest.TestCase):
    def test_reproducible(self):
        x = np.random.default_rng(1).random((50, 3))
        a = stats.bootstrap_means(x, 1500, seed=4, cell_no=0)
        b = stats.bootstrap_means(x, 1500, seed=4, cell_no=0)
        c = stats.bootstrap_means(x, 1500, seed=5, cell_no=0)
        np.testing.assert_array_equal(a, b)
        self.assertFalse(np.array_equal(a, c))
        # the documented draw: integers(0, P, (chunk, P)) per chunk of 1000, in order
        rng = np.random.default_rng([4, 0])
        means = [x[rng.integers(0, 50, size=(m, 50))].mean(axis=1) for m in (1000, 500)]
        np.testing.assert_allclose(a, np.concatenate(means), rtol=1e-12)

    def test_missing_problems_are_left_out(self):
        x = np.array([[1.0, 1.0], [0.0, np.nan], [1.0, 1.0]])
        m = stats.bootstrap_means(x, 200, seed=0, cell_no=0)
        self.assertTrue(np.all(m[np.isfinite(m[:, 1]), 1] == 1.0))

    def test_ci_covers_the_truth(self):
        rng = np.random.default_rng(20250101)
        p, P, hits, hits_diff, trials = 0.6, 150, 0, 0, 80
        for t in range(trials):
            # per-problem success probabilities around p; the score is the mean of 8 samples
            q = np.clip(rng.normal(p, 0.2, P), 0, 1)
            q = q - q.mean() + p                       # the population mean is exactly p
            s1 = rng.binomial(8, np.clip(q, 0, 1)) / 8
            s2 = np.clip(s1 + rng.normal(0.05, 0.05, P), 0, 1)   # a paired, better strategy
            boot = stats.bootstrap_means(np.stack([s1, s2], 1), 1000, seed=t, cell_no=0)
            lo, hi = stats.percentile_ci(boot[:, 0])
            hits += lo <= p <= hi
            true_diff = float(np.mean(np.clip(s1 + 0.05, 0, 1) - s1))  # approximately
            dlo, dhi = stats.percentile_ci(boot[:, 1] - boot[:, 0])
            hits_diff += dlo <= true_diff <= dhi
            self.assertLess(dhi - dlo, hi - lo)        # pairing: the difference is tighter
        self.assertGreaterEqual(hits / trials, 0.85)
        self.assertGreaterEqual(hits_diff / trials, 0.85)

    def test_percentile(self):
        v = np.arange(1001, dtype=float)
        lo, hi = stats.percentile_ci(v)
        self.assertAlmostEqual(lo, 25.0)
        self.assertAlmostEqual(hi, 975.0)


if __name__ == "__main__":
    unittest.main()
