"""Prometheus metrics of the API process (requests, latency, tokens) and of the engines (gauges), by model."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from tokenmill.gateway.models import ServedModels
    from tokenmill.gateway.pipeline import Usage
    from tokenmill.moderation.verdict import Verdict

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TPOT_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("tokenmill_requests", "Finished requests by outcome", ["model", "outcome"], registry=r)
        self.rejected = Counter("tokenmill_requests_rejected", "Requests refused because the queue was full", ["model"],
                                registry=r)
        self.ttft = Histogram("tokenmill_time_to_first_token_seconds", "Time to first token", ["model"], buckets=_LATENCY_BUCKETS,
                              registry=r)
        self.tpot = Histogram("tokenmill_time_per_output_token_seconds", "Time per output token after the first",
                              ["model"], buckets=_TPOT_BUCKETS, registry=r)
        self.e2e = Histogram("tokenmill_e2e_request_latency_seconds", "Request latency", ["model"], buckets=_LATENCY_BUCKETS,
                             registry=r)
        self.prompt_tokens = Counter("tokenmill_prompt_tokens", "Prompt tokens processed", ["model"], registry=r)
        self.cached_tokens = Counter("tokenmill_cached_prompt_tokens", "Prompt tokens served from the prefix cache", ["model"], registry=r)
        self.generation_tokens = Counter("tokenmill_generation_tokens", "Tokens generated", ["model"], registry=r)
        self.running = Gauge("tokenmill_requests_running", "Requests being computed", ["model"], registry=r)
        self.waiting = Gauge("tokenmill_requests_waiting", "Requests waiting for the engine", ["model"], registry=r)
        self.kv_usage = Gauge("tokenmill_kv_cache_usage_ratio", "Share of KV-cache blocks in use", ["model"], registry=r)
        self.prefix_hit_rate = Gauge("tokenmill_prefix_cache_hit_rate", "Prompt tokens found in the prefix cache / prompt tokens", ["model"], registry=r)
        self.preemptions = Gauge("tokenmill_preemptions", "Sequences preempted so far", ["model"], registry=r)
        self.tenant_tokens = Counter("tokenmill_tenant_tokens", "Prompt + completion tokens by tenant and model",
                                     ["tenant", "model"], registry=r)
        self.tenant_cost = Counter("tokenmill_tenant_cost_micros", "Cost in micro-units of currency by tenant and model",
                                   ["tenant", "model"], registry=r)
        self.tenant_rejections = Counter("tokenmill_tenant_rejections", "Requests refused by a limit or budget",
                                         ["tenant", "model", "reason"], registry=r)
        self.moderation_flags = Counter("tokenmill_moderation_flagged", "Prompts refused and outputs cut or masked by "
                                        "moderation, by direction and category", ["direction", "category"], registry=r)

    def observe_request(self, model: str, outcome: str, started: float, first_token_s: float | None,
                        usage: Usage) -> None:
        now = time.perf_counter()
        self.requests.labels(model, outcome).inc()
        self.e2e.labels(model).observe(now - started)
        self.prompt_tokens.labels(model).inc(usage.prompt_tokens)
        self.cached_tokens.labels(model).inc(usage.cached_tokens)
        self.generation_tokens.labels(model).inc(usage.completion_tokens)
        if first_token_s is not None:
            self.ttft.labels(model).observe(first_token_s - started)
            if usage.completion_tokens > 1:
                self.tpot.labels(model).observe((now - first_token_s) / (usage.completion_tokens - 1))

    def observe_usage(self, tenant: str, model: str, tokens: int, cost_micros: int) -> None:
        self.tenant_tokens.labels(tenant, model).inc(tokens)
        self.tenant_cost.labels(tenant, model).inc(cost_micros)

    def observe_rejection(self, tenant: str, model: str, reason: str) -> None:
        self.tenant_rejections.labels(tenant, model, reason).inc()

    def observe_moderation(self, direction: str, verdict: Verdict) -> None:
        for category in verdict.flagged_categories:
            self.moderation_flags.labels(direction, category).inc()

    def render(self, models: ServedModels) -> bytes:
        for model in models:
            s, name = model.engine.stats, model.name
            self.running.labels(name).set(s.num_running)
            self.waiting.labels(name).set(s.num_waiting)
            self.kv_usage.labels(name).set(s.kv_usage)
            self.prefix_hit_rate.labels(name).set(s.prefix_hit_tokens / s.prefix_queries_tokens
                                                  if s.prefix_queries_tokens else 0.0)
            self.preemptions.labels(name).set(s.num_preemptions)
        return generate_latest(self.registry)
