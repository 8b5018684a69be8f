"""The ledger: one stored record per request id, committed before record() returns, nothing lost on close or crash."""

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import create_engine

from tokenmill.metering.ledger import Ledger, LedgerError, UsageRecord


def stored(url: str, where: str = "1=1") -> list[tuple]:
    """Rows as a second, fresh engine on the same file sees them."""
    fresh = create_engine(url)
    try:
        with fresh.connect() as conn:
            return conn.exec_driver_sql(f"SELECT request_id, completion_tokens, cost_micros, day FROM usage_records "
                                        f"WHERE {where} ORDER BY request_id").all()
    finally:
        fresh.dispose()


def test_awaited_record_is_readable_from_a_fresh_engine_when_record_returns(engine, db_url, usage):
    ledger = Ledger(engine)

    async def main():
        for i in range(20):
            await ledger.record(usage(f"req-{i}", completion_tokens=i))
            assert stored(db_url, f"request_id = 'req-{i}'") != [], f"req-{i} was not committed when record() returned"

    asyncio.run(main())
    ledger.close()
    assert len(stored(db_url)) == 20


def test_a_record_written_twice_is_stored_once(engine, db_url, usage):
    ledger = Ledger(engine)

    async def main():
        await ledger.record(usage("req-1", completion_tokens=5))
        await ledger.record(usage("req-1", completion_tokens=99))  # a retry, in a later batch
        ledger.record_nowait(usage("req-2"))
        ledger.record_nowait(usage("req-2", completion_tokens=99))  # twice in one batch

    asyncio.run(main())
    ledger.close()
    assert [(r[0], r[1]) for r in stored(db_url)] == [("req-1", 5), ("req-2", 5)]


def test_day_is_the_utc_day_of_created_at(engine, db_url, usage):
    ledger = Ledger(engine)
    ledger.record_nowait(usage("late", created_at=1_735_689_599_999))  # 2024-12-31T23:59:59.999Z
    ledger.record_nowait(usage("early", created_at=1_735_689_600_000))  # 2025-01-01T00:00:00Z
    ledger.close()
    assert {r[0]: r[3] for r in stored(db_url)} == {"late": "2024-12-31", "early": "2025-01-01"}


def test_a_thousand_concurrent_records_all_land_once(engine, db_url, usage):
    ledger = Ledger(engine)

    async def client(worker: int):
        for i in range(50):
            await ledger.record(usage(f"w{worker}-{i}", cost_micros=3))
            if i % 10 == 0:
                await ledger.record(usage(f"w{worker}-{i}", cost_micros=3))  # a duplicate now and then

    async def main():
        await asyncio.gather(*(client(w) for w in range(20)))

    asyncio.run(main())
    rows = stored(db_url)
    assert len(rows) == 1000 and len({r[0] for r in rows}) == 1000
    assert ledger.totals_by_scope() == {"key:key_1": 3000, "tenant:ten_1": 3000}
    ledger.close()


def test_close_writes_everything_still_queued_and_can_be_called_twice(engine, db_url, usage):
    ledger = Ledger(engine)
    for i in range(2000):
        ledger.record_nowait(usage(f"req-{i:04d}"))
    ledger.close()
    ledger.close()
    assert len(stored(db_url)) == 2000
    ledger.record_nowait(usage("after-close"))  # written directly rather than lost
    assert stored(db_url, "request_id = 'after-close'") != []


def test_flush_waits_for_queued_records(engine, db_url, usage):
    ledger = Ledger(engine)
    for i in range(300):
        ledger.record_nowait(usage(f"req-{i}"))
    assert ledger.flush(timeout=10)
    assert len(stored(db_url)) == 300
    assert ledger.flush(timeout=10)  # nothing queued: returns at once
    ledger.close()


def test_totals_by_scope_skip_empty_ids(engine, usage):
    ledger = Ledger(engine)
    ledger.record_nowait(usage("a", key_id="key_1", tenant_id="ten_1", cost_micros=100))
    ledger.record_nowait(usage("b", key_id="key_2", tenant_id="ten_1", cost_micros=20))
    ledger.record_nowait(usage("c", key_id="", tenant_id="operator", cost_micros=5))
    ledger.close()
    assert ledger.totals_by_scope() == {"key:key_1": 100, "key:key_2": 20, "tenant:ten_1": 120, "tenant:operator": 5}


def test_a_failed_write_keeps_the_writer_and_the_records(engine, db_url, usage, caplog):
    ledger = Ledger(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE usage_records RENAME TO usage_records_away")

    async def main():
        with pytest.raises(LedgerError, match="kept"):
            await ledger.record(usage("while-away"))
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE usage_records_away RENAME TO usage_records")
        await ledger.record(usage("after"))

    asyncio.run(main())
    ledger.close()
    assert [r[0] for r in stored(db_url)] == ["after", "while-away"]
    assert "keeping them in memory" in caplog.text


def test_a_record_the_database_refuses_is_dropped_alone(engine, db_url, usage, caplog):
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON usage_records WHEN NEW.request_id = 'poison' "
                             "BEGIN SELECT RAISE(ABORT, 'no poison here'); END")
    ledger = Ledger(engine)

    async def main():
        ledger.record_nowait(usage("before"))
        results = await asyncio.gather(ledger.record(usage("poison")), ledger.record(usage("good")),
                                       return_exceptions=True)
        assert isinstance(results[0], LedgerError) and results[1] is None
        await ledger.record(usage("later"))  # the writer goes on, not stuck on the bad record

    asyncio.run(main())
    ledger.close()
    assert [r[0] for r in stored(db_url)] == ["before", "good", "later"]
    assert "dropped usage record poison" in caplog.text


def test_records_refuse_unknown_outcomes():
    with pytest.raises(ValueError, match="outcome"):
        UsageRecord("r", "t", "k", "m", 1, 0, 1, 0, outcome="ok")


CRASHING_CLIENT = textwrap.dedent("""
    import asyncio, sys
    from tokenmill.db.engine import open_database
    from tokenmill.metering.ledger import Ledger, UsageRecord

    ledger = Ledger(open_database(sys.argv[1]))

    async def worker(w):
        for i in range(100000):
            rid = f"w{w}-{i}"
            await ledger.record(UsageRecord(rid, "ten_1", "key_1", "llama", 10, 0, 5, 7, outcome="stop"))
            print(rid, flush=True)

    async def main():
        await asyncio.gather(*(worker(w) for w in range(8)))

    asyncio.run(main())
""")


def test_sigkill_loses_no_record_whose_record_call_returned(tmp_path, db_url):
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_CLIENT, db_url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    deadline = time.monotonic() + 60
    while len(seen) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    rest, err = proc.communicate(timeout=30)
    seen += rest.split()
    assert len(seen) >= 300, err
    ids = {r[0] for r in stored(db_url)}
    missing = [rid for rid in seen if rid not in ids]
    assert missing == []


def test_a_held_write_lock_neither_blocks_the_event_loop_nor_loses_the_record(engine, db_url, usage):
    """Awaited records commit from the event loop when they can; when another process holds SQLite's
    write lock they wait in the writer thread instead, and the loop keeps serving meanwhile."""
    ledger = Ledger(engine)
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)

    async def main():
        await ledger.record(usage("inline"))  # nothing in the way: committed at once
        blocker.execute("BEGIN IMMEDIATE")
        pending = asyncio.ensure_future(ledger.record(usage("while-locked")))
        ticks = 0
        for _ in range(20):  # 0.2 s with the lock held: the loop keeps running, the record waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not pending.done()
        blocker.execute("COMMIT")
        await asyncio.wait_for(pending, 10)

    asyncio.run(main())
    ledger.close()
    blocker.close()
    assert [r[0] for r in stored(db_url)] == ["inline", "while-locked"]
