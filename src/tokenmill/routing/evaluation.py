"""How good a routing is: scenario accuracy, per-class precision and recall, and what the routed traffic costs.

Shared by `tokenmill route eval`, scripts/train_router.py and scripts/bench_routing_cost.py, so each
figure has one definition. Costs are the routing policy's own estimates (prompt tokens from the
characters, as the gateway estimates them; all of max_tokens generated), so they are only as right
as the catalogue's prices, and the quality figures only as right as its per-scenario scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from tokenmill.catalog.entry import SCENARIOS, ModelEntry
from tokenmill.gateway.upstream import estimated_tokens
from tokenmill.routing.policy import DEFAULT_FLOOR, NoRoute, choose, estimated_cost_micros
from tokenmill.routing.request_text import RequestText
from tokenmill.routing.router import catalogue_candidates


@dataclass(frozen=True, slots=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int  # requests with this label


def accuracy(labels: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of predictions equal to the label (0.0 for no requests)."""
    assert len(labels) == len(predicted)
    return sum(a == b for a, b in zip(labels, predicted)) / max(len(labels), 1)


def class_scores(labels: Sequence[str], predicted: Sequence[str],
                 classes: Sequence[str] = SCENARIOS) -> dict[str, ClassScores]:
    """Precision, recall and F1 of each class (0.0 where undefined)."""
    out = {}
    for c in classes:
        tp = sum(a == c and b == c for a, b in zip(labels, predicted))
        fp = sum(a != c and b == c for a, b in zip(labels, predicted))
        fn = sum(a == c and b != c for a, b in zip(labels, predicted))
        precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[c] = ClassScores(precision, recall, f1, tp + fn)
    return out


def confusion(labels: Sequence[str], predicted: Sequence[str],
              classes: Sequence[str] = SCENARIOS) -> dict[str, dict[str, int]]:
    """counts[label][predicted]."""
    counts = Counter(zip(labels, predicted))
    return {a: {b: counts[a, b] for b in classes} for a in classes}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank: a value that was measured, never an interpolation."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
    return ordered[int(rank) - 1]


def strongest_model(entries: Sequence[ModelEntry]) -> ModelEntry:
    """The model of the best average quality over the scenarios (a missing score counts 0)."""
    return max(entries, key=lambda e: sum(e.quality.get(s, 0.0) for s in SCENARIOS))


@dataclass(slots=True)
class CostReport:
    """Routed traffic against sending every request to the strongest model."""
    strongest: str
    route: str
    floor: float
    requests: int = 0  # routed ones; unroutable ones are left out of every sum
    unroutable: int = 0  # no model's context holds them
    chosen: Counter[str] = field(default_factory=Counter)
    routed_micros: float = 0.0
    strongest_micros: float = 0.0
    routed_quality: float = 0.0  # sum over requests of the chosen model's score for the true scenario
    strongest_quality: float = 0.0
    met_floor: int = 0  # requests whose model meets the floor for their true scenario

    @property
    def savings(self) -> float:
        """1 - routed cost / strongest cost."""
        return 1 - self.routed_micros / self.strongest_micros if self.strongest_micros else 0.0

    @property
    def quality_share(self) -> float:
        """The routed answers' quality (by the catalogue's scores) as a share of always-strongest."""
        return self.routed_quality / self.strongest_quality if self.strongest_quality else 0.0


def estimated_request_tokens(request: RequestText) -> int:
    """The prompt tokens the policy's context check assumes for a request known only by its text (the offline
    tools have no tokenizer): the generous estimate upstream requests get."""
    return estimated_tokens(len(request.last) + len(request.context))


def routing_cost(entries: Sequence[ModelEntry], requests: Sequence[RequestText], scenarios: Sequence[str],
                 labels: Sequence[str], max_tokens: Sequence[int], route: str = "auto",
                 floor: float = DEFAULT_FLOOR) -> CostReport:
    """Route each request by its predicted scenario as `auto` does (no model overloaded) and add up the costs."""
    candidates = catalogue_candidates(entries)
    strongest = strongest_model(entries)
    report = CostReport(strongest.name, route, floor)
    for request, scenario, label, limit in zip(requests, scenarios, labels, max_tokens, strict=True):
        tokens = estimated_request_tokens(request)
        try:
            model = choose(route, scenario, candidates, tokens, limit, floor).model
        except NoRoute:
            report.unroutable += 1
            continue
        report.requests += 1
        report.chosen[model.name] += 1
        report.routed_micros += estimated_cost_micros(model, tokens, limit)
        report.strongest_micros += estimated_cost_micros(strongest, tokens, limit)
        report.routed_quality += model.quality.get(label, 0.0)
        report.strongest_quality += strongest.quality.get(label, 0.0)
        report.met_floor += model.quality.get(label, 0.0) >= floor
    return report
