"""Prometheus metrics of the API process (requests, latency, tokens) and of the engines (gauges)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from tokenmill.engine.client import EngineClient
    from tokenmill.gateway.pipeline import Usage

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TPOT_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("tokenmill_requests", "Finished requests by outcome", ["outcome"], registry=r)
        self.rejected = Counter("tokenmill_requests_rejected", "Requests refused because the queue was full", registry=r)
        self.ttft = Histogram("tokenmill_time_to_first_token_seconds", "Time to first token", buckets=_LATENCY_BUCKETS, registry=r)
        self.tpot = Histogram("tokenmill_time_per_output_token_seconds", "Time per output token after the first",
                              buckets=_TPOT_BUCKETS, registry=r)
        self.e2e = Histogram("tokenmill_e2e_request_latency_seconds", "Request latency", buckets=_LATENCY_BUCKETS, registry=r)
        self.prompt_tokens = Counter("tokenmill_prompt_tokens", "Prompt tokens processed", registry=r)
        self.cached_tokens = Counter("tokenmill_cached_prompt_tokens", "Prompt tokens served from the prefix cache", registry=r)
        self.generation_tokens = Counter("tokenmill_generation_tokens", "Tokens generated", registry=r)
        self.running = Gauge("tokenmill_requests_running", "Requests being computed", registry=r)
        self.waiting = Gauge("tokenmill_requests_waiting", "Requests waiting for the engine", registry=r)
        self.kv_usage = Gauge("tokenmill_kv_cache_usage_ratio", "Share of KV-cache blocks in use", registry=r)
        self.prefix_hit_rate = Gauge("tokenmill_prefix_cache_hit_rate", "Prompt tokens found in the prefix cache / prompt tokens", registry=r)
        self.preemptions = Gauge("tokenmill_preemptions", "Sequences preempted so far", registry=r)
        self.tenant_tokens = Counter("tokenmill_tenant_tokens", "Prompt + completion tokens by tenant and model",
                                     ["tenant", "model"], registry=r)
        self.tenant_cost = Counter("tokenmill_tenant_cost_micros", "Cost in micro-units of currency by tenant and model",
                                   ["tenant", "model"], registry=r)
        self.tenant_rejections = Counter("tokenmill_tenant_rejections", "Requests refused by a limit or budget",
                                         ["tenant", "model", "reason"], registry=r)

    def observe_request(self, outcome: str, started: float, first_token_s: float | None, usage: Usage) -> None:
        now = time.perf_counter()
        self.requests.labels(outcome).inc()
        self.e2e.observe(now - started)
        self.prompt_tokens.inc(usage.prompt_tokens)
        self.cached_tokens.inc(usage.cached_tokens)
        self.generation_tokens.inc(usage.completion_tokens)
        if first_token_s is not None:
            self.ttft.observe(first_token_s - started)
            if usage.completion_tokens > 1:
                self.tpot.observe((now - first_token_s) / (usage.completion_tokens - 1))

    def observe_usage(self, tenant: str, model: str, tokens: int, cost_micros: int) -> None:
        self.tenant_tokens.labels(tenant, model).inc(tokens)
        self.tenant_cost.labels(tenant, model).inc(cost_micros)

    def observe_rejection(self, tenant: str, model: str, reason: str) -> None:
        self.tenant_rejections.labels(tenant, model, reason).inc()

    def render(self, engine: EngineClient) -> bytes:
        s = engine.stats
        self.running.set(s.num_running)
        self.waiting.set(s.num_waiting)
        self.kv_usage.set(s.kv_usage)
        self.prefix_hit_rate.set(s.prefix_hit_tokens / s.prefix_queries_tokens if s.prefix_queries_tokens else 0.0)
        self.preemptions.set(s.num_preemptions)
        return generate_latest(self.registry)
