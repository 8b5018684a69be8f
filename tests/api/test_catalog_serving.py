"""A catalogue of models served at once (--config): each its own engine, names and aliases, prices and metrics."""

from __future__ import annotations

import math
import subprocess
import sys

import httpx
import openai
import pytest

OPERATOR = "catalogue-operator"
CONFIG = """
models:
  - name: smol
    aliases: [small]
    source: smollm2-135m-instruct
    dtype: float32
    kv_cache_memory: 64MiB
    context_length: 256
    prices: {input: 1, output: 2}
  - name: smol-int8
    source: smollm2-135m-instruct
    dtype: float32
    quantization: w8a8
    kv_cache_memory: 64MiB
    context_length: 256
    prices: {input: 0.5, output: 1}
"""


@pytest.fixture(scope="module")
def catalogue_server(spawn_catalogue):
    server = spawn_catalogue(CONFIG, "--api-key", OPERATOR)
    yield server
    server.stop()


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=OPERATOR, max_retries=0)


def test_every_model_is_listed_with_its_aliases_and_runs_in_its_own_engine(catalogue_server):
    cards = httpx.get(catalogue_server.base_url + "/v1/models", headers={"authorization": f"Bearer {OPERATOR}"}).json()
    models = [c for c in cards["data"] if c["owned_by"] != "tokenmill-router"]
    assert [(c["id"], c["aliases"], c["max_model_len"]) for c in models] == [("smol", ["small"], 256),
                                                                             ("smol-int8", [], 256)]
    assert len(catalogue_server.engine_pids) == 2


def test_requests_reach_the_model_they_name_or_alias_and_are_priced_by_it(catalogue_server):
    c = client(catalogue_server)
    ask = [{"role": "user", "content": "What is the capital of France?"}]
    by_alias = c.chat.completions.create(model="small", messages=ask, max_tokens=12, temperature=0)
    quantized = c.chat.completions.create(model="smol-int8", messages=ask, max_tokens=12, temperature=0)
    assert by_alias.model == "smol" and quantized.model == "smol-int8"
    assert "Paris" in by_alias.choices[0].message.content and "Paris" in quantized.choices[0].message.content

    usage = httpx.get(catalogue_server.base_url + "/v1/usage", params={"group_by": "model"},
                      headers={"authorization": f"Bearer {OPERATOR}"}).json()["data"]
    by_model = {row["model"]: row for row in usage}
    for response, (input_price, output_price) in ((by_alias, (1, 2)), (quantized, (0.5, 1))):
        row = by_model[response.model]
        assert (row["prompt_tokens"], row["completion_tokens"]) == (response.usage.prompt_tokens,
                                                                     response.usage.completion_tokens)
        # micro-units: price per million tokens x tokens, rounded up
        assert row["cost_micros"] == math.ceil(input_price * response.usage.prompt_tokens
                                               + output_price * response.usage.completion_tokens)


def test_an_unknown_model_is_404_naming_the_models_served(catalogue_server):
    with pytest.raises(openai.NotFoundError) as caught:
        client(catalogue_server).completions.create(model="gpt-7", prompt="hi", max_tokens=2)
    assert "'smol', 'smol-int8'" in caught.value.message


def test_metrics_are_kept_per_model(catalogue_server):
    client(catalogue_server).completions.create(model="smol-int8", prompt="One, two,", max_tokens=3)
    metrics = catalogue_server.metrics()
    assert metrics['tokenmill_requests_running{model="smol"}'] == 0
    assert metrics['tokenmill_requests_running{model="smol-int8"}'] == 0
    assert metrics['tokenmill_generation_tokens_total{model="smol-int8"}'] >= 3


def test_config_and_model_flags_together_are_refused_before_anything_loads(tmp_path):
    config = tmp_path / "tokenmill.yaml"
    config.write_text(CONFIG)
    done = subprocess.run([sys.executable, "-m", "tokenmill.cli", "serve", "--config", str(config), "--model",
                           "smollm2-135m-instruct", "--replicas", "2"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--model, --replicas cannot be combined with --config" in done.stderr
