#!/usr/bin/env bash
# The main job on the bundled default: sets everything up, builds, makes the default model if
# needed, and streams a generation from it with `ponder generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
scripts/make_default_model.sh
model=models/random-default
echo "== ponder generate --model $model (random weights until the trained tiny reasoner lands)" >&2
build/release/bin/ponder generate --model "$model" --chat --prompt "What is 47*23+158?" \
  --max-tokens 32 --temperature 0.7 --top-p 0.95 --seed 1
