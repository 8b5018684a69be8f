"""The request pipeline between HTTP and the engine.

Today it has the stages the serving core needs: admit (queue bound), dispatch to an engine
replica, detokenize with stop strings, and moderate the output (moderation/output.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tokenmill.api.errors import APIError
from tokenmill.api.metrics import Metrics
from tokenmill.engine.client import EngineClient, EngineDeadError
from tokenmill.engine.detokenizer import IncrementalDetokenizer
from tokenmill.engine.messages import EngineRequest, Logprob
from tokenmill.engine.params import SamplingParams
from tokenmill.engine.tokenizer import Tokenizer
from tokenmill.gateway.accounting import Account, Accounting

if TYPE_CHECKING:  # moderation loads only where it is configured
    from tokenmill.moderation.output import OutputCheck


@dataclass(slots=True)
class Generation:
    """One request as the pipeline carries it."""

    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    stop: list[str] = field(default_factory=list)
    account: Account | None = None  # who it runs as; None in a bare pipeline (tests, no accounting)
    output_check: OutputCheck | None = None  # moderation of the output; None: not moderated

    @property
    def cache_salt(self) -> str:
        return self.account.cache_salt if self.account else ""


@dataclass(slots=True)
class Delta:
    text: str
    token_ids: list[int]
    logprobs: list[Logprob] | None = None
    finish_reason: str | None = None


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def as_dict(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens}}


class Pipeline:
    def __init__(self, engine: EngineClient, tokenizer: Tokenizer, metrics: Metrics, max_queued: int,
                 accounting: Accounting | None = None, model_name: str = "") -> None:
        self.engine = engine
        self.model_name = model_name or engine.config.model_name
        self.tokenizer = tokenizer
        self.metrics = metrics
        self.accounting = accounting
        self.max_in_flight = engine.config.max_num_seqs * engine.num_replicas + max_queued
        # admitted but not yet handed to the engine: counted so that a burst cannot all pass the check
        self.reserved: set[str] = set()

    @property
    def overloaded(self) -> bool:
        """True when more than the engines can run at once is already waiting: a router should look elsewhere."""
        in_flight = self.engine.num_in_flight + len(self.reserved)
        return in_flight >= self.engine.config.max_num_seqs * self.engine.num_replicas

    @property
    def max_model_len(self) -> int:
        """The longest sequence one request can have (the engine caps it by its KV cache)."""
        return self.engine.ready.max_model_len

    def admit(self, gen: Generation) -> None:
        """Refuse work the engine cannot take, before any of it is done; else reserve its place."""
        n, m = len(gen.prompt_token_ids), gen.params.max_tokens
        if n + m > self.max_model_len:
            raise APIError(400, f"this model's maximum context length is {self.max_model_len} tokens; the request "
                                f"has {n} prompt tokens and asks for {m} completion tokens ({n + m} in all). "
                                "Shorten the prompt or lower max_tokens.", param="messages", code="context_length_exceeded")
        if self.engine.dead_reason:
            raise APIError(503, f"the engine is down ({self.engine.dead_reason}); the server must be restarted",
                           code="engine_down")
        if self.engine.num_in_flight + len(self.reserved) >= self.max_in_flight:
            self.metrics.rejected.labels(self.model_name).inc()
            raise APIError(503, "the server is at capacity; retry shortly", code="overloaded", headers={"Retry-After": "1"})
        self.reserved.add(gen.request_id)

    def release(self, gen: Generation) -> None:
        """Give back an admitted request's place, and its reservation, if run() never took it (the client left first)."""
        if gen.request_id not in self.reserved:
            return
        self.reserved.discard(gen.request_id)
        if self.accounting and gen.account:  # nothing was computed: it cost nothing
            self.accounting.finish_later(gen.account, gen.request_id, "aborted", 0, 0, 0, None, 0.0)

    async def run(self, gen: Generation, usage: Usage) -> AsyncIterator[Delta]:
        """Generate an admitted request, yielding text deltas; the last carries finish_reason. Fills usage.

        A request that ends normally is settled and committed to the ledger before its last delta is
        yielded, so no client hears of a finish the ledger could lose.
        """
        started = time.perf_counter()
        first_token_s = None
        outcome = "error"
        accounted = False
        usage.prompt_tokens = len(gen.prompt_token_ids)
        detok = IncrementalDetokenizer(self.tokenizer, gen.prompt_token_ids, gen.stop)
        request = EngineRequest(request_id=gen.request_id, prompt_token_ids=gen.prompt_token_ids,
                                params=gen.params, cache_salt=gen.cache_salt)

        async def account(final_outcome: str) -> None:
            nonlocal accounted
            accounted = True
            if self.accounting and gen.account:
                await self.accounting.finish(gen.account, gen.request_id, final_outcome, usage.prompt_tokens,
                                             usage.cached_tokens, usage.completion_tokens, seconds_since(started, first_token_s),
                                             time.perf_counter() - started, durable=True)

        try:
            # the engine registers the request before its first await, so the place passes over without a gap
            self.reserved.discard(gen.request_id)
            async with aclosing(self.engine.generate(request)) as stream:
                async for out in stream:
                    if out.error:
                        raise APIError(400 if out.finish_reason == "rejected" else 500, out.error)
                    if out.token_ids and first_token_s is None:
                        first_token_s = time.perf_counter()
                        usage.cached_tokens = out.num_cached_tokens
                    usage.completion_tokens += len(out.token_ids)
                    piece = detok.push(out.token_ids)
                    finish = "stop" if piece.stopped else out.finish_reason
                    text = piece.text + (detok.finish() if out.finish_reason and not piece.stopped else "")
                    if gen.output_check is not None:
                        text, finish = await screen_output(gen.output_check, text, finish, self.metrics)
                    if finish:
                        outcome = finish
                        await account(outcome)
                    yield Delta(text, out.token_ids, out.logprobs, finish)
                    if finish:
                        return  # leaving the engine stream early (a stop string, the filter) aborts it there
        except EngineDeadError as exc:  # it died between admit and here
            raise APIError(503, f"the engine is down ({exc}); the server must be restarted", code="engine_down") from exc
        except (GeneratorExit, asyncio.CancelledError):  # closed early, or cancelled by a client disconnect
            if outcome == "error":  # no finish reason reached the client yet
                outcome = "aborted"
            raise
        finally:
            if gen.output_check is not None:
                gen.output_check.cancel()
            self.metrics.observe_request(self.model_name, outcome, started, first_token_s, usage)
            if not accounted and self.accounting and gen.account:
                self.accounting.finish_later(gen.account, gen.request_id, outcome, usage.prompt_tokens,
                                             usage.cached_tokens, usage.completion_tokens,
                                             seconds_since(started, first_token_s), time.perf_counter() - started)



async def screen_output(check: OutputCheck, text: str, finish: str | None, metrics: Metrics) -> tuple[str, str | None]:
    """The moderate-stream stage, for our models' output and upstream answers alike: what of this piece may
    be sent, and the finish reason (content_filter when the filter ends the output). Outputs cut, and outputs
    that ended with terms masked, count once in the metrics."""
    screened = await check.release(text, last=bool(finish))
    if screened.blocked is not None:
        metrics.observe_moderation("output", screened.blocked)
        return screened.text, "content_filter"
    if finish:
        metrics.observe_moderation("output", check.verdict())  # counts only what was flagged, here masked terms
    return screened.text, finish


def seconds_since(started: float, moment: float | None) -> float | None:
    """moment - started in seconds; None when the moment never came (no first token)."""
    return None if moment is None else moment - started
