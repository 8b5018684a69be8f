"""The gateway's tenancy stages: who is calling, may they, and what they used.

authenticate: the bearer token is the operator's key (no limits) or a tenant's key (its limits).
admit: reserve the request's worst case against every limit (admission/controller.py).
finish: settle the reservation to the real use and write the usage record; a request that ended
normally is committed to the ledger before its client hears that it finished.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from dataclasses import dataclass

from tokenmill.admission.controller import Admission, Ticket
from tokenmill.api.errors import APIError
from tokenmill.api.metrics import Metrics
from tokenmill.metering.ledger import Ledger, UsageRecord
from tokenmill.metering.pricing import Prices, cost_micros
from tokenmill.tenancy.records import Principal
from tokenmill.tenancy.store import TenancyStore

log = logging.getLogger("tokenmill.gateway")

OPERATOR = "operator"  # tenant id recorded for requests made with the server's own --api-key


@dataclass(slots=True)
class Account:
    """Who a request runs as and what it holds until it finishes."""

    principal: Principal | None  # None: the operator's key, or a server without keys
    model: str
    prices: Prices
    ticket: Ticket | None = None
    scenario: str = ""

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant.id if self.principal else OPERATOR

    @property
    def key_id(self) -> str:
        return self.principal.key.id if self.principal else ""

    @property
    def cache_salt(self) -> str:
        """Tenants never share prefix-cache blocks: each one's hashes are salted with its id."""
        return f"tenant:{self.tenant_id}"

    def headers(self) -> dict[str, str]:
        return self.ticket.headers() if self.ticket else {}


class Accounting:
    def __init__(self, store: TenancyStore | None, admission: Admission, ledger: Ledger | None, metrics: Metrics,
                 operator_key: str | None, keys_required: bool) -> None:
        self.store = store
        self.admission = admission
        self.ledger = ledger
        self.metrics = metrics
        self.operator_key = operator_key.encode() if operator_key else None
        self.keys_required = keys_required  # a server started with an operator or admin key
        self._pending: set[asyncio.Task] = set()

    @property
    def requires_key(self) -> bool:
        """A server with no keys of any kind is open (on loopback only); once a tenant key exists it is not."""
        return self.keys_required or (self.store is not None and self.store.has_keys())

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal for an 'Authorization: Bearer ...' header; None for the operator. 401 otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token:
            if self.operator_key is not None and hmac.compare_digest(token.encode(), self.operator_key):
                return None
            if self.store is not None:
                principal = self.store.authenticate(token)
                if principal is not None:
                    return principal
        if not self.requires_key:  # an open server takes any token, or none, as the operator
            return None
        raise APIError(401, "invalid API key: send a valid, unrevoked, unexpired key as 'Authorization: Bearer <key>'",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    async def admit(self, account: Account, prompt_tokens: int, max_tokens: int) -> None:
        if account.principal is None:
            return
        try:
            account.ticket = await self.admission.admit(account.principal, account.model, prompt_tokens, max_tokens,
                                                        account.prices)
        except APIError as exc:
            self.refused(account, "rejected", prompt_tokens, exc.code or "rejected")
            raise

    def refused(self, account: Account, outcome: str, prompt_tokens: int, reason: str | None = None) -> None:
        """Record a request turned away before any engine saw it (a limit, the content filter): it costs nothing."""
        self.metrics.observe_rejection(account.tenant_id, account.model, reason or outcome)
        self._record_nowait(self._record(account, "", prompt_tokens, 0, 0, outcome, None, None))

    async def finish(self, account: Account, request_id: str, outcome: str, prompt_tokens: int, cached_tokens: int,
                     completion_tokens: int, ttft_s: float | None, e2e_s: float, durable: bool) -> None:
        """Settle and record; with durable, return only once the record is committed."""
        cost = cost_micros(account.prices, prompt_tokens, cached_tokens, completion_tokens)
        self.metrics.observe_usage(account.tenant_id, account.model, prompt_tokens + completion_tokens, cost)
        if account.ticket is not None:
            await self.admission.settle(account.ticket, prompt_tokens + completion_tokens, cost)
        record = self._record(account, request_id, prompt_tokens, cached_tokens, completion_tokens, outcome,
                              ttft_s, e2e_s, cost)
        if self.ledger is None:
            return
        if durable:
            await self.ledger.record(record)
        else:
            self._record_nowait(record)

    def finish_later(self, account: Account, request_id: str, outcome: str, prompt_tokens: int, cached_tokens: int,
                     completion_tokens: int, ttft_s: float | None, e2e_s: float) -> None:
        """finish() from a place that cannot await (a cancelled request's cleanup)."""
        task = asyncio.ensure_future(self.finish(account, request_id, outcome, prompt_tokens, cached_tokens,
                                                 completion_tokens, ttft_s, e2e_s, durable=False))
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("settling a finished request failed: %s", task.exception())

    async def drain(self) -> None:
        """Wait for settlements still in flight (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _record(self, account: Account, request_id: str, prompt_tokens: int, cached_tokens: int,
                completion_tokens: int, outcome: str, ttft_s: float | None, e2e_s: float | None,
                cost: int = 0) -> UsageRecord:
        return UsageRecord(
            request_id=request_id or f"rejected-{uuid.uuid4().hex}", tenant_id=account.tenant_id, key_id=account.key_id,
            model=account.model, scenario=account.scenario, prompt_tokens=prompt_tokens, cached_tokens=cached_tokens,
            completion_tokens=completion_tokens, cost_micros=cost, outcome=outcome,
            ttft_ms=None if ttft_s is None else ttft_s * 1000.0, e2e_ms=None if e2e_s is None else e2e_s * 1000.0)

    def _record_nowait(self, record: UsageRecord) -> None:
        if self.ledger is not None:
            self.ledger.record_nowait(record)
