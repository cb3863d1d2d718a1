#!/usr/bin/env bash
# Runs every benchmark behind docs/performance.md on this machine and writes the JSON figures to
# bench-results/ (run on a quiet machine: each figure is compared with limits measured in the
# same run, but other load still skews them). Takes about 30-40 minutes on 2 cores.
# Usage: scripts/bench_all.sh [output-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-results}
mkdir -p "$out" /tmp/ponder-models
ponder=build/release/bin/ponder
for preset in 15m 125m 0.85b; do
  [ -f /tmp/ponder-models/$preset/model.safetensors ] ||
    /usr/bin/python3 tools/make_random_model.py --preset $preset --dtype bf16 --out /tmp/ponder-models/$preset
done
run() {  # run NAME ARGS...: one JSON file per figure set
  local name=$1; shift
  echo "== $name: $*" >&2
  "$@" > "$out/$name.json"
}
run bench_15m $ponder bench --model /tmp/ponder-models/15m
run bench_125m $ponder bench --model /tmp/ponder-models/125m
run bench_085b $ponder bench --model /tmp/ponder-models/0.85b --compare-memory
run bench_085b_exact $ponder bench --model /tmp/ponder-models/0.85b --precision exact --batches 1,16
# The replica path on 1, then 2 ranks (the 1-rank run goes through mpirun so it takes the same path).
run dist_125m_tp1 scripts/mpirun.sh -np 1 $ponder bench --model /tmp/ponder-models/125m \
  --prompt-lengths 128 --batches 1,4
for layout in "--tp 2" "--pp 2"; do
  name=dist_125m_$(echo "$layout" | tr -d ' -')
  run "$name" $ponder bench --model /tmp/ponder-models/125m $layout --prompt-lengths 128 --batches 1,4
done
run offline_125m $ponder bench --model /tmp/ponder-models/125m --offline --requests 256
run offline_085b $ponder bench --model /tmp/ponder-models/0.85b --offline --requests 64
if [ -x build/release/bench/tokenizer_bench ]; then
  run tokenizer build/release/bench/tokenizer_bench
fi
echo "results in $out/" >&2
