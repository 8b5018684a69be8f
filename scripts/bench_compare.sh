#!/usr/bin/env bash
# tokenmill and llama.cpp's llama-server side by side on the same model, machine and workloads:
# each server runs alone (never both at once), `tokenmill bench` measures it, and the ratios go
# into BENCHMARKS.md between the bench-compare markers.
# Usage: scripts/bench_compare.sh [OUT_DIR]   (LEVELS=1,16,64 by default; THREADS=nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-compare}
LEVELS=${LEVELS:-1,16,64}
THREADS=${THREADS:-$(nproc)}
SLOTS=64
MODEL=smollm2-135m-instruct
BIN=.venv/bin
mkdir -p "$OUT"
LLAMA_SERVER=$(scripts/build_llama_server.sh)
GGUF=$($BIN/python -c "from tokenmill.modelstore.store import resolve_model; print(resolve_model('$MODEL').path)")

SERVER=
stop_server() { if [[ -n $SERVER ]]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; SERVER=; fi; }
trap stop_server EXIT
wait_healthy() {  # PORT NAME
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null && return 0
    kill -0 "$SERVER" 2>/dev/null || { echo "bench_compare.sh: $2 exited before it was healthy" >&2; exit 1; }
    sleep 0.5
  done
  echo "bench_compare.sh: $2 not healthy after 300 s" >&2; exit 1
}
measure() {  # NAME PORT
  local common=(--base-url "http://127.0.0.1:$2/v1" --model "$MODEL" --tokenizer "$MODEL" --name "$1" --no-progress)
  # the issue-2 workload: 100 prompt tokens, 128 output tokens, ignore_eos
  $BIN/tokenmill bench "${common[@]}" --concurrency "$LEVELS" --input-tokens 100 --max-tokens 128 \
    --json "$OUT/$1-random.json"
  # the content platform's request shapes, scaled to a 2,048-token context
  $BIN/tokenmill bench "${common[@]}" --workload usecases --scale-to-context 2048 --concurrency 8 \
    --num-requests 24 --json "$OUT/$1-usecases.json"
}

echo "== tokenmill ($THREADS threads)"
$BIN/tokenmill serve --model "$MODEL" --port 8131 --threads "$THREADS" --log-level warning &
SERVER=$!
wait_healthy 8131 "tokenmill serve"
measure tokenmill 8131
stop_server

echo "== llama-server ($THREADS threads, $SLOTS slots, continuous batching)"
# 2,304 tokens of context per slot: the usecases' longest request (2,048) fits in any slot
"$LLAMA_SERVER" -m "$GGUF" --alias "$MODEL" --host 127.0.0.1 --port 8132 -t "$THREADS" -tb "$THREADS" \
  -np "$SLOTS" -c $((SLOTS * 2304)) --cont-batching --log-disable >"$OUT/llama-server.log" 2>&1 &
SERVER=$!
wait_healthy 8132 llama-server
measure llama-server 8132
stop_server

$BIN/python scripts/write_bench_compare.py "$OUT"
