"""Admission: reserve a request's worst case against every limit that applies, settle the real use.

A request takes 1 from each RPM bucket, prompt + max_tokens from each TPM bucket and its
worst-case cost from each budget, all at once or not at all; when it ends the unused tokens and
money are given back. Rejections follow OpenAI: 429 with Retry-After, or `insufficient_quota`
with `x-should-retry: false` when waiting cannot help.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from tokenmill.admission.buckets import Bucket, BucketState, Verdict, per_minute
from tokenmill.api.errors import APIError
from tokenmill.metering.pricing import Prices, cost_micros
from tokenmill.tenancy.records import Principal


class Limiter(Protocol):
    async def reserve(self, buckets: list[Bucket]) -> Verdict: ...
    async def refund(self, buckets: list[Bucket], amounts: list[int]) -> None: ...
    async def seed(self, key: str, used: int) -> None: ...
    async def close(self) -> None: ...


@dataclass(slots=True)
class Ticket:
    """What an admitted request holds until it is settled."""

    buckets: list[Bucket]
    states: list[BucketState]
    reserved_tokens: int
    reserved_cost: int
    settled: bool = False

    def headers(self) -> dict[str, str]:
        return rate_limit_headers(self.states)


def build_buckets(principal: Principal, model: str, tokens: int, cost: int) -> list[Bucket]:
    buckets = []
    for scope, limits in principal.limits_for(model):
        if limits.rpm is not None:
            buckets.append(per_minute(scope, "rpm", "requests", limits.rpm, 1))
        if limits.tpm is not None:
            buckets.append(per_minute(scope, "tpm", "tokens", limits.tpm, tokens))
        if limits.budget_micros is not None and ":model:" not in scope:
            buckets.append(Bucket(f"{scope}:budget", "budget", limits.budget_micros, 0.0, cost, scope))
    return buckets


class Admission:
    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def seed_budgets(self, spent_by_scope: dict[str, int]) -> None:
        """Budget use from the ledger ('key:ID' / 'tenant:ID' -> micros), so a restart forgets nothing."""
        for scope, spent in spent_by_scope.items():
            await self.limiter.seed(f"{scope}:budget", spent)

    async def admit(self, principal: Principal, model: str, prompt_tokens: int, max_tokens: int,
                    prices: Prices) -> Ticket:
        """Reserve the request's worst case, or raise the 429 that says which limit and when to retry."""
        tokens = prompt_tokens + max_tokens
        cost = cost_micros(prices, prompt_tokens, 0, max_tokens)
        buckets = build_buckets(principal, model, tokens, cost)
        if not buckets:
            return Ticket([], [], tokens, cost)
        verdict = await self.limiter.reserve(buckets)
        if verdict.allowed:
            return Ticket(buckets, verdict.states, tokens, cost)
        raise _rejection(verdict)

    async def settle(self, ticket: Ticket, used_tokens: int, used_cost: int) -> None:
        """Give back what the request reserved and did not use; once per ticket."""
        if ticket.settled:
            return
        ticket.settled = True
        amounts = []
        for b in ticket.buckets:
            if b.kind == "tokens":
                amounts.append(max(0, b.cost - used_tokens))
            elif b.kind == "budget":
                amounts.append(max(0, b.cost - used_cost))
            else:
                amounts.append(0)
        await self.limiter.refund(ticket.buckets, amounts)


def _scope_name(bucket: Bucket) -> str:
    level, ident, *model = bucket.scope.split(":", 2)
    who = "API key" if level == "key" else "tenant"
    return f"{who} {ident}" + (f" on model {model[0].removeprefix('model:')}" if model else "")


def _rejection(verdict: Verdict) -> APIError:
    b = verdict.blocking
    assert b is not None
    if b.kind == "budget":
        return APIError(429, f"the budget of the {_scope_name(b)} is spent: this request could cost up to "
                             f"{b.cost} micro-units and the budget is {b.capacity}. Ask an administrator to raise it.",
                        code="insufficient_quota", error_type="insufficient_quota", headers={"x-should-retry": "false"})
    what = "requests per minute (RPM)" if b.kind == "requests" else "tokens per minute (TPM)"
    if verdict.retry_after_s is None:
        return APIError(429, f"request too large for the {what} limit of the {_scope_name(b)}: it needs {b.cost} "
                             f"and the limit is {b.capacity}. Lower max_tokens or shorten the prompt.",
                        code="rate_limit_exceeded", error_type=b.kind, headers={"x-should-retry": "false"})
    wait = verdict.retry_after_s
    headers = {"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(max(1, math.ceil(wait * 1000))),
               **rate_limit_headers([BucketState(b, 0, wait)])}
    return APIError(429, f"rate limit reached for {what} of the {_scope_name(b)}: limit {b.capacity}, requested "
                         f"{b.cost}. Please try again in {duration(wait)}.",
                    code="rate_limit_exceeded", error_type=b.kind, headers=headers)


def duration(seconds: float) -> str:
    """OpenAI's reset format: 20ms, 1.5s, 6m0s."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


def rate_limit_headers(states: list[BucketState]) -> dict[str, str]:
    """x-ratelimit-limit|remaining|reset-requests|tokens from the tightest bucket of each kind."""
    headers = {}
    for kind, name in (("requests", "requests"), ("tokens", "tokens")):
        mine = [s for s in states if s.bucket.kind == kind]
        if not mine:
            continue
        tight = min(mine, key=lambda s: s.remaining)
        headers[f"x-ratelimit-limit-{name}"] = str(tight.bucket.capacity)
        headers[f"x-ratelimit-remaining-{name}"] = str(tight.remaining)
        headers[f"x-ratelimit-reset-{name}"] = duration(tight.reset_s)
    return headers
