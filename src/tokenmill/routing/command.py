"""`tokenmill route`: what the router would do with each request, one JSON line in, one JSON line out.

Input lines: {"messages": [{"role", "content"}, ...]}, {"prompt": "..."} or {"text": "..."}, optionally
with "max_tokens". Output lines: the scenario, the decision time in ms (classification and, with
--config, the policy), its confidence and every scenario's score; with --config, also the model
"auto" would use, the ranked fallbacks and the reason. Nothing else is written to stdout; a bad
input line gets {"error": "..."} and the rest go on.

`tokenmill route eval FILE` measures the router on labelled requests instead (routing/eval_command.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tokenmill.jsonlines import answer_lines
from tokenmill.routing.policy import DEFAULT_FLOOR, ROUTES


def add_route_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("route", help="classify requests (JSON lines on stdin) and show where 'auto' sends them; "
                                     "'route eval FILE' measures accuracy, latency and cost on labelled requests")
    p.add_argument("action", nargs="?", choices=("eval",), default=None,
                   help="eval: measure the router on FILE instead of reading stdin")
    p.add_argument("file", nargs="?", type=Path, default=None, metavar="FILE",
                   help='with eval: JSON lines with "prompt", "messages", "text" or "turns", and "label"')
    p.add_argument("--config", default=None, metavar="FILE", help="rank this catalogue's models too")
    p.add_argument("--route", default="auto", choices=ROUTES)
    p.add_argument("--floor", type=float, default=DEFAULT_FLOOR, help="quality floor (default %(default)s)")
    p.add_argument("--json", action="store_true", help="with eval: print the figures as one JSON object")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.action == "eval":
        if args.file is None:
            print("tokenmill route eval: name the labelled file, e.g. tokenmill route eval requests.jsonl",
                  file=sys.stderr)
            return 2
        from tokenmill.routing.eval_command import run_eval

        return run_eval(args.file, args.config, args.route, args.floor, args.json)
    if args.json:
        print("tokenmill route: --json is for 'tokenmill route eval FILE'; plain route already writes JSON lines",
              file=sys.stderr)
        return 2
    return _route(args)


def _route(args: argparse.Namespace) -> int:
    from tokenmill.catalog.load import load_catalog
    from tokenmill.routing.classifier import ScenarioClassifier
    from tokenmill.routing.evaluation import estimated_request_tokens
    from tokenmill.routing.policy import NoRoute, choose
    from tokenmill.routing.request_text import RequestText, request_text
    from tokenmill.routing.router import ROUTING_MAX_TOKENS, catalogue_candidates

    candidates = catalogue_candidates(load_catalog(args.config)) if args.config else []
    classifier = ScenarioClassifier()
    classifier.classify(RequestText("warm up", "warm up"))  # the embedding model loads on first use: not in "ms"
    def answer(item: dict) -> dict:
        if not ({"messages", "prompt", "text"} & set(item)):
            raise ValueError('each line needs "messages", "prompt" or "text"')
        if "messages" in item:
            request = request_text(item["messages"])
        else:
            request = request_text(prompt=str(item.get("prompt", item.get("text"))))
        started = time.perf_counter()
        result = classifier.classify(request)
        route = None
        if candidates:
            route = choose(args.route, result.scenario, candidates, estimated_request_tokens(request),
                           int(item.get("max_tokens") or ROUTING_MAX_TOKENS), args.floor)
        ms = (time.perf_counter() - started) * 1000
        out: dict = {"scenario": result.scenario}
        if route is not None:
            out["model"] = route.model.name
        out.update(ms=round(ms, 2), confidence=round(result.confidence, 4),
                   scores={k: round(v, 4) for k, v in result.scores.items()})
        if route is not None:
            out.update(ranked=[m.name for m in route.ranked], reason=route.reason)
        return out

    answer_lines(answer, (ValueError, TypeError, AttributeError, NoRoute))
    return 0
