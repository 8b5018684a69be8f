"""Runs a workload against a server: closed loop (fixed concurrency) or open loop (arrivals at a rate)."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from dataclasses import dataclass

from tqdm import tqdm

from tokenmill.bench.arrivals import arrival_times
from tokenmill.bench.client import Target, send
from tokenmill.bench.metrics import RequestRecord
from tokenmill.bench.workloads import BenchRequest


@dataclass(slots=True)
class Load:
    """One point of a sweep: concurrency for a closed loop, or a request rate for an open loop."""

    concurrency: int | None = None
    request_rate: float | None = None  # requests / s; inf sends everything at once
    burstiness: float = 1.0
    max_concurrency: int | None = None  # open loop: cap on requests in flight

    @property
    def label(self) -> str:
        if self.concurrency is not None:
            return f"concurrency {self.concurrency}"
        cap = f", at most {self.max_concurrency} in flight" if self.max_concurrency else ""
        return f"rate {self.request_rate:g}/s, burstiness {self.burstiness:g}{cap}"


async def run_load(target: Target, requests: list[BenchRequest], load: Load, progress: bool = True,
                   seed: int = 0) -> tuple[list[RequestRecord], float]:
    """Send every request under this load; return the records (in request order) and the wall time."""
    records: list[RequestRecord | None] = [None] * len(requests)
    connections = load.concurrency or load.max_concurrency or len(requests)
    bar = tqdm(total=len(requests), desc=load.label, unit="req", file=sys.stderr, disable=not progress, leave=False)
    async with target.client(connections + 4) as client:
        async def one(i: int) -> None:
            sent_at = time.perf_counter() - started
            records[i] = record = await send(client, target, requests[i])
            record.sent_at_s = sent_at
            bar.update(1)

        started = time.perf_counter()
        if load.concurrency is not None:
            await _closed_loop(one, len(requests), load.concurrency)
        else:
            await _open_loop(one, len(requests), load, seed, started)
        duration = time.perf_counter() - started
    bar.close()
    return [r for r in records if r is not None], duration


async def _closed_loop(one, count: int, concurrency: int) -> None:
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            i = next_index
            next_index += 1
            await one(i)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))


async def _open_loop(one, count: int, load: Load, seed: int, started: float) -> None:
    rate = load.request_rate if load.request_rate is not None else math.inf
    times = arrival_times(count, rate, load.burstiness, seed)
    gate = asyncio.Semaphore(load.max_concurrency) if load.max_concurrency else None

    async def gated(i: int) -> None:
        if gate is None:
            await one(i)
            return
        async with gate:
            await one(i)

    tasks = []
    for i, at in enumerate(times):
        delay = started + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(gated(i)))
    await asyncio.gather(*tasks)
