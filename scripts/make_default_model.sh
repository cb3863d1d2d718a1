#!/usr/bin/env bash
# Writes the bundled default model (until the trained tiny reasoner lands: a small random-weight
# Qwen3-shaped model from a fixed seed) to models/random-default if it is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
out=models/random-default
[ -f "$out/model.safetensors" ] && exit 0
/usr/bin/python3 tools/make_random_model.py --preset default --dtype bf16 --out "$out"
