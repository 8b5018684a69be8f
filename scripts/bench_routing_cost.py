"""What routing saves: the held-out requests routed over a catalogue, against sending all to one model.

Usage: .venv/bin/python scripts/bench_routing_cost.py [--config tokenmill.yaml] [--max-tokens 256]
Classifies every held-out request, ranks the catalogue with the routing policy (as "auto" does,
no model overloaded, prompt tokens estimated as the gateway does), and compares the estimated
cost with always using the model of the best average quality. The savings are only as right as
the catalogue's quality scores and prices.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from tokenmill.catalog.load import load_catalog
from tokenmill.gateway.upstream import estimated_tokens
from tokenmill.routing.classifier import ScenarioClassifier
from tokenmill.routing.dataset import HELDOUT, example_request, load_examples
from tokenmill.routing.policy import DEFAULT_FLOOR, choose, estimated_cost_micros
from tokenmill.routing.router import catalogue_candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("tokenmill.yaml"))
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--floor", type=float, default=DEFAULT_FLOOR)
    args = parser.parse_args()
    entries = load_catalog(args.config)
    candidates = catalogue_candidates(entries)
    strongest = max(entries, key=lambda e: sum(e.quality.values()) / max(len(e.quality), 1))
    examples = load_examples(HELDOUT)
    requests = [example_request(e) for e in examples]
    scenarios = [c.scenario for c in ScenarioClassifier().classify_many(requests)]
    routed_cost = single_cost = 0.0
    chosen: Counter[str] = Counter()
    met = 0
    for example, request, scenario in zip(examples, requests, scenarios):
        tokens = estimated_tokens(len(request.last) + len(request.context))
        route = choose("auto", scenario, candidates, tokens, args.max_tokens, args.floor)
        model = route.model
        chosen[model.name] += 1
        routed_cost += estimated_cost_micros(model, tokens, args.max_tokens)
        single_cost += estimated_cost_micros(strongest, tokens, args.max_tokens)
        met += model.quality.get(example["label"], 0.0) >= args.floor  # judged by the true label
    n = len(examples)
    print(f"{n} held-out requests, catalogue {args.config}, max_tokens {args.max_tokens}, floor {args.floor}")
    print("routed to: " + ", ".join(f"{name} {count}" for name, count in chosen.most_common()))
    print(f"estimated cost routed {routed_cost / n:.2f} micro-units a request, all on {strongest.name} "
          f"{single_cost / n:.2f}: {100 * (1 - routed_cost / single_cost):.1f}% lower")
    print(f"requests whose model meets the floor for their true scenario: {met} of {n} ({100 * met / n:.1f}%)")


if __name__ == "__main__":
    main()
