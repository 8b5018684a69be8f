"""model "auto": the server classifies the request, picks the cheapest good-enough model, falls back, says why."""

from __future__ import annotations

import socket

import httpx
import pytest

OPERATOR = "routing-operator"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def routing_db(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('routing-db') / 'tokenmill.db'}"


@pytest.fixture(scope="module")
def routed_server(spawn_catalogue, routing_db):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there: every request to it fails at once
    server = spawn_catalogue(f"""
models:
  - name: chat-model
    source: smollm2-135m-instruct
    dtype: float32
    kv_cache_memory: 64MiB
    context_length: 512
    prices: {{input: 0.05, output: 0.10}}
    quality: {{chat: 0.8, general: 0.6, translation: 0.6, code: 0.1, math: 0.1}}
  - name: code-model
    source: smollm2-135m-instruct
    dtype: float32
    kv_cache_memory: 64MiB
    context_length: 512
    prices: {{input: 0.50, output: 1.00}}
    quality: {{chat: 0.3, general: 0.7, translation: 0.3, code: 0.9, math: 0.8}}
  - name: math-elsewhere
    upstream: {{base_url: "{dead}", model: nothing}}
    prices: {{input: 0.01, output: 0.01}}
    quality: {{math: 0.95}}
""", "--api-key", OPERATOR, "--database", routing_db)
    yield server
    server.stop()


def ask(server, content: str, model: str = "auto") -> httpx.Response:
    return httpx.post(server.base_url + "/v1/chat/completions", timeout=120,
                      headers={"authorization": f"Bearer {OPERATOR}"},
                      json={"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 8})


def route_of(response: httpx.Response) -> dict:
    return dict(part.split("=", 1) for part in response.headers["x-tokenmill-route"].split("; "))


@pytest.mark.parametrize(("content", "scenario", "model"), [
    ("Write a Python function that reverses a linked list.", "code", "code-model"),
    ("帮我写一个 SQL 查询，统计每个用户的订单数量", "code", "code-model"),
    ("Hey! How's your day going?", "chat", "chat-model"),
    ("请把这句话翻译成英文：我们明天早上九点开会。", "translation", "chat-model"),
])
def test_auto_sends_each_request_to_the_cheapest_model_good_enough_for_its_scenario(routed_server, content,
                                                                                      scenario, model):
    r = ask(routed_server, content)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == model
    route = route_of(r)
    assert (route["scenario"], route["model"]) == (scenario, model)
    assert route["reason"]


def test_a_failing_first_choice_falls_back_to_the_next_and_the_ledger_keeps_the_scenario(routed_server):
    r = ask(routed_server, "Solve for x: 3x + 7 = 22. Show the steps.")
    assert r.status_code == 200, r.text
    route = route_of(r)
    assert route["scenario"] == "math"
    assert r.json()["model"] == route["model"] == "code-model"  # math-elsewhere was first and could not answer
    assert route["reason"].endswith("fell back from math-elsewhere (HTTP 502)")
    rows = httpx.get(routed_server.base_url + "/v1/usage", params={"group_by": "scenario,model"},
                     headers={"authorization": f"Bearer {OPERATOR}"}).json()["data"]
    used = {(row["scenario"], row["model"]) for row in rows if row["requests"]}
    assert ("math", "code-model") in used and ("code", "code-model") in used and ("chat", "chat-model") in used


def test_routes_are_listed_and_a_named_model_is_not_routed(routed_server):
    ids = [c["id"] for c in httpx.get(routed_server.base_url + "/v1/models",
                                      headers={"authorization": f"Bearer {OPERATOR}"}).json()["data"]]
    assert ids == ["chat-model", "code-model", "math-elsewhere", "auto", "auto:best", "auto:cheap"]
    r = ask(routed_server, "Write a Python function that reverses a linked list.", model="chat-model")
    assert r.json()["model"] == "chat-model" and "x-tokenmill-route" not in r.headers
    best = ask(routed_server, "Hey! How's your day going?", model="auto:cheap")
    assert best.json()["model"] == "chat-model"


def test_a_tenants_own_floor_picks_a_better_model_than_the_servers(routed_server, routing_db):
    from tokenmill.db.engine import open_database
    from tokenmill.tenancy.store import TenancyStore

    store = TenancyStore(open_database(routing_db))
    store.create_tenant("demanding", route_floor=0.65)
    _, secret = store.create_key("demanding")
    question = "What were the main causes of the French Revolution? Give me a short overview."
    as_operator = ask(routed_server, question)
    assert route_of(as_operator)["scenario"] == "general"
    assert as_operator.json()["model"] == "chat-model"  # general 0.6 meets the server's 0.5, and is cheaper
    as_tenant = httpx.post(routed_server.base_url + "/v1/chat/completions", timeout=120,
                           headers={"authorization": f"Bearer {secret}"},
                           json={"model": "auto", "messages": [{"role": "user", "content": question}],
                                 "max_tokens": 8})
    assert as_tenant.status_code == 200, as_tenant.text
    assert as_tenant.json()["model"] == "code-model"  # only its general 0.7 meets the tenant's 0.65
    assert "quality >= 0.65" in route_of(as_tenant)["reason"]


def test_a_one_model_server_still_answers_auto_loading_the_classifier_on_first_use(server):
    cards = httpx.get(server.base_url + "/v1/models").json()["data"]
    assert [c["id"] for c in cards] == ["smollm2-135m-instruct"]  # nothing to choose between: no routes listed
    r = httpx.post(server.base_url + "/v1/chat/completions", timeout=120,
                   json={"model": "auto", "messages": [{"role": "user", "content": "Hi there!"}], "max_tokens": 4})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "smollm2-135m-instruct"
    assert route_of(r)["scenario"] == "chat"


def test_a_completion_prompt_given_as_a_list_of_one_is_classified_by_its_text(routed_server):
    r = httpx.post(routed_server.base_url + "/v1/completions", timeout=120,
                   headers={"authorization": f"Bearer {OPERATOR}"},
                   json={"model": "auto", "prompt": ["def reverse_linked_list(head):\n    # Python: reverse it in place"],
                         "max_tokens": 4})
    assert r.status_code == 200, r.text
    assert route_of(r)["scenario"] == "code" and r.json()["model"] == "code-model"
