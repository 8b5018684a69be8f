"""Sends one benchmark request as a stream and records when each piece arrived."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx

from tokenmill.bench.metrics import RequestRecord
from tokenmill.bench.workloads import BenchRequest


@dataclass(slots=True)
class Target:
    """The server under test and how to call it."""

    base_url: str
    model: str
    api_key: str | None = None
    ignore_eos: bool = True  # every request makes exactly max_tokens, as the throughput figures assume
    request_timeout_s: float = 600.0  # a whole request
    stall_timeout_s: float = 60.0  # no bytes for this long: the request is reported as stalled

    def url(self, request: BenchRequest) -> str:
        return self.base_url.rstrip("/") + ("/chat/completions" if request.messages is not None else "/completions")

    def body(self, request: BenchRequest) -> dict:
        body: dict = {"model": self.model, "max_tokens": request.max_tokens, "temperature": 0.0, "stream": True,
                      "stream_options": {"include_usage": True}}
        if self.ignore_eos:
            body["ignore_eos"] = True
        if request.messages is not None:
            body["messages"] = request.messages
        else:
            body["prompt"] = request.prompt
        return body

    def client(self, connections: int) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        timeout = httpx.Timeout(self.request_timeout_s, read=self.stall_timeout_s, connect=10.0)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(timeout=timeout, headers=headers, limits=limits)


async def send(client: httpx.AsyncClient, target: Target, request: BenchRequest) -> RequestRecord:
    """Send request and record its timings; never raises for a server's failure."""
    started = time.perf_counter()
    try:
        return await asyncio.wait_for(_stream(client, target, request, started), target.request_timeout_s)
    except TimeoutError:
        return _failed("timeout", f"no complete answer within {target.request_timeout_s:g} s", request)
    except httpx.ReadTimeout:
        return _failed("stalled", f"no bytes from the server for {target.stall_timeout_s:g} s", request)
    except httpx.TimeoutException as exc:
        return _failed("timeout", f"{type(exc).__name__}: {exc}", request)
    except (httpx.TransportError, httpx.StreamError) as exc:
        return _failed("connection", f"{type(exc).__name__}: {exc}", request)
    except (json.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
        return _failed("protocol", f"unreadable stream chunk: {exc}", request)


def _failed(kind: str, message: str, request: BenchRequest) -> RequestRecord:
    return RequestRecord(False, prompt_tokens=request.prompt_tokens, error_kind=kind, error=message)


async def _stream(client: httpx.AsyncClient, target: Target, request: BenchRequest, started: float) -> RequestRecord:
    record = RequestRecord(True, prompt_tokens=request.prompt_tokens)
    last = None
    usage: dict = {}
    finished = False
    async with client.stream("POST", target.url(request), json=target.body(request)) as resp:
        if resp.status_code != 200:
            detail = (await resp.aread())[:300].decode(errors="replace")
            return _failed(f"http_{resp.status_code}", detail, request)
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                finished = True
                break
            chunk = json.loads(data)
            if chunk.get("error"):
                return _failed("server_error", str(chunk["error"])[:300], request)
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                piece = choice.get("text") if "text" in choice else (choice.get("delta") or {}).get("content")
                now = time.perf_counter()
                if piece:
                    if last is None:
                        record.ttft_s = now - started
                    else:
                        record.itl_s.append(now - last)
                    last = now
                    record.streamed_tokens += 1
                if choice.get("finish_reason"):
                    finished = True
    if not finished:
        return _failed("incomplete", "the stream ended before a finish_reason or [DONE]", request)
    record.e2e_s = time.perf_counter() - started
    record.output_tokens = int(usage.get("completion_tokens") or record.streamed_tokens)
    record.prompt_tokens = int(usage.get("prompt_tokens") or request.prompt_tokens)
    if last is None:
        record.ttft_s = record.e2e_s
    return record
