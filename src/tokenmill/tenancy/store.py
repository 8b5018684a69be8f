"""Tenants and API keys in the database (tables in db/schema.py), mapped to the records in tenancy/records.py.

Keys are stored as a sha256 hash and a short display prefix, never the secret. authenticate() reads
the database on every call, without caching, so a revoked key stops working at once in every process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tokenmill.db.schema import api_keys, tenants
from tokenmill.tenancy.keys import hash_secret, new_id, new_secret, prefix_of
from tokenmill.tenancy.records import ApiKey, Limits, Principal, Tenant

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_TENANT_COLUMNS = [c.label(f"t_{c.name}") for c in tenants.c]


class _Unchanged:
    """update_tenant's marker for a field to leave as it is, where None is a value."""


UNCHANGED = _Unchanged()


class TenancyError(ValueError):
    """A tenancy request that cannot be done; the message says what to do instead."""


class TenancyNotFound(TenancyError):
    """The tenant or key named does not exist."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TenancyStore:
    def __init__(self, engine: sa.Engine, clock: Callable[[], int] = now_ms) -> None:
        self.engine = engine
        self.clock = clock  # Unix ms; replaceable so tests can move time past a key's expiry
        self._by_hash = (
            sa.select(api_keys, *_TENANT_COLUMNS)
            .join_from(api_keys, tenants, api_keys.c.tenant_id == tenants.c.id)
            .where(api_keys.c.secret_hash == sa.bindparam("secret_hash"))
        )

    # tenants

    def create_tenant(self, name: str, limits: Limits = Limits(), model_limits: Mapping[str, Limits] = {},
                      route_floor: float | None = None) -> Tenant:
        """Add a tenant; its name must be new."""
        _check_name(name)
        _check_limits(limits, f"tenant '{name}'")
        _check_model_limits(model_limits)
        _check_route_floor(route_floor)
        tenant = Tenant(id=new_id("ten"), name=name, created_at=self.clock(), limits=limits,
                        model_limits=dict(model_limits), route_floor=route_floor)
        try:
            with self.engine.begin() as conn:
                conn.execute(tenants.insert().values(id=tenant.id, name=name, created_at=tenant.created_at,
                                                     disabled=False, route_floor=route_floor,
                                                     **_limit_columns(limits, model_limits)))
        except IntegrityError:
            raise TenancyError(f"a tenant named '{name}' already exists: choose another name, "
                               f"or change its limits with PATCH /admin/tenants/{name}") from None
        return tenant

    def get_tenant(self, name_or_id: str) -> Tenant:
        """The tenant with this name or id."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tenants).where(
                sa.or_(tenants.c.name == name_or_id, tenants.c.id == name_or_id))).first()
        if row is None:
            raise TenancyNotFound(f"no tenant named '{name_or_id}': create it with "
                                  f"`tokenmill tenants create {name_or_id}` (or POST /admin/tenants)")
        return _tenant(row._mapping)

    def list_tenants(self) -> list[Tenant]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tenants).order_by(tenants.c.created_at, tenants.c.name)).all()
        return [_tenant(r._mapping) for r in rows]

    def update_tenant(self, name_or_id: str, limits: Limits | None = None,
                      model_limits: Mapping[str, Limits] | None = None, disabled: bool | None = None,
                      route_floor: float | None | _Unchanged = UNCHANGED) -> Tenant:
        """Replace the tenant's limits and/or per-model limits, or (dis)able it; None leaves a field as it is
        (for route_floor, None removes it: the server's floor applies)."""
        tenant = self.get_tenant(name_or_id)
        values: dict = {}
        if limits is not None:
            _check_limits(limits, f"tenant '{tenant.name}'")
            values.update(rpm=limits.rpm, tpm=limits.tpm, budget_micros=limits.budget_micros)
            tenant.limits = limits
        if model_limits is not None:
            _check_model_limits(model_limits)
            values["model_limits"] = _model_limits_json(model_limits)
            tenant.model_limits = dict(model_limits)
        if disabled is not None:
            values["disabled"] = bool(disabled)
            tenant.disabled = bool(disabled)
        if not isinstance(route_floor, _Unchanged):
            _check_route_floor(route_floor)
            values["route_floor"] = route_floor
            tenant.route_floor = route_floor
        if values:
            with self.engine.begin() as conn:
                conn.execute(tenants.update().where(tenants.c.id == tenant.id).values(**values))
        return tenant

    # keys

    def create_key(self, tenant_name_or_id: str, name: str = "", limits: Limits = Limits(),
                   model_limits: Mapping[str, Limits] = {}, expires_at: int | None = None) -> tuple[ApiKey, str]:
        """A new key for a tenant and its secret; the secret is returned only here and never stored."""
        tenant = self.get_tenant(tenant_name_or_id)
        if len(name) > 200:
            raise TenancyError("a key's name can be at most 200 characters")
        _check_limits(limits, "the key")
        _check_model_limits(model_limits)
        now = self.clock()
        if expires_at is not None and expires_at <= now:
            raise TenancyError(f"the key would expire at {expires_at} (Unix ms), which is not in the future; "
                               "give an expiry after now")
        secret = new_secret()
        key = ApiKey(id=new_id("key"), tenant_id=tenant.id, name=name, prefix=prefix_of(secret), created_at=now,
                     expires_at=expires_at, limits=limits, model_limits=dict(model_limits))
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(
                id=key.id, tenant_id=key.tenant_id, name=name, prefix=key.prefix, secret_hash=hash_secret(secret),
                created_at=now, expires_at=expires_at, revoked_at=None, **_limit_columns(limits, model_limits)))
        return key, secret

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """All keys, revoked and expired ones included, or those of one tenant (name or id)."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant_id == self.get_tenant(tenant).id)
        with self.engine.connect() as conn:
            return [_key(r._mapping) for r in conn.execute(query)]

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key from now on; revoking it again keeps the first time."""
        with self.engine.begin() as conn:
            conn.execute(api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                         .values(revoked_at=self.clock()))
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise TenancyNotFound(f"no key with id '{key_id}': `tokenmill keys list` shows the keys and their ids")
        return _key(row._mapping)

    def has_keys(self) -> bool:
        """Whether any key is unrevoked (a server with none need not ask for one)."""
        query = sa.select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def authenticate(self, secret: str) -> Principal | None:
        """The key and tenant for a secret; None if it is unknown, revoked, expired, or its tenant is disabled."""
        with self.engine.connect() as conn:
            row = conn.execute(self._by_hash, {"secret_hash": hash_secret(secret)}).first()
        if row is None:
            return None
        m = row._mapping
        expires_at = m[api_keys.c.expires_at]
        if m[api_keys.c.revoked_at] is not None or m["t_disabled"] or (
                expires_at is not None and expires_at <= self.clock()):
            return None
        tenant = _tenant({c.name: m[f"t_{c.name}"] for c in tenants.c})
        return Principal(tenant=tenant, key=_key(m))


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name) or name.startswith("ten_"):
        raise TenancyError(f"'{name}' cannot be a tenant name: use 1 to 200 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit and not with 'ten_' (that is how tenant ids start)")


def _check_limits(limits: Limits, where: str) -> None:
    for field, value in (("rpm", limits.rpm), ("tpm", limits.tpm)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise TenancyError(f"{field} of {where} must be a whole number of at least 1, or unset for no limit "
                               f"(got {value!r})")
    budget = limits.budget_micros
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 0):
        raise TenancyError(f"the budget of {where} must be a whole number of micro-units, 0 or more (got {budget!r})")


def _check_model_limits(model_limits: Mapping[str, Limits]) -> None:
    for model, limits in model_limits.items():
        if not model or len(model) > 200:
            raise TenancyError("a per-model limit needs a model name of 1 to 200 characters")
        _check_limits(limits, f"model '{model}'")
        if limits.budget_micros is not None:
            raise TenancyError(f"per-model limits take rpm and tpm only (model '{model}'): "
                               "a budget applies to a whole key or tenant")


def _limit_columns(limits: Limits, model_limits: Mapping[str, Limits]) -> dict:
    return {"rpm": limits.rpm, "tpm": limits.tpm, "budget_micros": limits.budget_micros,
            "model_limits": _model_limits_json(model_limits)}


def _model_limits_json(model_limits: Mapping[str, Limits]) -> dict:
    return {model: {k: v for k, v in (("rpm", lim.rpm), ("tpm", lim.tpm)) if v is not None}
            for model, lim in model_limits.items()}


def _model_limits(data: dict | None) -> dict[str, Limits]:
    return {model: Limits(rpm=d.get("rpm"), tpm=d.get("tpm")) for model, d in (data or {}).items()}


def _limits(m: Mapping) -> Limits:
    return Limits(rpm=m["rpm"], tpm=m["tpm"], budget_micros=m["budget_micros"])


def _tenant(m: Mapping) -> Tenant:
    return Tenant(id=m["id"], name=m["name"], created_at=m["created_at"], limits=_limits(m),
                  model_limits=_model_limits(m["model_limits"]), disabled=bool(m["disabled"]),
                  route_floor=m["route_floor"])


def _check_route_floor(floor: float | None) -> None:
    if floor is not None and not (isinstance(floor, (int, float)) and 0 <= floor <= 1):
        raise TenancyError(f"route_floor must be a quality score from 0 to 1, got {floor!r}")


def _key(m: Mapping) -> ApiKey:
    return ApiKey(id=m[api_keys.c.id], tenant_id=m[api_keys.c.tenant_id], name=m[api_keys.c.name],
                  prefix=m[api_keys.c.prefix], created_at=m[api_keys.c.created_at],
                  expires_at=m[api_keys.c.expires_at], revoked_at=m[api_keys.c.revoked_at],
                  limits=Limits(rpm=m[api_keys.c.rpm], tpm=m[api_keys.c.tpm],
                                budget_micros=m[api_keys.c.budget_micros]),
                  model_limits=_model_limits(m[api_keys.c.model_limits]))
