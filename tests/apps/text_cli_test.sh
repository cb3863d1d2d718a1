#!/usr/bin/env bash
# `ponder tokenize` and `ponder generate --chat` as a user runs them, on the bundled default model
# (random weights with the real Qwen3 tokenizer and chat template): ids round-trip through
# --decode, the chat prompt is the template's rendering, and --json splits reasoning from answer.
set -euo pipefail
ponder=$1
model=$2
[ -f "$model/tokenizer.json" ] || { echo "no $model (scripts/make_default_model.sh makes it)"; exit 77; }
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'Hello, world!\n<|im_start|>user\r\n12345 日本語 🙂\n' > "$tmp/in.txt"
"$ponder" tokenize --model "$model" "$tmp/in.txt" > "$tmp/ids.txt"
[ "$(wc -l < "$tmp/ids.txt")" -eq 3 ] || { echo "FAIL: expected 3 lines of ids"; exit 1; }
grep -q '151644' "$tmp/ids.txt" || { echo "FAIL: <|im_start|> not matched as a special token"; exit 1; }
"$ponder" tokenize --model "$model" --whole "$tmp/in.txt" > "$tmp/whole.txt"
"$ponder" tokenize --model "$model" --whole --decode "$tmp/whole.txt" > "$tmp/back.txt"
cmp -s "$tmp/in.txt" "$tmp/back.txt" || { echo "FAIL: decode(encode(x)) != x"; exit 1; }

out=$("$ponder" generate --model "$model" --chat --prompt "What is 47*23+158?" --max-tokens 8 \
      --temperature 0.7 --seed 3 --json 2>/dev/null)
echo "$out" | $py -c '
import json, sys
d = json.load(sys.stdin)
assert len(d["token_ids"]) == 8, d
assert d["text"] == d["reasoning_content"] + d["content"] or "</think>" in d["text"], d
assert d["prompt_ids"][:3] == [151644, 872, 198], d["prompt_ids"][:3]  # <|im_start|>user\n
'
# Same seed, same text.
again=$("$ponder" generate --model "$model" --chat --prompt "What is 47*23+158?" --max-tokens 8 \
        --temperature 0.7 --seed 3 --json 2>/dev/null)
[ "$(echo "$out" | $py -c 'import json,sys; print(json.load(sys.stdin)["token_ids"])')" = \
  "$(echo "$again" | $py -c 'import json,sys; print(json.load(sys.stdin)["token_ids"])')" ] ||
  { echo "FAIL: same seed gave different tokens"; exit 1; }
# Batch completion: every line at once, n samples each, in input order.
printf '{"id": "a", "question": "What is 1+1?"}\n{"id": "b", "question": "What is 2*3?"}\n' > "$tmp/q.jsonl"
"$ponder" complete --model "$model" --input "$tmp/q.jsonl" --chat --n 2 --max-tokens 4 \
  --temperature 0.8 --output "$tmp/out.jsonl" 2>/dev/null
$py -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["id"] for r in rows] == ["a", "b"], rows
assert all(len(r["completions"]) == 2 for r in rows), rows
' "$tmp/out.jsonl"
set +e
err=$("$ponder" generate --model tests/data/models/qwen3_f32 --prompt "hi" 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 2 ] && [[ "$err" == *"has no tokenizer.json"* ]] || { echo "FAIL: $rc $err"; exit 1; }
echo "text CLI: PASS"
