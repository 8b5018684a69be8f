"""/metrics: the Prometheus series the issue names, moving by what a request actually did."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

FAMILIES = {
    "tokenmill_requests": "counter",
    "tokenmill_requests_rejected": "counter",
    "tokenmill_time_to_first_token_seconds": "histogram",
    "tokenmill_time_per_output_token_seconds": "histogram",
    "tokenmill_e2e_request_latency_seconds": "histogram",
    "tokenmill_prompt_tokens": "counter",
    "tokenmill_cached_prompt_tokens": "counter",
    "tokenmill_generation_tokens": "counter",
    "tokenmill_requests_running": "gauge",
    "tokenmill_requests_waiting": "gauge",
    "tokenmill_kv_cache_usage_ratio": "gauge",
    "tokenmill_prefix_cache_hit_rate": "gauge",
}


def test_metrics_exposes_the_named_families(base_url):
    r = httpx.get(base_url + "/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f.type for f in text_string_to_metric_families(r.text)}
    for name, kind in FAMILIES.items():
        assert families.get(name) == kind, f"{name}: expected a {kind}, got {families.get(name)}"


def test_a_request_moves_the_counters_by_its_usage(server, client, model):
    prompt = "The lighthouse keeper climbed the stairs every evening to light the lamp for the ships at sea."
    client.completions.create(model=model, prompt=prompt, max_tokens=1)  # its full blocks are now cached
    before = server.wait_idle()
    r = client.completions.create(model=model, prompt=prompt, max_tokens=5, temperature=0, extra_body={"ignore_eos": True})
    after = server.wait_idle()

    def delta(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    assert delta('tokenmill_requests_total{outcome="length"}') == 1
    assert delta("tokenmill_prompt_tokens_total") == r.usage.prompt_tokens
    assert delta("tokenmill_cached_prompt_tokens_total") == r.usage.prompt_tokens_details.cached_tokens > 0
    assert delta("tokenmill_generation_tokens_total") == r.usage.completion_tokens == 5
    for histogram in ("tokenmill_time_to_first_token_seconds", "tokenmill_time_per_output_token_seconds",
                      "tokenmill_e2e_request_latency_seconds"):
        assert delta(histogram + "_count") == 1
        assert delta(histogram + "_sum") > 0
    assert 0 < after["tokenmill_prefix_cache_hit_rate"] <= 1
    assert after["tokenmill_requests_running"] == after["tokenmill_requests_waiting"] == 0
