"""A client that goes away aborts its request: the engine frees it, and the server keeps serving."""

from __future__ import annotations

import json
import socket
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import httpx

ABORTED = 'tokenmill_requests_total{outcome="aborted"}'
MAX_TOKENS = 200  # far more than can be generated before the client leaves


def long_request(model: str, stream: bool) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
            "max_tokens": MAX_TOKENS, "temperature": 0, "ignore_eos": True, "stream": stream}


def assert_freed(server, before: dict[str, float]) -> None:
    after = server.wait_idle(timeout_s=10)
    assert after.get(ABORTED, 0) == before.get(ABORTED, 0) + 1
    generated = after["tokenmill_generation_tokens_total"] - before["tokenmill_generation_tokens_total"]
    assert generated < MAX_TOKENS


def assert_still_serving(server, model: str) -> None:
    r = httpx.post(server.url + "/completions", json={"model": model, "prompt": "Hello", "max_tokens": 3}, timeout=120)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3


def test_disconnect_mid_stream_aborts_and_frees_the_request(server, model):
    before = server.wait_idle()
    with httpx.stream("POST", server.url + "/chat/completions", json=long_request(model, True), timeout=120) as r:
        assert r.status_code == 200
        chunks = 0
        for line in r.iter_lines():
            chunks += line.startswith("data: ")
            if chunks == 2:
                break
    # leaving the block closed the connection halfway through the stream
    assert_freed(server, before)
    assert_still_serving(server, model)


def test_client_giving_up_on_a_non_streamed_request_aborts_it(server, model):
    before = server.wait_idle()
    body = json.dumps(long_request(model, False)).encode()
    url = urlsplit(server.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        deadline = time.monotonic() + 30
        while server.metrics()["tokenmill_requests_running"] < 1:  # wait until the engine is working on it
            assert time.monotonic() < deadline, "the request never started running"
            time.sleep(0.05)
    # the socket is closed, as a client's timeout would close it, long before 200 tokens are done
    assert_freed(server, before)
    assert_still_serving(server, model)


def test_many_streams_leaving_at_once_are_all_freed(server, model):
    before = server.wait_idle()
    with httpx.Client(timeout=120) as http, ExitStack() as streams:
        readers = []  # kept alive: a dropped line iterator would close its connection early
        for _ in range(8):
            r = streams.enter_context(http.stream("POST", server.url + "/chat/completions", json=long_request(model, True)))
            assert r.status_code == 200
            readers.append(r.iter_lines())
        for lines in readers:
            next(lines)
        assert server.metrics()["tokenmill_requests_running"] == 8
    after = server.wait_idle(timeout_s=15)
    assert after.get(ABORTED, 0) == before.get(ABORTED, 0) + 8
    assert_still_serving(server, model)
