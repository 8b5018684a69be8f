"""EngineCore: one engine replica in its own process, a tight loop fed over ZeroMQ.

It never does HTTP or string work: it takes token ids in and sends new token ids out, one
message per step for all requests that advanced.
"""

from __future__ import annotations

import logging
import os
import traceback

import msgspec
import zmq

from tokenmill.engine.config import EngineConfig
from tokenmill.engine.messages import AbortRequest, EngineRequest, FromEngine, Ready, RequestOutput, Shutdown, StepOutputs, ToEngine

log = logging.getLogger("tokenmill.engine")
_IDLE_POLL_MS = 1000


_SEND_TIMEOUT_MS = 500


def run_engine_core(config: EngineConfig, input_addr: str, output_addr: str, parent_pid: int) -> None:
    """Process entry point: load the model, say Ready, then step until told to stop."""
    from tokenmill.engine.engine import LLMEngine, RequestError

    ctx = zmq.Context()
    inbox = ctx.socket(zmq.PULL)
    inbox.connect(input_addr)
    outbox = ctx.socket(zmq.PUSH)
    outbox.setsockopt(zmq.SNDTIMEO, _SEND_TIMEOUT_MS)  # a dead API process must not block us forever
    outbox.setsockopt(zmq.LINGER, 0)
    outbox.connect(output_addr)
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(ToEngine)
    try:
        engine = LLMEngine(config)
    except Exception as exc:  # tell the API process why, instead of dying silently
        outbox.send(encoder.encode(StepOutputs([RequestOutput("", [], 0, 0, "error", error=f"engine failed to start: {exc}")], None)))
        raise
    outbox.send(encoder.encode(Ready(config.model_name, engine.max_model_len, engine.num_blocks, config.block_size,
                                     str(engine.device), str(engine.dtype).removeprefix("torch."))))
    while True:
        timeout = 0 if engine.has_work else _IDLE_POLL_MS
        pending: list[RequestOutput] = []
        while inbox.poll(timeout):
            timeout = 0
            msg = decoder.decode(inbox.recv())
            if isinstance(msg, EngineRequest):
                try:
                    engine.add_request(msg)
                except RequestError as exc:
                    pending.append(RequestOutput(msg.request_id, [], len(msg.prompt_token_ids), 0, "rejected", error=str(exc)))
            elif isinstance(msg, AbortRequest):
                for request_id in msg.request_ids:
                    out = engine.abort(request_id)
                    if out is not None:
                        pending.append(out)
            elif isinstance(msg, Shutdown):
                return
        if os.getppid() != parent_pid:  # the API process is gone
            return
        if engine.has_work:
            try:
                pending.extend(engine.step())
            except Exception:
                log.error("engine step failed:\n%s", traceback.format_exc())
                pending.extend(_fail_all(engine))
        if pending and not _send(outbox, encoder.encode(StepOutputs(pending, engine.stats())), parent_pid):
            return


def _send(outbox: zmq.Socket, data: bytes, parent_pid: int) -> bool:
    """Send to the API process, waiting while it is alive; False once it is gone."""
    while True:
        try:
            outbox.send(data)
            return True
        except zmq.Again:  # its queue is full: it is busy, or dead
            if os.getppid() != parent_pid:
                return False


def _fail_all(engine) -> list[RequestOutput]:
    outs = []
    for request_id in list(engine.seqs):
        out = engine.abort(request_id)
        if out is not None:
            out.finish_reason, out.error = "error", "the engine failed while running this request"
            outs.append(out)
    return outs


def decode_from_engine(data: bytes, _decoder=msgspec.msgpack.Decoder(FromEngine)) -> FromEngine:
    return _decoder.decode(data)
