#!/usr/bin/env bash
# Measures the tiny reasoner with ponder itself and writes its model card's accuracy table:
# greedy accuracy on the test problems of every level (tests/data/tasks/arith_test_l*.jsonl,
# 300 per level), and 16 samples at temperature 1.0 on the first SAMPLED problems of each level
# for pass@1 / maj@16 / pass@16. Writes MODEL_DIR/eval_results.new.json (the JSON that
# `tools/train_tiny_reasoner.py --card-only --eval-json` puts into the model card).
#
# Usage: tools/eval_tiny_reasoner.sh [MODEL_DIR] [SAMPLED] [GREEDY]
#   defaults: models/tiny-reasoner, 100 sampled problems per level, every problem greedy
# Environment:
#   PONDER=path       the ponder binary (default build/release/bin/ponder); e.g. a copy that
#                     another build cannot replace while the evaluation runs
#   MAX_TOKENS=N      tokens per completion (default 960: prompt + completion fit the model's 1024
#                     positions; the longest level-5 working is ~750 tokens)
#   TEMPERATURE=T     sampling temperature (default 1.0)   SAMPLES=K   samples (default 16)
#   THREADS=N         ponder's CPU threads (default 2)     OUT=FILE    where the JSON goes
#   KEEP=DIR          keep the completions JSONL files in DIR
#   QUANTIZE=Q        ponder's --quantize (default none; int8: load-time int8 weights)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/tiny-reasoner}
sampled=${2:-100}
greedy_n=${3:-100000}
ponder=${PONDER:-build/release/bin/ponder}
max_tokens=${MAX_TOKENS:-960}
temperature=${TEMPERATURE:-1.0}
samples=${SAMPLES:-16}
threads=${THREADS:-2}
quantize=${QUANTIZE:-none}
out=${OUT:-$model/eval_results.new.json}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tasks=(tests/data/tasks/arith_test_l*.jsonl)
for f in "${tasks[@]}"; do head -n "$greedy_n" "$f"; done > "$work/all.jsonl"
for f in "${tasks[@]}"; do head -n "$sampled" "$f"; done > "$work/subset.jsonl"
start=$(date +%s)
rev=$(git rev-parse --short HEAD)  # the tree the evaluation started from
"$ponder" complete --model "$model" --input "$work/all.jsonl" --chat --max-tokens "$max_tokens" \
  --token-budget 4096 --threads "$threads" --quantize "$quantize" --output "$work/greedy.jsonl"
"$ponder" complete --model "$model" --input "$work/subset.jsonl" --chat --max-tokens "$max_tokens" \
  --token-budget 4096 --threads "$threads" --quantize "$quantize" --n "$samples" --temperature "$temperature" --seed 1 \
  --output "$work/sampled.jsonl"
echo "evaluation took $(( $(date +%s) - start )) s" >&2
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$work"/*.jsonl "$KEEP"/; fi
greedy_desc="all $(wc -l < "${tasks[0]}")"
[ "$greedy_n" -lt "$(wc -l < "${tasks[0]}")" ] && greedy_desc="the first $greedy_n"
/usr/bin/python3 -m experiments.tasks.arith grade --tasks "${tasks[@]}" \
  --greedy "$work/greedy.jsonl" --sampled "$work/sampled.jsonl" --k "$samples" \
  --note "ponder $rev, weights quantize=$quantize, greedy on $greedy_desc per level; T=$temperature × $samples on the first $sampled per level; max $max_tokens tokens" \
  --out "$out"
