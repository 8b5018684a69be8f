"""The records of tenancy: limits, tenants, keys, and the principal a request runs as."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Limits:
    """Requests and tokens per minute and a budget in micro-units of currency; None = unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    budget_micros: int | None = None

    def as_dict(self) -> dict:
        return {"rpm": self.rpm, "tpm": self.tpm, "budget_micros": self.budget_micros}


@dataclass(slots=True)
class Tenant:
    id: str
    name: str
    created_at: int  # Unix ms
    limits: Limits = Limits()
    model_limits: dict[str, Limits] = field(default_factory=dict)  # per model name: rpm / tpm only
    disabled: bool = False
    route_floor: float | None = None  # quality a model needs for the scenario under "auto"; None: the server's


@dataclass(slots=True)
class ApiKey:
    """A key as stored: never the secret, only its hash and first characters."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    limits: Limits = Limits()
    model_limits: dict[str, Limits] = field(default_factory=dict)


@dataclass(slots=True)
class Principal:
    """Who a request runs as: the key and its tenant (admin requests have neither)."""

    tenant: Tenant
    key: ApiKey

    def limits_for(self, model: str) -> list[tuple[str, Limits]]:
        """(scope id, limits) pairs that apply to a request for model: key, tenant, and their per-model limits."""
        scopes = [(f"key:{self.key.id}", self.key.limits), (f"tenant:{self.tenant.id}", self.tenant.limits)]
        if model in self.key.model_limits:
            scopes.append((f"key:{self.key.id}:model:{model}", self.key.model_limits[model]))
        if model in self.tenant.model_limits:
            scopes.append((f"tenant:{self.tenant.id}:model:{model}", self.tenant.model_limits[model]))
        return scopes
