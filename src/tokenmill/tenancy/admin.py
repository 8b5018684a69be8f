"""The admin API: /admin/tenants and /admin/keys, guarded by the operator's admin key.

Also the JSON shape of tenants and keys, which `tokenmill tenants list --json` and `keys list --json` share.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from tokenmill.api.errors import APIError
from tokenmill.metering.pricing import parse_amount, to_currency
from tokenmill.tenancy.records import ApiKey, Limits, Tenant
from tokenmill.tenancy.store import UNCHANGED, TenancyError, TenancyNotFound, TenancyStore

Amount = StrictStr | StrictInt | StrictFloat  # currency units: "12.5" or 12.5; stored as integer micro-units


class ModelLimitsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    budget: Amount | None = None
    model_limits: dict[str, ModelLimitsBody] = {}
    route_floor: float | None = Field(None, ge=0, le=1)


class TenantUpdate(BaseModel):
    """Fields left out stay as they are; a limit sent as null is removed."""

    model_config = ConfigDict(extra="forbid")
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    budget: Amount | None = None
    model_limits: dict[str, ModelLimitsBody] | None = None
    disabled: bool | None = None
    route_floor: float | None = Field(None, ge=0, le=1)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(description="tenant name or id")
    name: str = ""
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    budget: Amount | None = None
    model_limits: dict[str, ModelLimitsBody] = {}
    expires_at: int | None = Field(None, description="Unix ms")
    expires_in_s: int | None = Field(None, ge=1, description="seconds from now; instead of expires_at")


def admin_guard(admin_key: str):
    """A FastAPI dependency that lets through only requests bearing the admin key."""
    if not admin_key:
        raise ValueError("the admin API needs an admin key: set one, or leave the admin API off")
    admin_hash = hashlib.sha256(admin_key.encode()).digest()  # the key itself is not kept

    def require_admin(authorization: str | None = Header(None)) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        presented = hashlib.sha256(token.strip().encode()).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented, admin_hash):
            raise APIError(401, "the admin API needs the admin key, sent as 'Authorization: Bearer <admin key>'",
                           code="invalid_api_key", error_type="invalid_request_error",
                           headers={"WWW-Authenticate": "Bearer"})

    return require_admin


def admin_router(store: TenancyStore, admin_key: str) -> APIRouter:
    """Routes to manage tenants and keys; every one needs 'Authorization: Bearer <admin key>'."""
    router = APIRouter(prefix="/admin", dependencies=[Depends(admin_guard(admin_key))])

    @router.get("/tenants")
    def list_tenants() -> dict:
        return {"object": "list", "data": [tenant_view(t) for t in store.list_tenants()]}

    @router.post("/tenants", status_code=201)
    def create_tenant(body: TenantCreate) -> dict:
        limits = Limits(body.rpm, body.tpm, _budget(body.budget))
        return tenant_view(_call(store.create_tenant, body.name, limits, _model_limits(body.model_limits),
                                 body.route_floor))

    @router.get("/tenants/{name_or_id}")
    def get_tenant(name_or_id: str) -> dict:
        return tenant_view(_call(store.get_tenant, name_or_id))

    @router.patch("/tenants/{name_or_id}")
    def update_tenant(name_or_id: str, body: TenantUpdate) -> dict:
        tenant = _call(store.get_tenant, name_or_id)
        given = body.model_fields_set
        limits = None
        if given & {"rpm", "tpm", "budget"}:
            old = tenant.limits
            limits = Limits(rpm=body.rpm if "rpm" in given else old.rpm,
                            tpm=body.tpm if "tpm" in given else old.tpm,
                            budget_micros=_budget(body.budget) if "budget" in given else old.budget_micros)
        model_limits = _model_limits(body.model_limits or {}) if "model_limits" in given else None
        floor = body.route_floor if "route_floor" in given else UNCHANGED
        return tenant_view(_call(store.update_tenant, tenant.id, limits, model_limits, body.disabled, floor))

    @router.get("/keys")
    def list_keys(tenant: str | None = None) -> dict:
        names = {t.id: t.name for t in store.list_tenants()}
        keys = _call(store.list_keys, tenant)
        return {"object": "list", "data": [key_view(k, names.get(k.tenant_id, "")) for k in keys]}

    @router.post("/keys", status_code=201)
    def create_key(body: KeyCreate) -> dict:
        if body.expires_at is not None and body.expires_in_s is not None:
            raise APIError(400, "give expires_at or expires_in_s, not both", param="expires_in_s",
                           code="invalid_parameter")
        expires_at = body.expires_at
        if body.expires_in_s is not None:
            expires_at = store.clock() + body.expires_in_s * 1000
        limits = Limits(body.rpm, body.tpm, _budget(body.budget))
        key, secret = _call(store.create_key, body.tenant, body.name, limits, _model_limits(body.model_limits),
                            expires_at, missing_param="tenant")
        tenant = store.get_tenant(key.tenant_id)
        # the only time the secret leaves the server: it is not stored
        return {**key_view(key, tenant.name), "secret": secret}

    @router.delete("/keys/{key_id}")
    def revoke_key(key_id: str) -> dict:
        key = _call(store.revoke_key, key_id)
        return key_view(key, store.get_tenant(key.tenant_id).name)

    return router


def tenant_view(tenant: Tenant) -> dict:
    """A tenant as JSON; the budget both in micro-units and as a currency amount."""
    return {"object": "tenant", "id": tenant.id, "name": tenant.name, "created_at": tenant.created_at,
            "disabled": tenant.disabled, "route_floor": tenant.route_floor,
            **_limits_view(tenant.limits, tenant.model_limits)}


def key_view(key: ApiKey, tenant_name: str) -> dict:
    """A key as JSON: never its secret, only the first characters to recognise it by."""
    return {"object": "api_key", "id": key.id, "tenant_id": key.tenant_id, "tenant": tenant_name, "name": key.name,
            "prefix": key.prefix, "created_at": key.created_at, "expires_at": key.expires_at,
            "revoked_at": key.revoked_at, **_limits_view(key.limits, key.model_limits)}


def _limits_view(limits: Limits, model_limits: Mapping[str, Limits]) -> dict:
    budget = limits.budget_micros
    return {"rpm": limits.rpm, "tpm": limits.tpm, "budget_micros": budget,
            "budget": None if budget is None else str(to_currency(budget)),
            "model_limits": {m: {"rpm": lim.rpm, "tpm": lim.tpm} for m, lim in model_limits.items()}}


def _budget(amount: Amount | None) -> int | None:
    if amount is None:
        return None
    try:
        return parse_amount(str(amount), what="budget")
    except ValueError as exc:
        raise APIError(400, str(exc), param="budget", code="invalid_parameter") from None


def _model_limits(body: Mapping[str, ModelLimitsBody]) -> dict[str, Limits]:
    return {model: Limits(rpm=lim.rpm, tpm=lim.tpm) for model, lim in body.items()}


def _call(method, *args, missing_param: str | None = None):
    """Run a store method; its errors become 404 (unknown tenant or key) or 400 (anything else refused)."""
    try:
        return method(*args)
    except TenancyNotFound as exc:
        raise APIError(404, str(exc), param=missing_param, code="not_found") from None
    except TenancyError as exc:
        raise APIError(400, str(exc), code="invalid_parameter") from None
