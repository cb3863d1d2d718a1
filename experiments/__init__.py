# Experiments on ponder: task suites and (later) the test-time-scaling runner.
