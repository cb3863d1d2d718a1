#!/usr/bin/env bash
# Measures the tiny reasoner with ponder itself and writes its model card's accuracy table:
# greedy accuracy on every test problem (4 levels × 300), and 16 samples at temperature 0.8 on
# the first SAMPLED problems of each level for pass@1 / maj@16 / pass@16.
# Usage: tools/eval_tiny_reasoner.sh [MODEL_DIR] [SAMPLED]   (defaults: models/tiny-reasoner 100)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/tiny-reasoner}
sampled=${2:-100}
ponder=build/release/bin/ponder
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat tests/data/tasks/arith_test_l*.jsonl > "$work/all.jsonl"
for f in tests/data/tasks/arith_test_l*.jsonl; do head -n "$sampled" "$f"; done > "$work/subset.jsonl"
start=$(date +%s)
$ponder complete --model "$model" --input "$work/all.jsonl" --chat --max-tokens 512 --token-budget 2048 \
  --output "$work/greedy.jsonl"
$ponder complete --model "$model" --input "$work/subset.jsonl" --chat --max-tokens 512 --token-budget 2048 \
  --n 16 --temperature 0.8 --seed 1 --output "$work/sampled.jsonl"
echo "evaluation took $(( $(date +%s) - start )) s" >&2
/usr/bin/python3 -m experiments.tasks.arith grade --tasks tests/data/tasks/arith_test_l*.jsonl \
  --greedy "$work/greedy.jsonl" --sampled "$work/sampled.jsonl" --k 16 \
  --note "ponder $(git rev-parse --short HEAD), greedy on all 300 per level; T=0.8 × 16 on the first $sampled per level" \
  --out "$model/eval_results.new.json"
