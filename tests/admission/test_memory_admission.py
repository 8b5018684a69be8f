"""Admission with the in-process limiter: RPM, TPM and budgets reserve up front and settle after."""

import asyncio

import pytest

from tokenmill.admission.controller import Admission, duration
from tokenmill.admission.memory import MemoryLimiter
from tokenmill.api.errors import APIError
from tokenmill.metering.pricing import Prices
from tokenmill.tenancy.records import ApiKey, Limits, Principal, Tenant

FREE = Prices()
# 1 currency unit per million input tokens, 2 per million output tokens
PRICED = Prices(input_micros_per_m=1_000_000, cached_input_micros_per_m=500_000, output_micros_per_m=2_000_000)


def principal(key_limits=Limits(), tenant_limits=Limits(), key_models=None, tenant_models=None) -> Principal:
    tenant = Tenant("ten_1", "acme", 0, tenant_limits, tenant_models or {})
    return Principal(tenant, ApiKey("key_1", "ten_1", "", "tm-abc", 0, limits=key_limits, model_limits=key_models or {}))


def run(coro):
    return asyncio.run(coro)


def test_rpm_admits_exactly_the_limit_then_429_with_retry_after():
    adm = Admission(MemoryLimiter())
    who = principal(key_limits=Limits(rpm=3))

    async def go():
        tickets = [await adm.admit(who, "m", 10, 10, FREE) for _ in range(3)]
        with pytest.raises(APIError) as err:
            await adm.admit(who, "m", 10, 10, FREE)
        return tickets, err.value

    tickets, err = run(go())
    assert [t.headers()["x-ratelimit-remaining-requests"] for t in tickets] == ["2", "1", "0"]
    assert err.status == 429 and err.code == "rate_limit_exceeded" and err.error_type == "requests"
    assert int(err.headers["retry-after"]) >= 1 and "RPM" in err.message and "key_1" in err.message


def test_tpm_reserves_prompt_plus_max_tokens_and_settles_the_rest_back():
    adm = Admission(MemoryLimiter())
    who = principal(tenant_limits=Limits(tpm=1000))

    async def go():
        first = await adm.admit(who, "m", 100, 500, FREE)  # reserves 600
        with pytest.raises(APIError):
            await adm.admit(who, "m", 100, 400, FREE)  # 600 + 500 > 1000
        await adm.settle(first, used_tokens=150, used_cost=0)  # gives back 450
        second = await adm.admit(who, "m", 100, 400, FREE)  # 150 + 500 fits
        return second

    second = run(go())
    assert int(second.headers()["x-ratelimit-remaining-tokens"]) <= 350
    assert second.headers()["x-ratelimit-limit-tokens"] == "1000"


def test_request_larger_than_the_tpm_limit_is_not_worth_retrying():
    adm = Admission(MemoryLimiter())
    with pytest.raises(APIError) as err:
        run(adm.admit(principal(key_limits=Limits(tpm=100)), "m", 80, 50, FREE))
    assert err.value.headers["x-should-retry"] == "false" and "too large" in err.value.message


def test_budget_never_overspent_by_concurrent_requests():
    adm = Admission(MemoryLimiter())
    # worst case per request: 100 input + 100 output tokens = 100 + 200 = 300 micros
    who = principal(key_limits=Limits(budget_micros=3000))

    async def one():
        try:
            ticket = await adm.admit(who, "m", 100, 100, PRICED)
        except APIError as exc:
            return exc
        await asyncio.sleep(0.01)
        await adm.settle(ticket, used_tokens=200, used_cost=300)
        return ticket

    async def go():
        return await asyncio.gather(*(one() for _ in range(100)))

    results = run(go())
    admitted = [r for r in results if not isinstance(r, APIError)]
    refused = [r for r in results if isinstance(r, APIError)]
    assert len(admitted) == 10 and len(refused) == 90
    assert all(r.code == "insufficient_quota" and r.headers["x-should-retry"] == "false" for r in refused)


def test_settling_below_the_worst_case_lets_more_requests_in():
    adm = Admission(MemoryLimiter())
    who = principal(tenant_limits=Limits(budget_micros=1000))

    async def go():
        n = 0
        for _ in range(20):
            try:
                ticket = await adm.admit(who, "m", 100, 100, PRICED)  # reserves 300
            except APIError:
                break
            await adm.settle(ticket, used_tokens=110, used_cost=120)  # 100 in + 10 out
            n += 1
        return n

    assert run(go()) == 6  # 6 x 120 = 720 spent; a 7th would need its worst case, 300, on top: 1,020 > 1,000


def test_budget_seeded_from_the_ledger_survives_a_restart():
    adm = Admission(MemoryLimiter())
    who = principal(key_limits=Limits(budget_micros=1000))
    run(adm.seed_budgets({"key:key_1": 900}))
    with pytest.raises(APIError) as err:
        run(adm.admit(who, "m", 100, 100, PRICED))
    assert err.value.code == "insufficient_quota"


def test_per_model_limits_apply_only_to_that_model():
    adm = Admission(MemoryLimiter())
    who = principal(key_models={"big": Limits(rpm=1)})

    async def go():
        await adm.admit(who, "big", 1, 1, FREE)
        with pytest.raises(APIError) as err:
            await adm.admit(who, "big", 1, 1, FREE)
        for _ in range(5):
            await adm.admit(who, "small", 1, 1, FREE)
        return err.value

    err = run(go())
    assert "on model big" in err.message


def test_unlimited_principal_gets_no_buckets():
    ticket = run(Admission(MemoryLimiter()).admit(principal(), "m", 10, 10, PRICED))
    assert ticket.buckets == [] and ticket.headers() == {}


def test_duration_format():
    assert duration(0.0204) == "21ms" and duration(1.5) == "1.5s" and duration(360) == "6m0s"
