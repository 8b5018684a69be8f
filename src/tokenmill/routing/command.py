"""`tokenmill route`: what the router would do with each request, one JSON line in, one JSON line out.

Input lines: {"messages": [{"role", "content"}, ...]}, {"prompt": "..."} or {"text": "..."}, optionally
with "max_tokens". Output lines: the scenario, its confidence and every scenario's score; with
--config, also the model "auto" would use, the ranked fallbacks and the reason. Nothing else is
written to stdout; a bad input line gets {"error": "..."} and the rest go on.
"""

from __future__ import annotations

import argparse
import json
import sys

from tokenmill.routing.policy import DEFAULT_FLOOR, ROUTES


def add_route_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("route", help="classify requests (JSON lines on stdin) and show where 'auto' sends them")
    p.add_argument("--config", default=None, metavar="FILE", help="rank this catalogue's models too")
    p.add_argument("--route", default="auto", choices=ROUTES)
    p.add_argument("--floor", type=float, default=DEFAULT_FLOOR, help="quality floor (default %(default)s)")
    p.set_defaults(handler=_route)


def _route(args: argparse.Namespace) -> int:
    from tokenmill.catalog.load import load_catalog
    from tokenmill.gateway.upstream import estimated_tokens
    from tokenmill.routing.classifier import ScenarioClassifier
    from tokenmill.routing.policy import NoRoute, choose
    from tokenmill.routing.request_text import request_text
    from tokenmill.routing.router import ROUTING_MAX_TOKENS, catalogue_candidates

    candidates = catalogue_candidates(load_catalog(args.config)) if args.config else []
    classifier = ScenarioClassifier()
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object ({exc.msg})") from None
            if not isinstance(item, dict) or not ({"messages", "prompt", "text"} & set(item)):
                raise ValueError('each line needs "messages", "prompt" or "text"')
            if "messages" in item:
                request = request_text(item["messages"])
            else:
                request = request_text(prompt=str(item.get("prompt", item.get("text"))))
            result = classifier.classify(request)
            out: dict = {"scenario": result.scenario, "confidence": round(result.confidence, 4),
                         "scores": {k: round(v, 4) for k, v in result.scores.items()}}
            if candidates:
                tokens = estimated_tokens(len(request.last) + len(request.context))
                route = choose(args.route, result.scenario, candidates, tokens,
                               int(item.get("max_tokens") or ROUTING_MAX_TOKENS), args.floor)
                out.update(model=route.model.name, ranked=[m.name for m in route.ranked], reason=route.reason)
        except (ValueError, TypeError, AttributeError, NoRoute) as exc:
            out = {"error": f"line {number}: {exc}"}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0
