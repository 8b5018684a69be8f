#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: scripts/bench_gpu.sh, then the test files that exercise the engine
# and the server on the default model. The engine picks CUDA by itself when one is visible, so these
# tests run on the GPU (the tests that pin device="cpu" stay on the CPU). Only the default model is
# needed: the files left out need the other catalogue models, the router's encoder, Redis or PostgreSQL.
# Usage: scripts/gpu_check.sh [OUT_DIR]; PYTHON names the interpreter with tokenmill (default .venv/bin/python).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench-gpu}
export PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
$PYTHON -c "import torch; from tokenmill.engine.device import choose_device; print('torch', torch.__version__, 'engine default:', choose_device())" | tee "$OUT/device.txt"
scripts/bench_gpu.sh "$OUT" 2>&1 | tee "$OUT/bench.log"
TESTS=(
  tests/engine/test_cuda_graphs.py tests/engine/test_block_manager.py tests/engine/test_detokenizer.py tests/engine/test_engine.py
  tests/engine/test_hf_directory.py tests/engine/test_sampler.py tests/engine/test_tokenizer.py
  tests/models/test_llama_reference.py tests/models/test_linear.py tests/models/test_quantize.py
  tests/api/test_openai_client.py tests/api/test_api_errors.py tests/api/test_concurrency.py
  tests/api/test_disconnect.py tests/api/test_metrics.py tests/api/test_serve_cli.py tests/api/test_api_auth.py
)
timeout "${TEST_TIMEOUT_S:-360}" $PYTHON -m pytest -q -p no:cacheprovider -rfE --junitxml "$OUT/cuda-tests.xml" "${TESTS[@]}" \
  2>&1 | tee "$OUT/cuda-tests.log"
