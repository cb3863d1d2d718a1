#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang, ASan + UBSan) and runs each for a while
# on a temporary copy of its seed corpus (fuzz/corpus/<target>/ is never changed). Exits non-zero
# if any target crashes, leaks, hangs, runs out of memory or trips a sanitizer, and prints the
# input that did it. docs/fuzzing.md says what each target covers.
#
# Usage: scripts/fuzz.sh [seconds per target, default 12] [target ...]   (default: all of them)
#   PONDER_BUILD_LOCK=/path  takes that flock(1) lock around the build step only.
#   PONDER_FUZZ_BUILD=0      runs the targets as built (no configure, no build).
# Logs and crash inputs: build/fuzz/fuzz-runs/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-12}"
shift || true
all_targets=(http_request completion_request safetensors safetensors_index tokenizer_json
             chat_template tool_calls replica_wire)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

# -max_len per target: above its largest seed and, for HTTP, above the 16 KiB header limit.
declare -A max_len=(
  [http_request]=20000 [completion_request]=8192 [safetensors]=16384 [safetensors_index]=8192
  [tokenizer_json]=24576 [chat_template]=8192 [tool_calls]=4096 [replica_wire]=2048)

if [[ "${PONDER_FUZZ_BUILD:-1}" != 0 ]]; then
  build=(cmake --build --preset fuzz -j"$(nproc)")
  cmake --preset fuzz >/dev/null
  if [[ -n "${PONDER_BUILD_LOCK:-}" ]]; then
    flock "$PONDER_BUILD_LOCK" "${build[@]}" >/dev/null
  else
    "${build[@]}" >/dev/null
  fi
fi

bin=build/fuzz/fuzz
runs=build/fuzz/fuzz-runs
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# run_target <target>: 0 when the run ended cleanly.
run_target() {
  local t="$1" out="$runs/$1" work corpus
  [[ -n "${max_len[$t]:-}" && -x "$bin/${t}_fuzzer" ]] || { echo "fuzz: no target '$t'" >&2; return 1; }
  rm -rf "$out"
  mkdir -p "$out"
  # The corpus copy, and the target's own temporary files (TMPDIR), go with the run.
  work="$(mktemp -d "${TMPDIR:-/tmp}/ponder-fuzz-$t.XXXXXX")"
  corpus="$work/corpus"
  mkdir -p "$corpus" "$work/tmp"
  cp -r "fuzz/corpus/$t/." "$corpus/"
  local dict=() rc=0
  [[ -f "fuzz/$t.dict" ]] && dict=(-dict="fuzz/$t.dict")
  TMPDIR="$work/tmp" "$bin/${t}_fuzzer" "$corpus" "${dict[@]}" -max_total_time="$seconds" \
    -max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/" >"$out/log" 2>&1 || rc=$?
  rm -rf "$work"
  local stats
  stats="$(grep -Eo '^#[0-9]+[[:space:]]+DONE.*' "$out/log" | tail -1 || true)"
  if ((rc != 0)) || grep -qE '^(==[0-9]+==ERROR|SUMMARY: (Address|UndefinedBehavior|Leak)Sanitizer)|runtime error:' "$out/log"; then
    echo "fuzz: $t FAILED (exit $rc); log: $out/log" >&2
    grep -E '_fuzzer: |ERROR|runtime error|SUMMARY|Test unit written|^    #[0-9] ' "$out/log" | head -30 >&2 || true
    local a
    for a in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* "$out"/slow-unit-*; do
      [[ -e "$a" ]] || continue
      echo "fuzz: $t: input: $a (rerun: $bin/${t}_fuzzer $a)" >&2
      # A CI log is often all there is of a run: a small input goes in it whole, to reproduce
      # from (base64 -d > input).
      (($(stat -c %s "$a") <= 8192)) && { echo "fuzz: $t: input as base64:"; base64 -w 0 "$a"; echo; } >&2
    done
    return 1
  fi
  echo "fuzz: $t ok (${seconds}s; ${stats:-no stats})"
}

failed=()
for t in "${targets[@]}"; do run_target "$t" || failed+=("$t"); done
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s each without a finding"
