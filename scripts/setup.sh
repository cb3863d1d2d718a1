#!/usr/bin/env bash
# Installs the Debian packages ponder needs (only the missing ones; safe to re-run) and builds the
# release tree. Usage: scripts/setup.sh [preset]   (default preset: release)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config git curl
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libexpected-dev libpcre2-dev libboost-dev libboost-system-dev
  libopenmpi-dev openmpi-bin
  libzmq3-dev cppzmq-dev libprotobuf-dev protobuf-compiler libyaml-cpp-dev libcli11-dev
  libsqlite3-dev libssl-dev
  slurmctld slurmd slurm-client munge iproute2 strace openssl
  clang libclang-rt-14-dev
  python3 python3-numpy python3-matplotlib python3-jinja2 python3-venv
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

preset="${1:-release}"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)"
