# The report half of `ponder sweep`: reads RUN_DIR/results.sqlite, writes report.md, plots and
# CSVs. Run as `python3 -m experiments.report RUN_DIR`. See docs/experiments.md, "The report".
