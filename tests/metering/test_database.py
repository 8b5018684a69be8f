"""Opening a database migrates it to the newest schema: exactly db/schema.py, idempotently, race-free."""

import subprocess
import sys
import time

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tokenmill.db.engine import database_url, head_revision, open_database
from tokenmill.db.schema import metadata


def test_migrated_schema_matches_schema_py(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
    indexes = {i["name"] for t in ("usage_records", "api_keys") for i in inspect(engine).get_indexes(t)}
    assert {"ix_usage_tenant_time", "ix_usage_day", "ix_api_keys_tenant_id"} <= indexes


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_opening_again_is_a_fast_no_op_that_keeps_the_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = open_database(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO tenants (id, name, created_at, disabled, model_limits) "
                             "VALUES ('ten_1', 'acme', 0, 0, '{}')")
    engine.dispose()
    started = time.perf_counter()
    again = open_database(url)
    assert time.perf_counter() - started < 0.5
    with again.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM tenants").scalar() == "acme"
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1


def test_default_database_lives_in_tokenmill_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENMILL_HOME", str(tmp_path / "home"))
    assert database_url(None) == f"sqlite:///{tmp_path / 'home' / 'tokenmill.db'}"
    assert (tmp_path / "home").is_dir()
    assert database_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"


def test_processes_opening_a_new_file_at_once_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    code = f"from tokenmill.db.engine import open_database; open_database({url!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    engine = open_database(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_a_database_from_the_first_schema_is_upgraded_keeping_its_tenants(tmp_path):
    """A ledger made before 0002 (tenants without route_floor) opens, migrates, and keeps its rows."""
    from alembic import command

    from tokenmill.db.engine import _config, _sqlite_engine
    from tokenmill.tenancy.store import TenancyStore

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = _sqlite_engine(url)
    config = _config()
    with old.connect() as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql("INSERT INTO tenants (id, name, created_at, disabled, model_limits) "
                                   "VALUES ('ten_old', 'old-corp', 1, 0, '{}')")
    old.dispose()
    store = TenancyStore(open_database(url))
    tenant = store.get_tenant("old-corp")
    assert (tenant.id, tenant.route_floor) == ("ten_old", None)
    assert store.update_tenant("old-corp", route_floor=0.8).route_floor == 0.8
    assert store.get_tenant("ten_old").route_floor == 0.8
