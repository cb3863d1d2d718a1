#!/usr/bin/env bash
# The bundled tiny reasoner through `ponder generate --chat` as the README's user runs it: with no
# --max-tokens the model thinks to the end of its turn, and the thinking and the boxed answer are
# printed apart (streamed headings and --json); a turn cut by --max-tokens says so on stderr.
set -euo pipefail
ponder=$1
model=$2
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$ponder" generate --model "$model" --chat --prompt "What is 47*23+158?" >"$tmp/out.txt" 2>"$tmp/err.txt"
grep -qx '── thinking ──' "$tmp/out.txt" || fail "no thinking heading: $(cat "$tmp/out.txt")"
grep -qx '── answer ──' "$tmp/out.txt" || fail "no answer heading: $(cat "$tmp/out.txt")"
$py - "$tmp/out.txt" <<'PY' || fail "thinking/answer: $(cat "$tmp/out.txt")"
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
thinking, answer = text.split("── thinking ──\n", 1)[1].split("\n── answer ──\n", 1)
assert thinking.strip() and "<think>" not in thinking and "</think>" not in thinking, thinking
assert re.fullmatch(r"\\boxed\{-?\d+\}\n", answer), repr(answer)
PY
grep -q 'length limit' "$tmp/err.txt" && fail "default length cut the turn: $(cat "$tmp/err.txt")"

"$ponder" generate --model "$model" --chat --prompt "What is 47*23+158?" --json 2>/dev/null >"$tmp/out.json"
$py - "$tmp/out.json" <<'PY' || fail "--json: $(cat "$tmp/out.json")"
import json, re, sys
d = json.load(open(sys.argv[1]))
assert d["finish_reason"] == "stop", d["finish_reason"]
assert d["reasoning_content"].strip(), d
assert re.fullmatch(r"\\boxed\{-?\d+\}", d["content"]), d["content"]
PY

"$ponder" generate --model "$model" --chat --prompt "What is 47*23+158?" --max-tokens 12 \
  >/dev/null 2>"$tmp/err.txt"
grep -q 'stopped at the length limit (12 tokens)' "$tmp/err.txt" || fail "no length note: $(cat "$tmp/err.txt")"
echo "tiny reasoner CLI: PASS"
