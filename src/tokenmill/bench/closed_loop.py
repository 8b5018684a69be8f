"""A closed-loop serving benchmark: N concurrent streams against an OpenAI-compatible server.

Metrics follow `vllm bench serve`: TTFT, TPOT per request = (E2E - TTFT) / (output tokens - 1),
output throughput = all output tokens / wall time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass, field

import httpx


@dataclass(slots=True)
class RequestResult:
    ok: bool
    ttft_s: float = 0.0
    e2e_s: float = 0.0
    output_tokens: int = 0
    prompt_tokens: int = 0
    error: str = ""


@dataclass(slots=True)
class BenchReport:
    concurrency: int
    num_requests: int
    duration_s: float
    output_tok_per_s: float
    request_per_s: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    tpot_p50_ms: float
    tpot_p99_ms: float
    e2e_p50_ms: float
    errors: int
    config: dict = field(default_factory=dict)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _one(client: httpx.AsyncClient, url: str, body: dict) -> RequestResult:
    started = time.perf_counter()
    first = None
    tokens = 0
    usage = {}
    try:
        async with client.stream("POST", url, json=body) as resp:
            if resp.status_code != 200:
                return RequestResult(False, error=f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}")
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    usage = chunk["usage"]
                if chunk.get("choices"):
                    if first is None:
                        first = time.perf_counter()
                    tokens += 1
    except httpx.HTTPError as exc:
        return RequestResult(False, error=f"{type(exc).__name__}: {exc}")
    end = time.perf_counter()
    return RequestResult(True, (first or end) - started, end - started, usage.get("completion_tokens", tokens),
                         usage.get("prompt_tokens", 0))


async def run_closed_loop(base_url: str, model: str, concurrency: int, num_requests: int, prompt: str | list[int],
                          max_tokens: int, api_key: str | None = None, timeout_s: float = 600.0) -> BenchReport:
    """Keep `concurrency` streams busy until num_requests have finished."""
    url = base_url.rstrip("/") + "/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}}
    results: list[RequestResult] = []
    remaining = num_requests
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=timeout_s, headers=headers, limits=limits) as client:
        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                results.append(await _one(client, url, body))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        duration = time.perf_counter() - started
    good = [r for r in results if r.ok]
    tpots = [(r.e2e_s - r.ttft_s) / (r.output_tokens - 1) for r in good if r.output_tokens > 1]
    ms = 1000.0
    return BenchReport(
        concurrency=concurrency, num_requests=len(results), duration_s=duration,
        output_tok_per_s=sum(r.output_tokens for r in good) / duration, request_per_s=len(good) / duration,
        ttft_p50_ms=_percentile([r.ttft_s for r in good], 0.5) * ms, ttft_p99_ms=_percentile([r.ttft_s for r in good], 0.99) * ms,
        tpot_p50_ms=_percentile(tpots, 0.5) * ms, tpot_p99_ms=_percentile(tpots, 0.99) * ms,
        e2e_p50_ms=_percentile([r.e2e_s for r in good], 0.5) * ms, errors=len(results) - len(good),
        config={"base_url": base_url, "model": model, "max_tokens": max_tokens,
                "prompt_tokens": good[0].prompt_tokens if good else 0})


def report_dict(report: BenchReport) -> dict:
    return asdict(report)
