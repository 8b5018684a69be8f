"""EngineClient: the API process's handle on its engine replicas (asyncio, ZeroMQ)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import zmq
import zmq.asyncio

from tokenmill.engine.config import EngineConfig
from tokenmill.engine.core import decode_from_engine, run_engine_core
from tokenmill.engine.messages import AbortRequest, EngineRequest, EngineStats, Ready, RequestOutput, Shutdown, StepOutputs

log = logging.getLogger("tokenmill.client")


class EngineDeadError(RuntimeError):
    pass


@dataclass(slots=True)
class Replica:
    index: int
    process: multiprocessing.process.BaseProcess
    inbox: zmq.asyncio.Socket
    outbox: zmq.asyncio.Socket
    ready: Ready | None = None
    stats: EngineStats = field(default_factory=EngineStats)
    in_flight: set[str] = field(default_factory=set)


class EngineClient:
    """Starts engine processes, sends them requests, and fans their outputs out per request."""

    def __init__(self, config: EngineConfig, num_replicas: int = 1) -> None:
        self.config = config
        self.num_replicas = num_replicas
        self.ctx = zmq.asyncio.Context()
        self.replicas: list[Replica] = []
        self.queues: dict[str, asyncio.Queue[RequestOutput]] = {}
        self.owner: dict[str, Replica] = {}
        self._ipc_dir = tempfile.mkdtemp(prefix="tokenmill-")
        self._tasks: list[asyncio.Task] = []
        self._encoder = msgspec.msgpack.Encoder()
        self.dead_reason: str | None = None

    async def start(self, timeout_s: float = 600.0) -> None:
        """Spawn the replicas and wait until each has loaded its model."""
        mp = multiprocessing.get_context("spawn")
        for i in range(self.num_replicas):
            in_addr = f"ipc://{self._ipc_dir}/in-{i}"
            out_addr = f"ipc://{self._ipc_dir}/out-{i}"
            inbox = self.ctx.socket(zmq.PUSH)
            inbox.bind(in_addr)
            outbox = self.ctx.socket(zmq.PULL)
            outbox.bind(out_addr)
            proc = mp.Process(target=run_engine_core, args=(self.config, in_addr, out_addr, os.getpid()),
                              name=f"tokenmill-engine-{i}", daemon=True)
            proc.start()
            self.replicas.append(Replica(i, proc, inbox, outbox))
        await asyncio.wait_for(asyncio.gather(*(self._await_ready(r) for r in self.replicas)), timeout_s)
        self._tasks = [asyncio.create_task(self._read_outputs(r)) for r in self.replicas]
        self._tasks.append(asyncio.create_task(self._watch_processes()))

    async def _await_ready(self, replica: Replica) -> None:
        while True:
            if await replica.outbox.poll(200):
                msg = decode_from_engine(await replica.outbox.recv())
                if isinstance(msg, Ready):
                    replica.ready = msg
                    return
                if isinstance(msg, StepOutputs) and msg.outputs and msg.outputs[0].error:
                    raise EngineDeadError(msg.outputs[0].error)
            elif not replica.process.is_alive():
                raise EngineDeadError(f"engine process exited with code {replica.process.exitcode} while loading the model")

    @property
    def ready(self) -> Ready:
        assert self.replicas and self.replicas[0].ready
        return self.replicas[0].ready

    @property
    def stats(self) -> EngineStats:
        """Stats summed over replicas (KV usage averaged)."""
        total = EngineStats()
        for r in self.replicas:
            s = r.stats
            total.num_running += s.num_running
            total.num_waiting += s.num_waiting
            total.kv_usage += s.kv_usage / len(self.replicas)
            total.num_blocks += s.num_blocks
            total.prefix_queries_tokens += s.prefix_queries_tokens
            total.prefix_hit_tokens += s.prefix_hit_tokens
            total.num_preemptions += s.num_preemptions
        return total

    @property
    def num_in_flight(self) -> int:
        return len(self.queues)

    async def generate(self, request: EngineRequest) -> AsyncIterator[RequestOutput]:
        """Send a request to the least loaded replica and yield its outputs until it finishes."""
        if self.dead_reason:
            raise EngineDeadError(self.dead_reason)
        replica = min(self.replicas, key=lambda r: len(r.in_flight))
        queue: asyncio.Queue[RequestOutput] = asyncio.Queue()
        rid = request.request_id
        self.queues[rid] = queue
        self.owner[rid] = replica
        replica.in_flight.add(rid)
        finished = False
        try:
            await replica.inbox.send(self._encoder.encode(request))
            while True:
                out = await queue.get()
                if out.finish_reason is not None:
                    finished = True
                yield out
                if finished:
                    return
        finally:
            self.queues.pop(rid, None)
            self.owner.pop(rid, None)
            replica.in_flight.discard(rid)
            if not finished:  # the consumer went away (client disconnect): free the engine's KV
                self.abort_soon(rid, replica)

    def abort_soon(self, request_id: str, replica: Replica) -> None:
        if self.dead_reason is None:
            replica.inbox.send(self._encoder.encode(AbortRequest([request_id])))

    async def _read_outputs(self, replica: Replica) -> None:
        while True:
            msg = decode_from_engine(await replica.outbox.recv())
            if not isinstance(msg, StepOutputs):
                continue
            if msg.stats is not None:
                replica.stats = msg.stats
            for out in msg.outputs:
                queue = self.queues.get(out.request_id)
                if queue is not None:
                    queue.put_nowait(out)

    async def _watch_processes(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            for r in self.replicas:
                if not r.process.is_alive():
                    self.dead_reason = f"engine replica {r.index} exited with code {r.process.exitcode}"
                    log.error(self.dead_reason)
                    for rid in list(r.in_flight):
                        q = self.queues.get(rid)
                        if q is not None:
                            q.put_nowait(RequestOutput(rid, [], 0, 0, "error", error=self.dead_reason))
                    return

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for r in self.replicas:
            if r.process.is_alive():
                try:
                    await asyncio.wait_for(r.inbox.send(self._encoder.encode(Shutdown())), 1.0)
                except Exception:
                    pass
        for r in self.replicas:
            await asyncio.to_thread(r.process.join, 5.0)
            if r.process.is_alive():
                r.process.kill()
            r.inbox.close(0)
            r.outbox.close(0)
        self.ctx.term()
        shutil.rmtree(self._ipc_dir, ignore_errors=True)


def new_request_id(prefix: str = "req") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"
