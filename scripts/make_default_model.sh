#!/usr/bin/env bash
# Writes the bundled default model to models/random-default if it is not there yet: until the
# trained tiny reasoner lands, a small random-weight Qwen3-shaped model from a fixed seed, with the
# real Qwen3 tokenizer files (so its vocabulary and special tokens are a real model's).
set -euo pipefail
cd "$(dirname "$0")/.."
out=models/random-default
[ -f "$out/model.safetensors" ] && exit 0
tokenizer=()
[ -f tests/data/tokenizers/qwen3/tokenizer.json ] && tokenizer=(--tokenizer tests/data/tokenizers/qwen3)
/usr/bin/python3 tools/make_random_model.py --preset default --dtype bf16 "${tokenizer[@]}" --out "$out"
