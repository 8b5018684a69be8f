"""The ledger, tenancy and a server on a real PostgreSQL, started by scripts/postgres_for_tests.sh."""

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tokenmill.db.engine import open_database
from tokenmill.db.schema import usage_records
from tokenmill.metering.ledger import Ledger, UsageRecord
from tokenmill.metering.reports import usage_report
from tokenmill.tenancy.records import Limits
from tokenmill.tenancy.store import TenancyStore

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres_for_tests.sh"


@pytest.fixture(scope="module")
def pg_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # under /tmp and world-readable: the server runs as the postgres user when the tests run as root
    workdir = tempfile.mkdtemp(prefix="tokenmill-pg-")
    os.chmod(workdir, 0o755)
    result = subprocess.run([str(SCRIPT), workdir, str(port)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"could not start PostgreSQL:\n{result.stderr}"
    yield result.stdout.strip().splitlines()[-1]
    pg_ctl = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]
    stop = [str(pg_ctl), "-D", f"{workdir}/data", "stop", "-m", "immediate"]
    subprocess.run(["runuser", "-u", "postgres", "--", *stop] if os.getuid() == 0 else stop, capture_output=True)
    shutil.rmtree(workdir, ignore_errors=True)


def _record(request_id: str, tenant_id: str, key_id: str, cost: int) -> UsageRecord:
    return UsageRecord(request_id=request_id, tenant_id=tenant_id, key_id=key_id, model="m", prompt_tokens=10,
                       cached_tokens=2, completion_tokens=5, cost_micros=cost, outcome="stop")


def test_ledger_and_tenancy_on_postgres(pg_url):
    engine = open_database(pg_url)
    open_database(pg_url).dispose()  # opening again finds the schema current
    store = TenancyStore(engine)
    tenant = store.create_tenant("pg-co", Limits(rpm=5))
    key, secret = store.create_key("pg-co")
    assert store.authenticate(secret).tenant.limits.rpm == 5
    store.revoke_key(key.id)
    assert store.authenticate(secret) is None
    ledger = Ledger(engine)

    async def write():
        # the same request id twice, concurrently and again later: stored once
        await asyncio.gather(*(ledger.record(_record(f"r{i % 50}", tenant.id, key.id, 7)) for i in range(100)))
        await ledger.record(_record("r0", tenant.id, key.id, 7))

    asyncio.run(write())
    ledger.close()
    assert ledger.totals_by_scope()[f"tenant:{tenant.id}"] == 50 * 7
    rows = usage_report(engine, ["tenant"])
    assert rows[0]["tenant"] == "pg-co" and rows[0]["requests"] == 50 and rows[0]["cached_tokens"] == 100
    engine.dispose()


def test_server_writes_its_ledger_to_postgres(spawn_server, pg_url):
    store = TenancyStore(open_database(pg_url))
    store.create_tenant("pg-server")
    key, secret = store.create_key("pg-server")
    server = spawn_server("--engine-stand-in", "3", "--database", pg_url, "--api-key", "op", "--price-input", "1")
    for _ in range(4):
        r = httpx.post(server.url + "/completions", headers={"Authorization": f"Bearer {secret}"}, timeout=30,
                       json={"model": "smollm2-135m-instruct", "prompt": list(range(600, 620)), "max_tokens": 3})
        assert r.status_code == 200, r.text
    server.stop()
    with sa.create_engine(pg_url).connect() as conn:
        rows = conn.execute(sa.select(usage_records).where(usage_records.c.key_id == key.id)).mappings().all()
    assert len(rows) == 4 and {r["outcome"] for r in rows} == {"length"}
    assert sum(r["cost_micros"] for r in rows) == 4 * 20
