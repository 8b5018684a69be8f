import pytest

from tokenmill.db.engine import open_database
from tokenmill.metering.ledger import UsageRecord


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tokenmill.db'}"


@pytest.fixture
def engine(db_url):
    engine = open_database(db_url)
    yield engine
    engine.dispose()


def make_usage(request_id: str, **fields) -> UsageRecord:
    values = dict(request_id=request_id, tenant_id="ten_1", key_id="key_1", model="llama", prompt_tokens=10,
                  cached_tokens=0, completion_tokens=5, cost_micros=7, outcome="stop")
    values.update(fields)
    return UsageRecord(**values)


@pytest.fixture
def usage():
    """make_usage(request_id, **fields): a usage record with plausible defaults that fields override."""
    return make_usage


DAY_MS = 86_400_000
JAN_1 = 1_735_689_600_000  # 2025-01-01T00:00:00Z


@pytest.fixture
def known_usage(engine):
    """Six requests of two tenants (one, 'acme', has a tenants row), with hand-checked sums in the tests."""
    from tokenmill.metering.ledger import Ledger

    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO tenants (id, name, created_at, disabled, model_limits) "
                             "VALUES ('ten_1', 'acme', 0, 0, '{}')")
    records = [
        # id, tenant, model, scenario, outcome, prompt, cached, completion, cost, ttft, e2e, day
        ("r1", "ten_1", "a", "chat", "stop", 100, 40, 50, 1000, 100.0, 100.0 + 49 * 20, 0),  # TPOT 20
        ("r2", "ten_1", "a", "chat", "length", 200, 0, 100, 2000, 150.0, 150.0 + 99 * 60, 1),  # TPOT 60
        ("r3", "ten_1", "b", "code", "aborted", 50, 10, 20, 500, 50.0, 500.0, 1),
        ("r4", "ten_2", "a", "code", "stop", 10, 0, 1, 100, 250.0, 250.0, 1),  # one token: TPOT met
        ("r5", "ten_2", "b", "", "rejected", 40, 0, 0, 0, None, None, 2),
        ("r6", "ten_2", "a", "chat", "error", 30, 0, 10, 300, 80.0, 400.0, 2),
    ]
    ledger = Ledger(engine)
    for rid, tenant, model, scenario, outcome, prompt, cached, completion, cost, ttft, e2e, day in records:
        ledger.record_nowait(make_usage(rid, tenant_id=tenant, key_id=f"key_{tenant}", model=model, scenario=scenario,
                                        outcome=outcome, prompt_tokens=prompt, cached_tokens=cached,
                                        completion_tokens=completion, cost_micros=cost, ttft_ms=ttft, e2e_ms=e2e,
                                        created_at=JAN_1 + day * DAY_MS + 1234))
    ledger.close()
    return engine
