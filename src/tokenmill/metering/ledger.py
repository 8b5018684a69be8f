"""The usage ledger: one record per request, written off the hot path by a group-committing thread.

Callers hand records to a queue. The writer thread takes everything queued (at most BATCH_SIZE
per commit), writes it in one transaction and then tells every caller of `record()` whose
record was in it. While one batch commits the next one gathers, so batches grow with the load
and an awaited record waits for about one commit, never for a timer. Writes are idempotent on
request_id: a record written twice is stored once.

A failed write never stops the thread: it retries the batch, and if the database stays away it
keeps the records in memory, tells the waiting callers (so no client is told that a request
finished when its record is not safe), and writes them with a later batch.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass, field, fields

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from tokenmill.db.engine import IMMEDIATE
from tokenmill.db.schema import usage_records

log = logging.getLogger("tokenmill.ledger")

OUTCOMES = frozenset({"stop", "length", "content_filter", "aborted", "error", "rejected"})
BATCH_SIZE = 500  # records per commit, at most
RETRY_DELAYS_S = (0.02, 0.1, 0.5)  # between attempts at one batch
RETRY_IDLE_S = 1.0  # how soon kept records are tried again when nothing new arrives
MAX_KEPT = 100_000  # records kept in memory while the database is away; older ones are dropped (and logged)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class UsageRecord:
    """What one request used. Prompts and completions are never stored."""

    request_id: str
    tenant_id: str
    key_id: str
    model: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_micros: int
    outcome: str  # stop, length, content_filter, aborted, error, rejected
    scenario: str = ""
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    created_at: int = field(default_factory=now_ms)  # Unix ms, when the request finished

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"usage outcome {self.outcome!r} is not one of {', '.join(sorted(OUTCOMES))}")
        if not self.request_id:
            raise ValueError("a usage record needs a request_id: it is the key that makes writing it idempotent")

    def row(self) -> dict:
        """The usage_records row: the fields plus the UTC day they are grouped by."""
        row = {name: getattr(self, name) for name in _FIELDS}
        row["day"] = day_of(self.created_at)
        return row


_FIELDS = tuple(f.name for f in fields(UsageRecord))


def day_of(ms: int) -> str:
    """The UTC day (YYYY-MM-DD) of a Unix time in milliseconds."""
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


class LedgerError(RuntimeError):
    pass


_NONE_DROPPED: frozenset[str] = frozenset()  # a batch future's result: the request ids the database refused


class Ledger:
    """Writes usage records to the database in batches from a thread of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = _idempotent_insert(engine)
        self._cond = threading.Condition()
        self._queue: list[UsageRecord] = []
        self._future: concurrent.futures.Future | None = None  # resolved when the queued records are committed
        self._kept: list[UsageRecord] = []  # failed to write; retried with the next batch (writer thread only)
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tokenmill-ledger", daemon=True)
        self._thread.start()

    async def record(self, rec: UsageRecord) -> None:
        """Queue rec and return once it is committed; raises LedgerError if it could not be written yet."""
        with self._cond:
            if self._closing:
                future = None
            else:
                self._queue.append(rec)
                future = self._batch_future()
                self._cond.notify()
        if future is None:
            await asyncio.to_thread(self._write_after_close, [rec])
            return
        dropped = await asyncio.wrap_future(future)
        if rec.request_id in dropped:
            raise LedgerError(f"usage record {rec.request_id} was refused by the database; see the log for why")

    def record_nowait(self, rec: UsageRecord) -> None:
        """Queue rec to be written with the next batch, without waiting for it."""
        with self._cond:
            if not self._closing:
                self._queue.append(rec)
                self._cond.notify()
                return
        try:
            self._write_after_close([rec])
        except LedgerError as exc:
            log.error("%s", exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record queued so far is committed; False if that did not happen within timeout."""
        with self._cond:
            if self._closed:
                return not self._kept
            future = self._batch_future()
            self._cond.notify()
        try:
            future.result(timeout)
        except (concurrent.futures.TimeoutError, LedgerError):
            return False
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything still queued and stop the writer thread. Safe to call more than once."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the ledger writer did not finish within %.0f s; %d queued records may be lost",
                      timeout or 0, len(self._queue))

    def totals_by_scope(self) -> dict[str, int]:
        """Money spent so far, in micros, per 'key:<id>' and 'tenant:<id>' (budget counters start from it)."""
        totals: dict[str, int] = {}
        with self.engine.connect() as conn:
            for column, prefix in ((usage_records.c.key_id, "key"), (usage_records.c.tenant_id, "tenant")):
                query = select(column, func.sum(usage_records.c.cost_micros)).where(column != "").group_by(column)
                for scope_id, spent in conn.execute(query):
                    totals[f"{prefix}:{scope_id}"] = int(spent or 0)
        return totals

    @property
    def queued(self) -> int:
        """Records waiting to be written, including ones kept after a failed write."""
        return len(self._queue) + len(self._kept)

    # -- the writer thread --

    def _batch_future(self) -> concurrent.futures.Future:
        """The future of the batch now gathering (call with the lock held)."""
        if self._future is None:
            self._future = concurrent.futures.Future()
            # Running futures cannot be cancelled: one waiter giving up must not cancel the batch for the rest.
            self._future.set_running_or_notify_cancel()
        return self._future

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._queue or self._future or self._closing):
                    if not self._cond.wait(RETRY_IDLE_S if self._kept else None) and self._kept:
                        break  # time to try the kept records again
                batch, self._queue = self._queue, []
                future, self._future = self._future, None
                if self._closing and not batch and not self._kept:
                    self._closed = True
                    if future is not None:
                        future.set_result(_NONE_DROPPED)
                    return
            try:
                self._write_batch(batch, future)
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop the ledger for good
                log.exception("the ledger writer failed on a batch of %d records; keeping them", len(batch))
                self._kept.extend(batch)
                if future is not None and not future.done():
                    future.set_exception(LedgerError(f"the usage record could not be written ({exc})"))

    def _write_batch(self, batch: list[UsageRecord], future: concurrent.futures.Future | None) -> None:
        records = self._kept + batch if self._kept else batch
        error = self._write_with_retries(records)
        dropped: frozenset[str] = _NONE_DROPPED
        if error is not None and len(records) > 1:
            error, dropped = self._write_one_by_one(records)
        if error is None:
            if self._kept:
                log.warning("wrote %d usage records kept from earlier failed writes", len(self._kept) - len(dropped))
            self._kept = []
            if future is not None:
                future.set_result(dropped)
            return
        self._keep(records, error)
        if future is not None:
            future.set_exception(LedgerError(f"the usage record could not be written yet ({error}); it is kept "
                                             "and retried, check that the database is reachable and writable"))
        if self._closing:
            # Nothing more will come to retry with: one last try after a pause, then say what is lost.
            time.sleep(RETRY_IDLE_S)
            if self._write_with_retries(self._kept) is not None:
                log.error("lost %d usage records at shutdown: the database stayed unwritable (request ids: %s)",
                          len(self._kept), ", ".join(r.request_id for r in self._kept[:20]))
            self._kept = []

    def _write_one_by_one(self, records: list[UsageRecord]) -> tuple[str | None, frozenset[str]]:
        """After a batch failed: if single records go in, the database works and the rest are bad data to drop."""
        failed, written = [], 0
        for rec in records:
            try:
                self._write([rec])
                written += 1
            except Exception as exc:  # noqa: BLE001
                failed.append((rec, f"{type(exc).__name__}: {exc}".splitlines()[0]))
                if not written and len(failed) >= 3:
                    break
        if not written:
            return failed[0][1], _NONE_DROPPED  # nothing goes in: the database is away, not the data bad
        still = [(rec, error) for rec, error in failed if self._write_with_retries([rec]) is not None]
        for rec, error in still:
            log.error("dropped usage record %s: the database refuses it while taking others (%s)",
                      rec.request_id, error)
        return None, frozenset(rec.request_id for rec, _ in still)

    def _keep(self, records: list[UsageRecord], error: str) -> None:
        self._kept = records
        if len(self._kept) > MAX_KEPT:
            lost = self._kept[:-MAX_KEPT]
            self._kept = self._kept[-MAX_KEPT:]
            log.error("dropped %d usage records (oldest %s) after the database refused them for too long",
                      len(lost), lost[0].request_id)
        log.error("could not write %d usage records (%s); keeping them in memory and retrying with the next batch",
                  len(records), error)

    def _write_with_retries(self, records: list[UsageRecord]) -> str | None:
        """Write records, retrying a few times; None on success, else what went wrong."""
        error = None
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S)):
            if delay:
                time.sleep(delay)
            try:
                self._write(records)
                return None
            except Exception as exc:  # noqa: BLE001 - any failure must leave the writer running
                error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                log.warning("writing %d usage records failed (attempt %d): %s", len(records), attempt + 1, error)
        return error

    def _write(self, records: list[UsageRecord]) -> None:
        if not records:
            return
        unique: dict[str, UsageRecord] = {}
        for rec in records:
            unique.setdefault(rec.request_id, rec)  # a request id written twice keeps its first record
        rows = [rec.row() for rec in unique.values()]
        # SQLite: take the write lock at BEGIN, so waiting for another writer goes through busy_timeout.
        with self.engine.connect().execution_options(**{IMMEDIATE: True}) as conn:
            for start in range(0, len(rows), BATCH_SIZE):
                with conn.begin():
                    self._insert(conn, rows[start:start + BATCH_SIZE])

    def _write_after_close(self, records: list[UsageRecord]) -> None:
        error = self._write_with_retries(records)
        if error is not None:
            raise LedgerError(f"the ledger is closed and writing {len(records)} usage records directly "
                              f"failed ({error})")


def _idempotent_insert(engine: Engine):
    """A function (connection, rows) that inserts rows, skipping request ids already stored."""
    dialect = engine.dialect.name
    if dialect in ("sqlite", "postgresql"):
        module = sqlite if dialect == "sqlite" else postgresql
        statement = module.insert(usage_records).on_conflict_do_nothing(index_elements=["request_id"])
        return lambda conn, rows: conn.execute(statement, rows)

    def insert_new(conn, rows: list[dict]) -> None:
        ids = [row["request_id"] for row in rows]
        stored = set(conn.scalars(select(usage_records.c.request_id).where(usage_records.c.request_id.in_(ids))))
        new = [row for row in rows if row["request_id"] not in stored]
        if new:
            conn.execute(insert(usage_records), new)

    return insert_new
