#!/usr/bin/env bash
# Everything the CUDA backend needs a GPU for, in one command on a GPU machine: build the `cuda`
# preset (Hopper only by default, for speed), run the gpu-labelled tests, compute-sanitizer over
# the op and sampling tests, and the benchmark. Logs and the benchmark's JSON go to $OUT (the
# device tool's output folder) or /tmp/ponder-gpu.
# Usage: scripts/gpu_session.sh [--arch 90] [--skip-sanitizer] [--bench-only]
set -uo pipefail
cd "$(dirname "$0")/.."
arch=90
sanitize=1
tests=1
while (($#)); do
  case "$1" in
    --arch) arch="$2"; shift ;;
    --skip-sanitizer) sanitize=0 ;;
    --bench-only) sanitize=0; tests=0 ;;
    *) echo "usage: scripts/gpu_session.sh [--arch 90] [--skip-sanitizer] [--bench-only]" >&2; exit 2 ;;
  esac
  shift
done
out="${OUT:-/tmp/ponder-gpu}"
mkdir -p "$out"
nvidia-smi -L | tee "$out/gpu.txt" || { echo "no GPU visible"; exit 1; }
export PATH="/usr/local/cuda/bin:$PATH"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# The build needs the Debian packages scripts/setup.sh lists (gtest, nlohmann-json, tl-expected,
# pcre2, Open MPI, yaml-cpp); configure fails naming the first one missing.
cmake --preset cuda "${gen[@]}" -DCMAKE_CUDA_ARCHITECTURES="$arch" 2>&1 | tee "$out/configure.log" | tail -3
targets=(cuda_bench)
((tests)) && targets+=(worker_cuda_batch_pack_test worker_cuda_ops_test worker_cuda_sampling_test
                      worker_cuda_model_test collective_nccl_test nccl_mpi cuda_mpi_parity)
cmake --build build/cuda -j"$(nproc)" --target "${targets[@]}" 2>&1 | tee "$out/build.log" | tail -3
status=0
if ((tests)); then
  ctest --test-dir build/cuda -L gpu -LE sanitizer --output-on-failure -j2 2>&1 | tee "$out/ctest_gpu.log" | tail -15
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if ((sanitize)); then
  for tool in memcheck racecheck; do
    scripts/cuda_sanitize.sh build/cuda "$tool" > "$out/sanitize_$tool.log" 2>&1 || status=1
    tail -5 "$out/sanitize_$tool.log"
  done
fi
build/cuda/bench/cuda_bench --models 1b,8b | tee "$out/cuda_bench.json" || status=1
exit $status
