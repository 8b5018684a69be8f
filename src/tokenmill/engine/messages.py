"""What the API process and an engine process say to each other (msgpack on ZeroMQ)."""

from __future__ import annotations

import msgspec

from tokenmill.engine.params import SamplingParams


class EngineRequest(msgspec.Struct, tag="add", kw_only=True):
    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    cache_salt: str = ""


class AbortRequest(msgspec.Struct, tag="abort"):
    request_ids: list[str]


class Shutdown(msgspec.Struct, tag="shutdown"):
    pass


class Logprob(msgspec.Struct, array_like=True):
    token_id: int
    logprob: float
    top: list[tuple[int, float]]


class RequestOutput(msgspec.Struct, array_like=True):
    """New tokens of one request in one step; finish_reason set on its last message."""

    request_id: str
    token_ids: list[int]
    num_prompt_tokens: int
    num_cached_tokens: int
    finish_reason: str | None = None  # stop | length | abort | error | rejected
    logprobs: list[Logprob] | None = None
    error: str | None = None


class EngineStats(msgspec.Struct):
    num_running: int = 0
    num_waiting: int = 0
    kv_usage: float = 0.0
    num_blocks: int = 0
    prefix_queries_tokens: int = 0
    prefix_hit_tokens: int = 0
    num_preemptions: int = 0
    step_s: float = 0.0


class StepOutputs(msgspec.Struct, tag="outputs"):
    outputs: list[RequestOutput]
    stats: EngineStats | None = None


class Ready(msgspec.Struct, tag="ready"):
    model_name: str
    max_model_len: int
    num_blocks: int
    block_size: int
    device: str
    dtype: str


ToEngine = EngineRequest | AbortRequest | Shutdown
FromEngine = StepOutputs | Ready
