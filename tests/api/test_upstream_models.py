"""Catalogue models answered by another OpenAI-compatible server (here a second real tokenmill server)."""

from __future__ import annotations

import math
import os

import httpx
import openai
import pytest

UPSTREAM_KEY = "upstream-secret"
OPERATOR = "proxy-operator"
ASK = [{"role": "user", "content": "Name three colours of the rainbow."}]
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


@pytest.fixture(scope="module")
def upstream(spawn_server):
    server = spawn_server("--api-key", UPSTREAM_KEY, "--max-model-len", "256", "--kv-cache-memory", "64MiB")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(spawn_catalogue, upstream, tmp_path_factory):
    terms = tmp_path_factory.mktemp("terms") / "story.txt"
    terms.write_text("Jameson\n", encoding="utf-8")  # a name in SmolLM2's greedy answer to STORY
    catalogue = f"""
models:
  - name: local
    source: smollm2-135m-instruct
    dtype: float32
    kv_cache_memory: 64MiB
    context_length: 256
  - name: remote
    aliases: [far]
    upstream: {{base_url: "{upstream.base_url}/v1", model: smollm2-135m-instruct, api_key_env: TM_TEST_UPSTREAM_KEY}}
    prices: {{input: 2, output: 3}}
  - name: remote-nokey
    upstream: {{base_url: "{upstream.base_url}/v1", model: smollm2-135m-instruct, api_key_env: TM_TEST_UNSET_KEY}}
  - name: remote-badkey
    upstream: {{base_url: "{upstream.base_url}/v1", model: smollm2-135m-instruct, api_key_env: TM_TEST_BAD_KEY}}
moderation:
  lists:
    story: {{path: "{terms}", category: illicit}}
  default: {{lists: [story], semantic: false}}
"""
    os.environ.update(TM_TEST_UPSTREAM_KEY=UPSTREAM_KEY, TM_TEST_BAD_KEY="not-the-key")
    try:
        server = spawn_catalogue(catalogue, "--api-key", OPERATOR)
    finally:
        os.environ.pop("TM_TEST_UPSTREAM_KEY")
        os.environ.pop("TM_TEST_BAD_KEY")
    yield server
    server.stop()


def client(base_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)


def test_upstream_models_are_listed_after_local_ones(proxy):
    cards = httpx.get(proxy.base_url + "/v1/models", headers={"authorization": f"Bearer {OPERATOR}"}).json()["data"]
    assert [(c["id"], c["owned_by"]) for c in cards][:4] == [("local", "tokenmill"), ("remote", "upstream"),
                                                             ("remote-nokey", "upstream"), ("remote-badkey", "upstream")]


def test_proxied_answers_equal_the_upstream_and_are_metered_here(proxy, upstream):
    direct = client(upstream.base_url, UPSTREAM_KEY).chat.completions.create(
        model="smollm2-135m-instruct", messages=ASK, max_tokens=20, temperature=0)
    via = client(proxy.base_url, OPERATOR)
    plain = via.chat.completions.create(model="far", messages=ASK, max_tokens=20, temperature=0)
    assert plain.model == "remote"
    assert plain.choices[0].message.content == direct.choices[0].message.content
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (direct.usage.prompt_tokens,
                                                                          direct.usage.completion_tokens)

    chunks = list(via.chat.completions.create(model="remote", messages=ASK, max_tokens=20, temperature=0, stream=True,
                                              stream_options={"include_usage": True}))
    assert {c.model for c in chunks} == {"remote"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == direct.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    streamed_usage = chunks[-1].usage
    assert (streamed_usage.prompt_tokens, streamed_usage.completion_tokens) == (plain.usage.prompt_tokens, 20)

    quiet = list(via.completions.create(model="remote", prompt="Once upon a time", max_tokens=8, stream=True))
    assert all(c.usage is None for c in quiet) and quiet[-1].choices[0].finish_reason == "length"

    rows = httpx.get(proxy.base_url + "/v1/usage", params={"group_by": "model"},
                     headers={"authorization": f"Bearer {OPERATOR}"}).json()["data"]
    remote = next(row for row in rows if row["model"] == "remote")
    assert remote["requests"] == 3
    assert remote["completion_tokens"] == 20 + 20 + 8
    prompt_tokens = remote["prompt_tokens"]
    assert prompt_tokens > 2 * plain.usage.prompt_tokens  # both chats, and the story's prompt
    assert remote["cost_micros"] == sum(math.ceil(2 * p + 3 * c) for p, c in (
        (plain.usage.prompt_tokens, 20), (plain.usage.prompt_tokens, 20), (prompt_tokens - 2 * plain.usage.prompt_tokens, 8)))


def test_the_upstreams_own_errors_reach_the_client(proxy):
    with pytest.raises(openai.BadRequestError) as caught:
        client(proxy.base_url, OPERATOR).completions.create(model="remote", prompt="word " * 400, max_tokens=8)
    assert "maximum context length" in caught.value.message


def test_a_missing_or_refused_upstream_key_is_the_operators_problem_and_says_so(proxy):
    via = client(proxy.base_url, OPERATOR)
    with pytest.raises(openai.APIStatusError) as missing:
        via.chat.completions.create(model="remote-nokey", messages=ASK, max_tokens=4)
    assert missing.value.status_code == 503 and "TM_TEST_UNSET_KEY" in missing.value.message
    with pytest.raises(openai.APIStatusError) as refused:
        via.chat.completions.create(model="remote-badkey", messages=ASK, max_tokens=4)
    assert refused.value.status_code == 502 and "refused this server's key" in refused.value.message


def test_upstream_answers_are_moderated_here_streamed_or_not_and_counted(proxy, upstream):
    # the upstream itself moderates nothing: its answer has the term, which this server's list cuts
    direct = client(upstream.base_url, UPSTREAM_KEY).chat.completions.create(
        model="smollm2-135m-instruct", messages=STORY, max_tokens=60, temperature=0)
    assert "Jameson" in direct.choices[0].message.content
    before = proxy.metrics().get('tokenmill_moderation_flagged_total{category="illicit",direction="output"}', 0)
    via = client(proxy.base_url, OPERATOR)
    whole = via.chat.completions.create(model="remote", messages=STORY, max_tokens=60, temperature=0)
    assert whole.choices[0].finish_reason == "content_filter" and "Jam" not in whole.choices[0].message.content
    chunks = list(via.chat.completions.create(model="remote", messages=STORY, max_tokens=60, temperature=0, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["content_filter"]
    after = proxy.metrics()['tokenmill_moderation_flagged_total{category="illicit",direction="output"}']
    assert after == before + 2
