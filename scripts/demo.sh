#!/usr/bin/env bash
# The main job on the bundled default: sets everything up, builds, and streams the tiny
# reasoner's thinking and answer with `ponder generate --chat`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
model=models/tiny-reasoner
echo "== ponder generate --model $model (the bundled 4.8 M-parameter reasoner ponder trained)" >&2
build/release/bin/ponder generate --model "$model" --chat --prompt "What is 47 * 23 + 158?" \
  --max-tokens 512
