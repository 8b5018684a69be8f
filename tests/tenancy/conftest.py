from __future__ import annotations

import pytest

from tokenmill.db.engine import open_database
from tokenmill.tenancy.store import TenancyStore


class Clock:
    """Unix ms that a test can move forward."""

    def __init__(self) -> None:
        from tokenmill.tenancy.store import now_ms

        self.ms = now_ms()

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/tokenmill.db"


@pytest.fixture
def engine(db_url):
    engine = open_database(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine, clock) -> TenancyStore:
    return TenancyStore(engine, clock=clock)
