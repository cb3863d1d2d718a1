#!/usr/bin/env bash
# The main job on the bundled default: sets everything up, builds, starts `ponder serve` on the
# tiny reasoner (OpenAI-compatible API on 127.0.0.1:8000), asks it one question through the API to
# show the thinking and the answer apart, and keeps serving until Ctrl-C (which drains and stops).
# `scripts/demo.sh --once` stops after the example question.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
model=models/tiny-reasoner
port=${PONDER_PORT:-8000}
build/release/bin/ponder serve --model "$model" --port "$port" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' EXIT INT TERM
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "ponder serve exited" >&2; exit 1; }
  sleep 0.2
done
echo
echo "== POST /v1/chat/completions: What is 47*23+158?"
curl -s "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model": "tiny-reasoner", "messages": [{"role": "user", "content": "What is 47*23+158?"}], "max_tokens": 512, "temperature": 0}' |
  python3 -c '
import json, sys
r = json.load(sys.stdin)
m = r["choices"][0]["message"]
print("-- reasoning_content --"); print(m.get("reasoning_content") or "")
print("-- content --"); print(m["content"])
print("-- usage --"); print(json.dumps(r["usage"]))'
echo
echo "ponder serve is running: any OpenAI client works with base_url=http://127.0.0.1:$port/v1"
if [[ "${1:-}" == "--once" ]]; then exit 0; fi
echo "(Ctrl-C drains and stops it)"
wait $server
