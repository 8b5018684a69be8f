"""Every table, in one SQLAlchemy Core MetaData; Alembic migrations (db/migrations) create them.

Money is integer micro-units of the currency (1 = 0.000001); times are integer Unix milliseconds.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table

metadata = MetaData()

tenants = Table(
    "tenants", metadata,
    Column("id", String(40), primary_key=True),  # ten_<hex>
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    # limits: None means no limit at this level
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("budget_micros", BigInteger, nullable=True),
    Column("model_limits", JSON, nullable=False, default=dict),  # {"model": {"rpm": .., "tpm": ..}}
    Column("route_floor", Float, nullable=True),  # quality floor (0..1) under model "auto"; None: the server's
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", String(40), primary_key=True),  # key_<hex>: safe to show and log
    Column("tenant_id", String(40), ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False, default=""),
    Column("prefix", String(16), nullable=False),  # the secret's first characters, to recognise it in lists
    Column("secret_hash", String(64), nullable=False, unique=True),  # sha256 hex of the whole secret
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("budget_micros", BigInteger, nullable=True),
    Column("model_limits", JSON, nullable=False, default=dict),
)

usage_records = Table(
    "usage_records", metadata,
    Column("request_id", String(64), primary_key=True),  # written idempotently: a retry changes nothing
    Column("created_at", BigInteger, nullable=False),  # when the request finished
    Column("day", String(10), nullable=False),  # YYYY-MM-DD (UTC) of created_at, for grouping
    Column("tenant_id", String(40), nullable=False, default=""),
    Column("key_id", String(40), nullable=False, default=""),
    Column("model", String(200), nullable=False),
    Column("scenario", String(40), nullable=False, default=""),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("cost_micros", BigInteger, nullable=False, default=0),
    Column("ttft_ms", Float, nullable=True),
    Column("e2e_ms", Float, nullable=True),
    Column("outcome", String(20), nullable=False),  # stop, length, content_filter, aborted, error, rejected
    Index("ix_usage_tenant_time", "tenant_id", "created_at"),
    Index("ix_usage_day", "day"),
)
