#!/usr/bin/env bash
# Build llama.cpp's `llama-server` (the peer that `make bench-compare` measures tokenmill against)
# from the llama.cpp sources vendored in the llama-cpp-python source distribution on PyPI.
# Instruction sets are chosen explicitly from /proc/cpuinfo: a -DGGML_NATIVE=ON build crashed
# with an illegal instruction on these machines. AMX is never enabled.
# Usage: scripts/build_llama_server.sh   (prints the binary's path; does nothing if it exists)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
ROOT=build/llama-server
BIN=$ROOT/build/bin/llama-server
if [[ -x $BIN ]]; then echo "$BIN"; exit 0; fi
mkdir -p "$ROOT"
if [[ ! -d $ROOT/src ]]; then
  .venv/bin/python -m pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$ROOT/sdist" >&2
  mkdir -p "$ROOT/src"
  tar -xzf "$ROOT"/sdist/llama_cpp_python-*.tar.gz -C "$ROOT/src" --strip-components=1
fi
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $flags " == *" $1 "* ]] && echo ON || echo OFF; }
cmake -S "$ROOT/src/vendor/llama.cpp" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=OFF -DGGML_AVX=$(has avx) -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma) -DGGML_F16C=$(has f16c) \
  -DGGML_AVX512=$(has avx512f) -DGGML_AVX512_VNNI=$(has avx512_vnni) -DGGML_AVX512_BF16=$(has avx512_bf16) \
  -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >&2
cmake --build "$ROOT/build" --target llama-server -j "$(nproc)" >&2
echo "$BIN"
