"""`tokenmill route eval FILE`: the router measured on labelled requests.

Prints scenario accuracy, per-class precision and recall, the confusion matrix and the decision
latency (classification + policy, one request at a time, as the API decides); with --config, also
what the routed traffic would cost against sending everything to the strongest model, and the
quality of the routed answers by the catalogue's per-scenario scores, as a share of always-strongest.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tokenmill.catalog.entry import SCENARIOS
from tokenmill.routing.evaluation import (CostReport, accuracy, class_scores, confusion, estimated_request_tokens,
                                          percentile, routing_cost)


def run_eval(path: Path, config: str | None, route: str, floor: float, as_json: bool) -> int:
    """Measure and print; 2 (and a message on stderr) for a bad file or catalogue."""
    from tokenmill.catalog.load import load_catalog
    from tokenmill.routing.classifier import ScenarioClassifier
    from tokenmill.routing.dataset import read_labelled
    from tokenmill.routing.policy import NoRoute, choose
    from tokenmill.routing.request_text import RequestText
    from tokenmill.routing.router import ROUTING_MAX_TOKENS, catalogue_candidates

    try:
        items = read_labelled(path)
        entries = load_catalog(config) if config else []
    except (OSError, ValueError) as exc:
        print(f"tokenmill route eval: {exc}", file=sys.stderr)
        return 2
    candidates = catalogue_candidates(entries)
    classifier = ScenarioClassifier()
    classifier.classify(RequestText("warm up", "warm up"))  # the embedding model loads on first use
    predicted, latencies = [], []
    for item in items:
        started = time.perf_counter()
        scenario = classifier.classify(item.request).scenario
        if candidates:
            try:
                choose(route, scenario, candidates, estimated_request_tokens(item.request),
                       item.max_tokens or ROUTING_MAX_TOKENS, floor)
            except NoRoute:
                pass  # counted as unroutable in the cost report
        latencies.append((time.perf_counter() - started) * 1000)
        predicted.append(scenario)
    labels = [item.label for item in items]
    cost = routing_cost(entries, [i.request for i in items], predicted, labels,
                        [i.max_tokens or ROUTING_MAX_TOKENS for i in items], route, floor) if entries else None
    report = _report(str(path), labels, predicted, latencies, cost, config)
    print(json.dumps(report, indent=1) if as_json else _text(report))
    return 0


def _report(path: str, labels: list[str], predicted: list[str], latencies: list[float],
            cost: CostReport | None, config: str | None) -> dict:
    out: dict = {
        "file": path, "requests": len(labels), "correct": sum(a == b for a, b in zip(labels, predicted)),
        "accuracy": round(accuracy(labels, predicted), 4),
        "per_class": {c: {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
                          "requests": s.support} for c, s in class_scores(labels, predicted).items()},
        "confusion": confusion(labels, predicted),
        "latency_ms": {f"p{q}": round(percentile(latencies, q), 2) for q in (50, 90, 99)},
        "cost": None,
    }
    if cost is not None:
        n = max(cost.requests, 1)
        out["cost"] = {
            "catalogue": config, "route": cost.route, "floor": cost.floor, "routed_requests": cost.requests,
            "unroutable": cost.unroutable, "routed_to": dict(cost.chosen.most_common()),
            "strongest": cost.strongest, "routed_micros_per_request": round(cost.routed_micros / n, 2),
            "strongest_micros_per_request": round(cost.strongest_micros / n, 2),
            "savings": round(cost.savings, 4), "quality_vs_strongest": round(cost.quality_share, 4),
            "met_floor": cost.met_floor,
        }
    return out


def _text(r: dict) -> str:
    lines = [f"{r['file']}: {r['requests']} requests, scenario accuracy {r['accuracy']:.1%} "
             f"({r['correct']} of {r['requests']})", "",
             f"{'scenario':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'requests':>8}"]
    for c, s in r["per_class"].items():
        lines.append(f"{c:<12} {s['precision']:>9.3f} {s['recall']:>7.3f} {s['f1']:>6.3f} {s['requests']:>8}")
    lines += ["", "confusion (rows: true scenario, columns: predicted)",
              f"{'':<12}" + "".join(f"{c[:6]:>7}" for c in SCENARIOS)]
    lines += [f"{a:<12}" + "".join(f"{row[b]:>7}" for b in SCENARIOS) for a, row in r["confusion"].items()]
    lat = r["latency_ms"]
    lines += ["", f"decision latency (classification + policy, one request at a time): "
                  f"p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, p99 {lat['p99']:.2f} ms"]
    c = r["cost"]
    if c:
        lines += ["", f"catalogue {c['catalogue']}, route {c['route']}, floor {c['floor']:g}:",
                  "  routed to: " + ", ".join(f"{name} {n}" for name, n in c["routed_to"].items())
                  + (f"; {c['unroutable']} fit no model's context" if c["unroutable"] else ""),
                  f"  estimated cost: {c['routed_micros_per_request']:.2f} micro-units a request routed, "
                  f"{c['strongest_micros_per_request']:.2f} all on {c['strongest']}: {c['savings']:.1%} lower",
                  f"  quality of routed answers (the catalogue's scores for the true scenario): "
                  f"{c['quality_vs_strongest']:.1%} of always {c['strongest']}",
                  f"  requests on a model that meets the floor for their true scenario: {c['met_floor']} of "
                  f"{c['routed_requests']} ({c['met_floor'] / max(c['routed_requests'], 1):.1%})"]
    return "\n".join(lines)
