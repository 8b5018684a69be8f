#!/usr/bin/env bash
# Start `tokenmill serve` on the default model, run the closed-loop benchmark at several
# concurrencies (100 prompt tokens, 128 output tokens, ignore_eos), and print the server's peak
# memory (API process + engine processes, VmHWM). Usage: scripts/bench_serving.sh [CONCURRENCY] [JSON]
set -euo pipefail
cd "$(dirname "$0")/.."
CONCURRENCY=${1:-1,16,64}
JSON=${2:-bench-serving.json}
PORT=${PORT:-8123}
BIN=.venv/bin
$BIN/tokenmill serve --port "$PORT" --log-level warning ${SERVE_ARGS:-} &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 240); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.5; done
$BIN/tokenmill bench --base-url "http://127.0.0.1:$PORT/v1" --model smollm2-135m-instruct \
  --concurrency "$CONCURRENCY" --input-tokens 100 --max-tokens 128 --json "$JSON"
peak_kb=0
for pid in $SERVER $(pgrep -P $SERVER || true); do
  kb=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
  peak_kb=$((peak_kb + kb))
done
echo "server peak memory (API + engine, sum of VmHWM): $((peak_kb / 1024)) MiB"
