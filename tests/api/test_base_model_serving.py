"""A base model (Gemma 3 270M, no chat template) in a catalogue: completions work, chat is refused with a
clear error, and the router passes it over for chat even when it is the cheapest."""

from __future__ import annotations

import httpx
import pytest

OPERATOR = "base-model-operator"
CONFIG = """
models:
  - name: gemma
    source: gemma-3-270m
    dtype: float32
    kv_cache_memory: 64MiB
    context_length: 256
    prices: {input: 0.01, output: 0.02}
    quality: {general: 0.9, chat: 0.9, code: 0.9, math: 0.9, translation: 0.9}
  - name: smol
    source: smollm2-135m-instruct
    dtype: float32
    kv_cache_memory: 64MiB
    context_length: 256
    prices: {input: 1, output: 2}
    quality: {general: 0.6, chat: 0.6, code: 0.6, math: 0.6, translation: 0.6}
"""
HEADERS = {"authorization": f"Bearer {OPERATOR}"}


@pytest.fixture(scope="module")
def base_server(spawn_catalogue):
    server = spawn_catalogue(CONFIG, "--api-key", OPERATOR)
    yield server
    server.stop()


def test_a_base_model_continues_text(base_server):
    r = httpx.post(base_server.url + "/completions", headers=HEADERS, timeout=120,
                   json={"model": "gemma", "prompt": "Water boils at a temperature of", "max_tokens": 8,
                         "temperature": 0})
    assert r.status_code == 200, r.text
    assert "100" in r.json()["choices"][0]["text"]


def test_chat_with_a_base_model_is_refused_saying_what_to_do(base_server):
    r = httpx.post(base_server.url + "/chat/completions", headers=HEADERS, timeout=60,
                   json={"model": "gemma", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "chat_unsupported" and "/v1/completions" in error["message"]


def test_the_router_passes_a_base_model_over_for_chat(base_server):
    r = httpx.post(base_server.url + "/chat/completions", headers=HEADERS, timeout=120,
                   json={"model": "auto:cheap", "messages": [{"role": "user", "content": "Tell me a joke."}],
                         "max_tokens": 4})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "smol"
    assert "gemma (HTTP 400)" in r.headers["x-tokenmill-route"]
