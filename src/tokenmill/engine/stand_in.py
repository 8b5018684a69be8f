"""An instant engine stand-in: answers every request at once with fixed tokens and loads no model.

Only for measuring what the gateway itself adds (`tokenmill serve --engine-stand-in N`): with the
engine's time taken out, what is left of a request's latency is HTTP, authentication, limits,
detokenization and the ledger. It speaks EngineClient's interface; nothing else uses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from tokenmill.engine.config import EngineConfig
from tokenmill.engine.messages import EngineRequest, EngineStats, Ready, RequestOutput

# " the" in most byte-level BPE vocabularies is one short, common token; any id decodes to something
_FILLER_TOKEN = 260


class StandInEngine:
    def __init__(self, config: EngineConfig, num_tokens: int, max_model_len: int = 8192) -> None:
        self.config = config
        self.num_replicas = 1
        self.num_tokens = num_tokens
        self.dead_reason: str | None = None
        self.stats = EngineStats()
        self.ready = Ready(config.model_name, max_model_len, 0, config.block_size, "none", "none")
        self._in_flight = 0

    async def start(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    @property
    def num_in_flight(self) -> int:
        return self._in_flight

    async def generate(self, request: EngineRequest) -> AsyncIterator[RequestOutput]:
        self._in_flight += 1
        try:
            n = min(self.num_tokens, request.params.max_tokens)
            yield RequestOutput(request.request_id, [_FILLER_TOKEN] * n, len(request.prompt_token_ids), 0, "length")
        finally:
            self._in_flight -= 1
