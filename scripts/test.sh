#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite (ctest). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
scripts/make_default_model.sh
ctest --preset release -j"$(nproc)"
