"""`tokenmill moderate`: moderation verdicts for JSON lines on stdin, one JSON line out per line in.

Input lines: {"text": "..."}. Output lines: {"flagged", "categories", "scores", "matches"}, with
match offsets in the input text; a bad line gets {"error": "line N: ..."} and the rest go on.
Nothing else is written to stdout.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from tokenmill.jsonlines import answer_lines
from tokenmill.moderation.categories import CATEGORIES


def add_moderate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("moderate", help="moderate texts (JSON lines {\"text\": ...} on stdin)")
    p.add_argument("--lexicon", action="append", default=[], metavar="FILE",
                   help="a term list (one term a line, '#' comments) to match instead of the shipped lists; "
                        "repeatable")
    p.add_argument("--category", default="illicit", choices=CATEGORIES,
                   help="the category --lexicon matches flag (default %(default)s)")
    p.add_argument("--no-semantic", action="store_true", help="term lists only, no classifier")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a moderation config (or tokenmill.yaml with a 'moderation:' section)")
    p.add_argument("--tenant", default=None, help="apply this tenant's policy from --config (default: its default)")
    p.set_defaults(handler=_moderate)


def _moderate(args: argparse.Namespace) -> int:
    from tokenmill.moderation.config import ListSource, ModerationConfig, load_moderation_config
    from tokenmill.moderation.moderator import Moderator

    try:
        config = load_moderation_config(args.config) if args.config else ModerationConfig()
        if args.lexicon:
            lists = {f"lexicon{i}": ListSource(f"lexicon{i}", Path(f), args.category) for i, f in enumerate(args.lexicon)}
            policy = replace(config.policy_for(args.tenant), lists=tuple(lists))
            config = replace(config, lists=lists, default=policy, tenants={})
        moderator = Moderator(config, semantic=not args.no_semantic)
        screen = moderator.screen(args.tenant)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    def answer(item: dict) -> dict:
        if not isinstance(item.get("text"), str):
            raise ValueError('each line needs "text": a string')
        result = moderator.check(item["text"], screen).as_dict()
        return {"flagged": result["flagged"], "categories": result["categories"], "scores": result["category_scores"],
                "matches": [{"term": m["term"], "start": m["start"], "end": m["end"]} for m in result["matches"]]}

    answer_lines(answer)
    return 0
