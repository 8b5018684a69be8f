#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: offline throughput of tokenmill (CUDA graphs, then --enforce-eager)
# and HF transformers at batch 1 and 64 (100 prompt tokens, 128 output tokens, with the memory
# roofline), then `tokenmill serve` on the GPU under the closed-loop benchmark at concurrency 1, 16
# and 64, with and without CUDA graphs. Usage: scripts/bench_gpu.sh [OUT_DIR]
# PYTHON names the interpreter that has tokenmill installed (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-gpu}
PORT=${PORT:-8125}
MODEL=smollm2-135m-instruct
PYTHON=${PYTHON:-.venv/bin/python}
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "bench_gpu.sh: nvidia-smi not found; this script needs a machine with an NVIDIA GPU and its driver" >&2
  exit 1
fi
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.csv"

# one failed run (an HF version that does not fit, say) does not stop the rest
offline() {  # NAME ARGS...
  local name=$1; shift
  for batch in 1 64; do
    timeout 150 $PYTHON -m tokenmill.bench.offline "$@" --model "$MODEL" --batch "$batch" --input-tokens 100 \
      --output-tokens 128 --device cuda --roofline --json "$OUT/offline-$name-b$batch.json" \
      || echo "bench_gpu.sh: offline $name batch $batch failed" >&2
  done
}
offline tokenmill --engine tokenmill
offline tokenmill-eager --engine tokenmill --enforce-eager
offline hf --engine hf

healthy() { $PYTHON -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=2)" 2>/dev/null; }
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; wait 2>/dev/null || true' EXIT
served() {  # NAME SERVE_ARGS...
  local name=$1; shift
  $PYTHON -m tokenmill.cli serve --model "$MODEL" --port "$PORT" --device cuda --log-level warning "$@" &
  SERVER=$!
  for _ in $(seq 240); do
    healthy && break
    kill -0 $SERVER 2>/dev/null || { echo "bench_gpu.sh: tokenmill serve ($name) exited before it was healthy" >&2; return 1; }
    sleep 0.5
  done
  healthy || { echo "bench_gpu.sh: server ($name) not healthy after 120 s" >&2; return 1; }
  $PYTHON -m tokenmill.cli bench --base-url "http://127.0.0.1:$PORT/v1" --model "$MODEL" --name "$name" \
    --concurrency 1,16,64 --input-tokens 100 --max-tokens 128 --json "$OUT/server-$name.json"
  nvidia-smi --query-gpu=memory.used --format=csv | tee "$OUT/server-$name-gpu-memory.csv"
  kill $SERVER; wait $SERVER 2>/dev/null || true
  SERVER=
}
served tokenmill || true
served tokenmill-eager --enforce-eager || true
echo "results in $OUT/"
