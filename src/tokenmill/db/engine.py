"""Open tokenmill's database: SQLite in TOKENMILL_HOME by default, PostgreSQL by URL, always migrated.

SQLite runs in WAL mode (readers never block the ledger's writer) with a busy timeout, and
transactions begin explicitly so that schema changes are transactional: two processes opening
a fresh file at once serialise on the migration instead of tripping over each other.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from tokenmill.modelstore.store import store_root

log = logging.getLogger("tokenmill.db")

MIGRATIONS = Path(__file__).with_name("migrations")
IMMEDIATE = "tokenmill_sqlite_immediate"  # execution option: take SQLite's write lock when the transaction begins


class DatabaseError(RuntimeError):
    pass


def database_url(url: str | None) -> str:
    """The URL to use: url as given, or a SQLite file in TOKENMILL_HOME (its directory created)."""
    if url:
        return url
    home = store_root()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'tokenmill.db'}"


def open_database(url: str | None = None) -> Engine:
    """An engine on the database at url (default: SQLite in TOKENMILL_HOME), migrated to the newest schema."""
    url = database_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"database URL {url!r} is not valid: use sqlite:///PATH or "
                            "postgresql+psycopg://USER:PASSWORD@HOST/NAME") from None
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url)
    else:
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            raise DatabaseError(f"the driver for {parsed.drivername} is not installed ({exc.name}): for PostgreSQL "
                                "run `pip install 'tokenmill[postgres]'` and use a postgresql+psycopg:// URL") from None
    upgrade(engine)
    return engine


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    memory = parsed.database in (None, "", ":memory:")
    if not memory:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # One shared connection for an in-memory database, or every thread would see its own empty one.
    extra = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}} if memory else {}
    engine = create_engine(url, **extra)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" below emit BEGIN, instead of the driver's half-transactional default.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
        if not memory:
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(IMMEDIATE) else "BEGIN")

    return engine


def _switch_to_wal(cursor, timeout_s: float = 10.0) -> None:
    """journal_mode=WAL needs the file to itself, and SQLite answers "locked" at once (no busy wait)
    when another process is opening it too: retry until it is ours or already WAL."""
    deadline = time.monotonic() + timeout_s
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def head_revision() -> str:
    """The newest migration's revision id."""
    return _script().get_current_head()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic `upgrade head`); a no-op when it is there already."""
    head = head_revision()
    if _current_revision(engine) == head:
        return  # the common case, kept cheap: one SELECT
    from alembic import command

    config = _config()
    # One transaction around the whole upgrade (SQLite: holding the write lock from the start), so a
    # second process waits for the first and then finds nothing left to do.
    with engine.connect().execution_options(**{IMMEDIATE: True}) as connection, connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("database %s migrated to %s", engine.url.render_as_string(hide_password=True), head)


def _current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


_script_directory = None


def _script():
    global _script_directory
    if _script_directory is None:
        from alembic.script import ScriptDirectory

        _script_directory = ScriptDirectory.from_config(_config())
    return _script_directory
