"""Reports over the usage ledger: usage grouped by tenant, model, scenario, outcome and day, and token health.

Every result is plain JSON (ints, floats for shares, strings for money in currency units), so the
HTTP endpoint can return it as it is.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field

from sqlalchemy import Engine, and_, case, func, or_, select

from tokenmill.db.schema import tenants, usage_records
from tokenmill.metering.pricing import to_currency

GROUPS = ("tenant", "model", "scenario", "outcome", "day")
COMPLETED = ("stop", "length")  # the request delivered its answer
WASTED = ("aborted", "error", "content_filter", "rejected")  # tokens spent for nothing the client could use

u = usage_records


def usage_report(engine: Engine, group_by: list[str], tenant_id: str | None = None, since_day: str | None = None,
                 until_day: str | None = None) -> list[dict]:
    """Requests, tokens and cost per group (tenants by name where known), between two UTC days inclusive."""
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise ValueError(f"cannot group usage by {', '.join(unknown)}: choose from {', '.join(GROUPS)}")
    keys = list(dict.fromkeys(group_by))
    tenant_label = func.coalesce(tenants.c.name, u.c.tenant_id)
    columns = {"tenant": tenant_label, "model": u.c.model, "scenario": u.c.scenario, "outcome": u.c.outcome,
               "day": u.c.day}
    grouped = [columns[k].label(k) for k in keys]
    query = (select(*grouped, func.count().label("requests"),
                    func.coalesce(func.sum(u.c.prompt_tokens), 0).label("prompt_tokens"),
                    func.coalesce(func.sum(u.c.cached_tokens), 0).label("cached_tokens"),
                    func.coalesce(func.sum(u.c.completion_tokens), 0).label("completion_tokens"),
                    func.coalesce(func.sum(u.c.cost_micros), 0).label("cost_micros"))
             .select_from(u.outerjoin(tenants, tenants.c.id == u.c.tenant_id))
             .where(*_filters(tenant_id, since_day, until_day)))
    if keys:
        query = query.group_by(*[columns[k] for k in keys]).order_by(*[columns[k] for k in keys])
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    report = []
    for row in rows:
        if not keys and not row["requests"]:
            continue  # an empty ledger has no total row
        item = {k: row[k] for k in keys}
        item.update(requests=int(row["requests"]), prompt_tokens=int(row["prompt_tokens"]),
                    cached_tokens=int(row["cached_tokens"]), completion_tokens=int(row["completion_tokens"]),
                    cost_micros=int(row["cost_micros"]), cost=str(to_currency(int(row["cost_micros"]))))
        report.append(item)
    return report


@dataclass(slots=True)
class Share:
    """Requests and tokens (prompt + completion) of one scenario or outcome, and their share of all tokens."""

    name: str
    requests: int = 0
    tokens: int = 0
    share: float = 0.0


@dataclass(slots=True)
class SLOAttainment:
    """Of the completed requests, how many met the time-to-first-token and time-per-output-token targets."""

    ttft_slo_ms: float | None
    tpot_slo_ms: float | None
    completed_requests: int = 0
    ttft_met: int = 0
    tpot_met: int = 0
    ttft_attainment: float | None = None
    tpot_attainment: float | None = None


@dataclass(slots=True)
class HealthReport:
    requests: int
    tokens: int  # prompt + completion
    by_scenario: list[Share]
    by_outcome: list[Share]
    wasted_tokens: int  # of requests that were aborted, errored, filtered or rejected
    wasted_share: float
    cached_tokens: int  # prompt tokens served from the prefix cache
    cached_share: float  # of all prompt tokens
    delivered_tokens: int  # completion tokens of requests that finished (stop or length)
    cost_micros: int
    cost_per_1k_delivered_micros: int | None  # all that was spent, per 1,000 delivered tokens
    cost_per_1k_delivered: str | None
    slo: SLOAttainment = field(default_factory=lambda: SLOAttainment(None, None))

    def to_dict(self) -> dict:
        return asdict(self)


def health_report(engine: Engine, tenant_id: str | None = None, ttft_slo_ms: float | None = None,
                  tpot_slo_ms: float | None = None, since_day: str | None = None,
                  until_day: str | None = None) -> dict:
    """Where the tokens went: by scenario and outcome, wasted, saved by the prefix cache, cost, SLO attainment."""
    completed = u.c.outcome.in_(COMPLETED)
    ttft_ok = and_(completed, u.c.ttft_ms.is_not(None), u.c.ttft_ms <= ttft_slo_ms) if ttft_slo_ms is not None else None
    # TPOT = (e2e - ttft) / (completion - 1), compared without dividing; a one-token answer has no TPOT to miss.
    tpot_ok = and_(completed, or_(u.c.completion_tokens <= 1, and_(
        u.c.ttft_ms.is_not(None), u.c.e2e_ms.is_not(None),
        u.c.e2e_ms - u.c.ttft_ms <= tpot_slo_ms * (u.c.completion_tokens - 1)))) if tpot_slo_ms is not None else None
    query = (select(u.c.scenario, u.c.outcome, func.count().label("requests"),
                    func.sum(u.c.prompt_tokens).label("prompt"), func.sum(u.c.cached_tokens).label("cached"),
                    func.sum(u.c.completion_tokens).label("completion"), func.sum(u.c.cost_micros).label("cost"),
                    _count_if(ttft_ok).label("ttft_met"), _count_if(tpot_ok).label("tpot_met"))
             .where(*_filters(tenant_id, since_day, until_day)).group_by(u.c.scenario, u.c.outcome))
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()

    by_scenario: dict[str, Share] = {}
    by_outcome: dict[str, Share] = {}
    requests = tokens = prompt = cached = wasted = delivered = cost = 0
    slo = SLOAttainment(ttft_slo_ms, tpot_slo_ms)
    for row in rows:
        n, row_prompt, row_completion = int(row["requests"]), int(row["prompt"] or 0), int(row["completion"] or 0)
        row_tokens = row_prompt + row_completion
        for shares, name in ((by_scenario, row["scenario"]), (by_outcome, row["outcome"])):
            share = shares.setdefault(name, Share(name))
            share.requests += n
            share.tokens += row_tokens
        requests += n
        tokens += row_tokens
        prompt += row_prompt
        cached += int(row["cached"] or 0)
        cost += int(row["cost"] or 0)
        if row["outcome"] in WASTED:
            wasted += row_tokens
        if row["outcome"] in COMPLETED:
            delivered += row_completion
            slo.completed_requests += n
            slo.ttft_met += int(row["ttft_met"] or 0)
            slo.tpot_met += int(row["tpot_met"] or 0)
    for share in (*by_scenario.values(), *by_outcome.values()):
        share.share = _ratio(share.tokens, tokens) or 0.0
    if slo.completed_requests:
        slo.ttft_attainment = _ratio(slo.ttft_met, slo.completed_requests) if ttft_slo_ms is not None else None
        slo.tpot_attainment = _ratio(slo.tpot_met, slo.completed_requests) if tpot_slo_ms is not None else None
    per_1k = (cost * 1000 * 2 + delivered) // (2 * delivered) if delivered else None  # rounded to the nearest micro
    report = HealthReport(
        requests=requests, tokens=tokens,
        by_scenario=sorted(by_scenario.values(), key=lambda s: (-s.tokens, s.name)),
        by_outcome=sorted(by_outcome.values(), key=lambda s: (-s.tokens, s.name)),
        wasted_tokens=wasted, wasted_share=_ratio(wasted, tokens) or 0.0,
        cached_tokens=cached, cached_share=_ratio(cached, prompt) or 0.0,
        delivered_tokens=delivered, cost_micros=cost, cost_per_1k_delivered_micros=per_1k,
        cost_per_1k_delivered=None if per_1k is None else str(to_currency(per_1k)), slo=slo)
    return report.to_dict()


def _filters(tenant_id: str | None, since_day: str | None, until_day: str | None) -> list:
    for flag, day in (("since", since_day), ("until", until_day)):
        if day is not None:
            _check_day(flag, day)
    filters = []
    if tenant_id is not None:
        filters.append(u.c.tenant_id == tenant_id)
    if since_day is not None:
        filters.append(u.c.day >= since_day)
    if until_day is not None:
        filters.append(u.c.day <= until_day)
    return filters


def _check_day(flag: str, day: str) -> None:
    try:
        valid = len(day) == 10 and datetime.date.fromisoformat(day) is not None
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"{flag} day {day!r} is not a date: write it as YYYY-MM-DD (UTC), like 2025-01-31")


def _count_if(condition):
    if condition is None:
        return func.sum(0)
    return func.sum(case((condition, 1), else_=0))


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
