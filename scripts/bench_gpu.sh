#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: offline throughput of tokenmill and HF transformers at batch 1 and 64
# (100 prompt tokens, 128 output tokens, with the memory roofline), then `tokenmill serve` on the GPU
# under the closed-loop benchmark at concurrency 1, 16 and 64. Usage: scripts/bench_gpu.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-gpu}
PORT=${PORT:-8125}
MODEL=smollm2-135m-instruct
BIN=.venv/bin
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "bench_gpu.sh: nvidia-smi not found; this script needs a machine with an NVIDIA GPU and its driver" >&2
  exit 1
fi
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.csv"

for engine in tokenmill hf; do
  for batch in 1 64; do
    $BIN/python -m tokenmill.bench.offline --engine "$engine" --model "$MODEL" --batch "$batch" \
      --input-tokens 100 --output-tokens 128 --device cuda --roofline --json "$OUT/offline-$engine-b$batch.json"
  done
done

$BIN/tokenmill serve --model "$MODEL" --port "$PORT" --device cuda --log-level warning &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 240); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  kill -0 $SERVER 2>/dev/null || { echo "bench_gpu.sh: tokenmill serve exited before it was healthy" >&2; exit 1; }
  sleep 0.5
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "bench_gpu.sh: server not healthy after 120 s" >&2; exit 1; }
$BIN/tokenmill bench --base-url "http://127.0.0.1:$PORT/v1" --model "$MODEL" \
  --concurrency 1,16,64 --input-tokens 100 --max-tokens 128 --json "$OUT/server.json"
echo "results in $OUT/"
