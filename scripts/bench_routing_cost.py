"""What routing saves: the held-out requests routed over a catalogue, against sending all to one model.

Usage: .venv/bin/python scripts/bench_routing_cost.py [--config tokenmill.yaml] [--max-tokens 256] [--file FILE]
Classifies every held-out request, ranks the catalogue with the routing policy (as "auto" does,
no model overloaded, prompt tokens estimated as the gateway does), and compares the estimated
cost with always using the model of the best average quality (routing/evaluation.py, the same
figures `tokenmill route eval --config` prints). The savings are only as right as the catalogue's
quality scores and prices.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tokenmill.catalog.load import load_catalog
from tokenmill.routing.classifier import ScenarioClassifier
from tokenmill.routing.dataset import HELDOUT, example_request, load_examples
from tokenmill.routing.evaluation import routing_cost
from tokenmill.routing.policy import DEFAULT_FLOOR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("tokenmill.yaml"))
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--floor", type=float, default=DEFAULT_FLOOR)
    parser.add_argument("--file", type=Path, default=HELDOUT, help="labelled requests (default: the held-out set)")
    args = parser.parse_args()
    examples = load_examples(args.file)
    requests = [example_request(e) for e in examples]
    scenarios = [c.scenario for c in ScenarioClassifier().classify_many(requests)]
    report = routing_cost(load_catalog(args.config), requests, scenarios, [e["label"] for e in examples],
                          [args.max_tokens] * len(examples), "auto", args.floor)
    n = max(report.requests, 1)
    print(f"{report.requests} requests from {args.file.name}, catalogue {args.config}, "
          f"max_tokens {args.max_tokens}, floor {args.floor}")
    print("routed to: " + ", ".join(f"{name} {count}" for name, count in report.chosen.most_common()))
    print(f"estimated cost routed {report.routed_micros / n:.2f} micro-units a request, all on {report.strongest} "
          f"{report.strongest_micros / n:.2f}: {report.savings:.1%} lower")
    print(f"quality of routed answers (catalogue scores for the true scenario): {report.quality_share:.1%} "
          f"of always {report.strongest}")
    print(f"requests whose model meets the floor for their true scenario: {report.met_floor} of {report.requests} "
          f"({report.met_floor / n:.1%})")


if __name__ == "__main__":
    main()
