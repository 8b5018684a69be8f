"""Against a server that errors, stalls or breaks its stream the benchmark reports it and finishes."""

import asyncio
import time

import httpx
import pytest

from tokenmill.bench.client import Target
from tokenmill.bench.metrics import summarize
from tokenmill.bench.runner import Load, run_load
from tokenmill.bench.workloads import BenchRequest


def _requests(n: int, max_tokens: int = 4) -> list[BenchRequest]:
    return [BenchRequest(max_tokens, prompt=f"prompt {i}") for i in range(n)]


def _run(base_url: str, load: Load, n: int = 4, **target_args):
    target = Target(base_url, "fake", stall_timeout_s=target_args.pop("stall_timeout_s", 1.0), **target_args)
    return asyncio.run(run_load(target, _requests(n), load, progress=False))


@pytest.mark.parametrize(("path", "kind"), [
    ("error", "http_500"), ("busy", "http_503"), ("stall", "stalled"), ("cut", "incomplete"), ("junk", "protocol"),
])
def test_each_failure_is_reported_by_kind_without_hanging(fake_server, path, kind):
    started = time.monotonic()
    records, _ = _run(f"{fake_server}/{path}/v1", Load(concurrency=2))
    assert time.monotonic() - started < 10
    summary = summarize(records, 1.0)
    assert summary.completed == 0 and summary.errors == {kind: 4}
    assert all(r.error for r in records) and summary.error_examples[kind] == records[0].error


def test_whole_request_timeout_ends_a_slow_stream(fake_server):
    records, duration = _run(f"{fake_server}/stall/v1", Load(concurrency=1), n=1, stall_timeout_s=20.0,
                             request_timeout_s=1.0)
    assert records[0].error_kind == "timeout" and duration < 5


def test_healthy_stream_counts_match_usage(fake_server):
    records, _ = _run(f"{fake_server}/ok/v1", Load(concurrency=3), n=6)
    assert all(r.ok and r.output_tokens == r.streamed_tokens == 4 and r.prompt_tokens == 7 for r in records)
    assert all(len(r.itl_s) == 3 and 0 < r.ttft_s <= r.e2e_s for r in records)


def test_open_loop_sends_at_the_requested_rate(fake_server):
    records, _ = _run(f"{fake_server}/ok/v1", Load(request_rate=200.0, burstiness=1.0), n=500)
    assert all(r.ok for r in records)
    last = max(r.sent_at_s for r in records)
    assert 500 / last == pytest.approx(200.0, rel=0.05)


@pytest.mark.parametrize(("load", "most"), [
    (Load(request_rate=float("inf"), max_concurrency=2), 2),
    (Load(concurrency=3), 3),
    (Load(request_rate=float("inf")), 8),
])
def test_requests_in_flight_follow_the_load(fake_server, load, most):
    httpx.post(f"{fake_server}/reset")
    records, _ = _run(f"{fake_server}/ok/v1", load, n=8)
    assert all(r.ok for r in records)
    assert httpx.get(f"{fake_server}/stats").json()["max_in_flight"] == most
