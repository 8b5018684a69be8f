"""Tenants' keys, limits, budgets and the usage ledger through the real server and model."""

import asyncio
import signal

import httpx
import openai
import pytest
import sqlalchemy as sa

from tokenmill.db.engine import open_database
from tokenmill.db.schema import usage_records
from tokenmill.tenancy.records import Limits
from tokenmill.tenancy.store import TenancyStore

OPERATOR = "operator-secret"
PROMPT_100 = list(range(1000, 1100))  # 100 prompt tokens, as ids


@pytest.fixture(scope="module")
def db_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('tenancy')}/tokenmill.db"


@pytest.fixture(scope="module")
def store(db_url) -> TenancyStore:
    return TenancyStore(open_database(db_url))


@pytest.fixture(scope="module")
def priced_server(spawn_server, db_url):
    # 1 currency unit per million prompt tokens, 2 per million completion tokens: 1 and 2 micro-units a token
    return spawn_server("--api-key", OPERATOR, "--database", db_url, "--price-input", "1", "--price-output", "2",
                        "--max-model-len", "512")


def ledger_rows(db_url: str, key_id: str) -> list[dict]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(usage_records).where(usage_records.c.key_id == key_id)).mappings().all()
    engine.dispose()
    return [dict(r) for r in rows]


def wait_for_rows(db_url: str, key_id: str, count: int, timeout_s: float = 10.0) -> list[dict]:
    import time
    deadline = time.monotonic() + timeout_s
    while True:
        rows = ledger_rows(db_url, key_id)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def completion(server, key: str, max_tokens: int = 4, **extra) -> httpx.Response:
    body = {"model": "smollm2-135m-instruct", "prompt": PROMPT_100, "max_tokens": max_tokens, "ignore_eos": True, **extra}
    return httpx.post(server.url + "/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def test_tenant_key_works_and_revocation_is_immediate(priced_server, store):
    store.create_tenant("acme")
    key, secret = store.create_key("acme", name="ci")
    ok = completion(priced_server, secret)
    assert ok.status_code == 200, ok.text
    store.revoke_key(key.id)
    refused = completion(priced_server, secret)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert completion(priced_server, "tm-not-a-key").status_code == 401
    assert completion(priced_server, OPERATOR).status_code == 200


def test_rpm_limit_answers_429_with_openai_headers(priced_server, store):
    store.create_tenant("rpm-co")
    _, secret = store.create_key("rpm-co", limits=Limits(rpm=2, tpm=100_000))
    first = completion(priced_server, secret)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) <= 100_000 - 104
    assert first.headers["x-ratelimit-reset-requests"].endswith(("ms", "s"))
    assert completion(priced_server, secret).status_code == 200
    third = completion(priced_server, secret)
    assert third.status_code == 429
    error = third.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert int(third.headers["retry-after"]) >= 1


def test_concurrent_requests_never_overspend_a_budget(priced_server, store, db_url):
    # worst case per request: 100 prompt + 2 x 8 completion = 116 micro-units; budget 1,000
    store.create_tenant("budget-co")
    key, secret = store.create_key("budget-co", limits=Limits(budget_micros=1000))

    async def race():
        async with httpx.AsyncClient(timeout=120) as client:
            body = {"model": "smollm2-135m-instruct", "prompt": PROMPT_100, "max_tokens": 8, "ignore_eos": True}
            return await asyncio.gather(*(client.post(priced_server.url + "/completions", json=body,
                                                      headers={"Authorization": f"Bearer {secret}"})
                                          for _ in range(100)))

    responses = asyncio.run(race())
    codes = [r.status_code for r in responses]
    assert codes.count(200) >= 1 and codes.count(429) >= 1, codes
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.json()["error"]["code"] == "insufficient_quota" and r.headers["x-should-retry"] == "false"
               for r in refused)
    rows = wait_for_rows(db_url, key.id, 100)
    spent = sum(r["cost_micros"] for r in rows)
    assert spent <= 1000
    assert spent == sum(100 + 2 * 8 for r in rows if r["outcome"] == "length")
    assert len([r for r in rows if r["outcome"] == "rejected"]) == len(refused)


def test_ledger_totals_equal_what_clients_were_told(priced_server, store, db_url):
    store.create_tenant("ledger-co")
    key, secret = store.create_key("ledger-co")
    client = openai.OpenAI(base_url=priced_server.url, api_key=secret, max_retries=0, timeout=120)
    told = []
    plain = client.completions.create(model="smollm2-135m-instruct", prompt=PROMPT_100, max_tokens=5,
                                      extra_body={"ignore_eos": True})
    told.append(plain.usage)
    chat = client.chat.completions.create(model="smollm2-135m-instruct", max_tokens=6,
                                          messages=[{"role": "user", "content": "Say hello."}])
    told.append(chat.usage)
    stream = client.chat.completions.create(model="smollm2-135m-instruct", max_tokens=7, stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": "Count to ten."}])
    told.append([c for c in stream if c.usage][-1].usage)
    # a stream the client drops after a few chunks: the ledger counts what was produced
    with httpx.stream("POST", priced_server.url + "/completions", timeout=120,
                      headers={"Authorization": f"Bearer {secret}"},
                      json={"model": "smollm2-135m-instruct", "prompt": PROMPT_100, "max_tokens": 200,
                            "ignore_eos": True, "stream": True}) as resp:
        received = 0
        for line in resp.iter_lines():
            if line.startswith("data: {"):
                received += 1
            if received == 3:
                break
    rows = wait_for_rows(db_url, key.id, 4)
    by_outcome = {}
    for r in rows:
        by_outcome.setdefault(r["outcome"], []).append(r)
    finished = [r for r in rows if r["outcome"] in ("stop", "length")]
    assert len(finished) == 3 and len(by_outcome["aborted"]) == 1
    assert sum(r["prompt_tokens"] for r in finished) == sum(u.prompt_tokens for u in told)
    assert sum(r["completion_tokens"] for r in finished) == sum(u.completion_tokens for u in told)
    assert sum(r["cost_micros"] for r in finished) == sum(u.prompt_tokens + 2 * u.completion_tokens for u in told)
    aborted = by_outcome["aborted"][0]
    assert 3 <= aborted["completion_tokens"] < 200 and aborted["prompt_tokens"] == 100


def test_usage_endpoint_shows_a_tenant_only_its_own(priced_server, store):
    store.create_tenant("usage-a")
    store.create_tenant("usage-b")
    _, secret_a = store.create_key("usage-a")
    _, secret_b = store.create_key("usage-b")
    assert completion(priced_server, secret_a).status_code == 200
    assert completion(priced_server, secret_b).status_code == 200
    mine = httpx.get(priced_server.url + "/usage", params={"group_by": "tenant"},
                     headers={"Authorization": f"Bearer {secret_a}"}, timeout=30)
    assert mine.status_code == 200, mine.text
    tenants = {row["tenant"] for row in mine.json()["data"]}
    assert tenants == {"usage-a"}
    everyone = httpx.get(priced_server.url + "/usage", params={"group_by": "tenant"},
                         headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=30).json()["data"]
    assert {"usage-a", "usage-b"} <= {row["tenant"] for row in everyone}
    health = httpx.get(priced_server.url + "/usage", params={"health": "true"},
                       headers={"Authorization": f"Bearer {secret_a}"}, timeout=30)
    assert health.status_code == 200 and health.json()["object"] == "usage.health"


def test_prometheus_counts_tokens_cost_and_rejections_per_tenant(priced_server, store):
    tenant = store.create_tenant("metrics-co")
    _, secret = store.create_key("metrics-co", limits=Limits(rpm=1))
    assert completion(priced_server, secret).status_code == 200
    assert completion(priced_server, secret).status_code == 429
    m = priced_server.metrics()
    label = f'model="smollm2-135m-instruct",tenant="{tenant.id}"'
    assert m[f"tokenmill_tenant_tokens_total{{{label}}}"] == 104
    assert m[f"tokenmill_tenant_cost_micros_total{{{label}}}"] == 108
    assert m[f'tokenmill_tenant_rejections_total{{model="smollm2-135m-instruct",reason="rate_limit_exceeded",tenant="{tenant.id}"}}'] == 1


def test_sigkill_under_load_loses_no_finished_request(spawn_server, tmp_path):
    db_url = f"sqlite:///{tmp_path}/kill.db"
    store = TenancyStore(open_database(db_url))
    store.create_tenant("kill-co")
    key, secret = store.create_key("kill-co")
    server = spawn_server("--database", db_url)
    finished: list[str] = []

    async def load():
        async with httpx.AsyncClient(timeout=60) as client:
            async def one(i):
                body = {"model": "smollm2-135m-instruct", "prompt": PROMPT_100[i % 50:], "max_tokens": 2 + i % 5,
                        "ignore_eos": True}
                try:
                    r = await client.post(server.url + "/completions", json=body,
                                          headers={"Authorization": f"Bearer {secret}"})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    finished.append(r.json()["id"])

            async def killer():
                while len(finished) < 5:
                    await asyncio.sleep(0.05)
                server.stop(signal.SIGKILL)

            await asyncio.gather(killer(), *(one(i) for i in range(40)))

    asyncio.run(load())
    assert len(finished) >= 5
    restarted = spawn_server("--database", db_url)  # opening the database again must work after a crash
    rows = ledger_rows(db_url, key.id)
    ids = [r["request_id"] for r in rows]
    assert set(finished) <= set(ids)
    assert len(ids) == len(set(ids))
    restarted.stop()
