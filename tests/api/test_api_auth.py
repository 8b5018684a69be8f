"""A small server with an API key and room for one request: 401s, 503 with Retry-After, a dead engine."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import openai
import pytest

KEY = "secret"
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


@pytest.fixture(scope="module")
def keyed(spawn_server):
    """--max-num-seqs 1 and no waiting queue, so a second request while one runs is refused."""
    server = spawn_server("--api-key", KEY, "--max-num-seqs", "1", "--max-queued-requests", "0",
                          "--kv-cache-memory", "32MiB", "--max-model-len", "512")
    yield server
    # a plain Ctrl-C/SIGTERM stops the API process and leaves nothing behind (even with its engine killed below)
    server.stop(signal.SIGTERM)


def chat_body(model: str, max_tokens: int, stream: bool = False) -> dict:
    return {"model": model, "messages": STORY, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "stream": stream}


def test_missing_or_wrong_key_is_401(keyed, model):
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY}):
        r = httpx.post(keyed.url + "/chat/completions", json=chat_body(model, 2), headers=headers, timeout=30)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["type"] == "invalid_request_error"  # as OpenAI answers a bad key
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed.url, api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed.url, api_key="wrong", max_retries=0).chat.completions.create(
            model=model, messages=STORY, max_tokens=2)


def test_key_is_checked_before_the_body(keyed):
    r = httpx.post(keyed.url + "/chat/completions", content=b"{not json", timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 401, r.text


def test_right_key_works_and_health_stays_open(keyed, model):
    client = openai.OpenAI(base_url=keyed.url, api_key=KEY, max_retries=0, timeout=120)
    assert [m.id for m in client.models.list().data] == [model]
    assert client.chat.completions.create(model=model, messages=STORY, max_tokens=2).usage.completion_tokens == 2
    assert httpx.get(keyed.base_url + "/health", timeout=10).status_code == 200
    assert httpx.get(keyed.url + "/models", timeout=10).status_code == 401


def test_full_queue_is_503_with_retry_after(keyed, model):
    auth = {"authorization": f"Bearer {KEY}"}
    rejected_before = keyed.metrics().get("tokenmill_requests_rejected_total", 0)
    with httpx.stream("POST", keyed.url + "/chat/completions", json=chat_body(model, 400, stream=True), headers=auth,
                      timeout=120) as running:
        assert running.status_code == 200
        lines = running.iter_lines()  # kept: a dropped iterator closes the connection
        next(lines)  # the first token is out: the one place is taken
        client = openai.OpenAI(base_url=keyed.url, api_key=KEY, max_retries=0, timeout=60)
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model=model, messages=STORY, max_tokens=2)
        assert info.value.status_code == 503
        assert int(info.value.response.headers["retry-after"]) >= 1
        assert info.value.body["type"] == "service_unavailable" and "retry" in info.value.message
    assert keyed.metrics().get("tokenmill_requests_rejected_total", 0) == rejected_before + 1
    keyed.wait_idle()
    r = httpx.post(keyed.url + "/chat/completions", json=chat_body(model, 2), headers=auth, timeout=120)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize("stream", [False, True])
def test_a_burst_is_admitted_only_up_to_capacity(keyed, model, stream):
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=keyed.url, headers={"authorization": f"Bearer {KEY}"}, timeout=120) as http:
            async def one() -> int:
                async with http.stream("POST", "/chat/completions", json=chat_body(model, 16, stream=stream)) as r:
                    await r.aread()
                    return r.status_code

            return sorted(await asyncio.gather(*(one() for _ in range(4))))

    keyed.wait_idle()
    assert asyncio.run(burst()) == [200, 503, 503, 503]


def test_a_dead_engine_is_reported_not_hung(keyed, model):
    # last in this module: it kills the server's engine process
    auth = {"authorization": f"Bearer {KEY}"}
    [engine] = keyed.engine_pids
    os.kill(engine, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (health := httpx.get(keyed.base_url + "/health", timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "/health still says ok with the engine gone"
        time.sleep(0.1)
    assert health.status_code == 503 and "exited" in health.json()["detail"]
    for stream in (False, True):
        r = httpx.post(keyed.url + "/chat/completions", json=chat_body(model, 2, stream=stream), headers=auth, timeout=30)
        assert r.status_code == 503, r.text
        assert "engine" in r.json()["error"]["message"]
