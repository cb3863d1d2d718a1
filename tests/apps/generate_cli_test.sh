#!/usr/bin/env bash
# `ponder generate` as a user runs it: the same greedy tokens on one process and on tp × pp ranks
# that it starts with mpirun itself; bad options fail with exit code 2 and a message naming them.
set -euo pipefail
ponder=$1
model=$2
ids() { "$ponder" generate --model "$model" --prompt-ids 5,6,7,8 --max-tokens 16 --precision exact \
          --ignore-eos --json "$@" 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token_ids"])'; }
single=$(ids)
for layout in "--tp 2" "--pp 2" "--tp 2 --pp 2"; do
  got=$(ids $layout)
  if [ "$got" != "$single" ]; then
    echo "FAIL $layout: $got != $single"; exit 1
  fi
done
expect_error() {  # expect_error "message part" args...
  local part=$1; shift
  set +e; out=$("$ponder" generate --model "$model" "$@" 2>&1 >/dev/null); rc=$?; set -e
  if [ $rc -ne 2 ] || [[ "$out" != *"$part"* ]]; then
    echo "FAIL $*: rc=$rc, stderr: $out"; exit 1
  fi
}
expect_error "tp=3 does not divide" --prompt-ids 1 --tp 3
expect_error "--temperature: 'hot' is not a number" --prompt-ids 1 --temperature hot
expect_error "top_p must be in (0, 1]" --prompt-ids 1 --temperature 1 --top-p 0
expect_error "unknown option --colour" --prompt-ids 1 --colour
expect_error "outside the vocabulary" --prompt-ids 999999
expect_error "/tmp/config.json: cannot open" --model /tmp --prompt-ids 1
echo "generate CLI: PASS ($single)"
