# python3 -m experiments.report RUN_DIR [--out DIR] [--seed S] [--resamples B] [--subsets M]
"""Writes the report of a `ponder sweep` run: report.md, plots/*.png, tables/*.csv."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time

from .analysis import Analysis
from .data import load
from .metrics import DEFAULT_MAX_SUBSETS
from .render import write_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m experiments.report", description=__doc__)
    ap.add_argument("run_dir", help="the sweep's run directory (holds results.sqlite)")
    ap.add_argument("--out", help="where report.md, plots/ and tables/ go (default RUN_DIR)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the vote subsets and the "
                    "bootstrap (default 0)")
    ap.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples")
    ap.add_argument("--subsets", type=int, default=DEFAULT_MAX_SUBSETS,
                    help="vote subsets per k when C(n, k) is larger (default 200)")
    ap.add_argument("--coverage-target", type=float, default=0.9,
                    help="coverage whose k the fit reports (default 0.9)")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    if a.resamples < 1 or a.subsets < 1 or not (0 < a.coverage_target < 1):
        ap.error("--resamples and --subsets must be >= 1, --coverage-target in (0, 1)")
    t0 = time.time()
    try:
        run = load(a.run_dir)
    except (OSError, ValueError, sqlite3.Error) as e:
        print(f"experiments.report: {e}", file=sys.stderr)
        return 2
    if not run.points or not any(pt.problems for pt in run.points):
        print(f"experiments.report: {run.path} holds no points or no sample rows",
              file=sys.stderr)
        return 2
    an = Analysis(run, seed=a.seed, resamples=a.resamples, max_subsets=a.subsets,
                  coverage_target=a.coverage_target)
    out = a.out or (a.run_dir if os.path.isdir(a.run_dir) else os.path.dirname(a.run_dir) or ".")
    res = write_report(an, out, plots=not a.no_plots)
    print(f"report: {res['report']} ({len(res['csv'])} CSV, {len(res['plots'])} plots, "
          f"{time.time() - t0:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
