#!/usr/bin/env bash
# Runs the CUDA backend's op and sampling tests under compute-sanitizer with one tool (memcheck,
# racecheck, initcheck or synccheck); any report fails. Exit 77 (ctest: skipped) without
# compute-sanitizer or a visible GPU.
# Usage: scripts/cuda_sanitize.sh BUILD_DIR TOOL [GTEST_FILTER]
set -uo pipefail
build="${1:?usage: cuda_sanitize.sh BUILD_DIR TOOL [GTEST_FILTER]}"
tool="${2:?usage: cuda_sanitize.sh BUILD_DIR TOOL [GTEST_FILTER]}"
filter="${3:-*}"
sanitizer="$(command -v compute-sanitizer || true)"
[ -z "$sanitizer" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && sanitizer=/usr/local/cuda/bin/compute-sanitizer
if [ -z "$sanitizer" ]; then
  echo "SKIP: compute-sanitizer not found"
  exit 77
fi
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIP: no GPU visible (nvidia-smi -L failed)"
  exit 77
fi
case "$tool" in
  memcheck) extra=(--leak-check full) ;;
  racecheck) extra=(--racecheck-report all) ;;
  *) extra=() ;;
esac
status=0
for t in worker_cuda_ops_test worker_cuda_sampling_test; do
  bin="$build/tests/worker/$t"
  if [ ! -x "$bin" ]; then
    echo "FAIL: $bin not built"
    status=1
    continue
  fi
  echo "== compute-sanitizer --tool $tool $t"
  "$sanitizer" --tool "$tool" --error-exitcode 1 "${extra[@]}" "$bin" --gtest_brief=1 \
      --gtest_filter="$filter" || status=1
done
exit $status
