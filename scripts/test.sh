#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite (ctest, then a short fuzz run of every
# parser). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
scripts/make_default_model.sh
# The e2e tests drive `ponder serve` with the official openai SDK (PyPI), in a venv of our own.
if ! build/pyenv/bin/python -c "import openai" 2>/dev/null; then
  python3 -m venv build/pyenv
  build/pyenv/bin/pip install -q --retries 5 "openai>=1.40,<4"
fi
ctest --preset release -j"$(nproc)"
# A short run of every libFuzzer target (ASan + UBSan; its own clang build): docs/fuzzing.md.
scripts/fuzz.sh
