# Task suites (problems, splits, answer checkers) for ponder's experiments.
