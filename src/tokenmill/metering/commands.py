"""`tokenmill usage`: usage grouped by tenant, model, scenario, outcome and day, or `--health` of the tokens."""

from __future__ import annotations

import argparse
import json
import os
import sys

from sqlalchemy import Engine, or_, select
from sqlalchemy.exc import SQLAlchemyError

from tokenmill.db.engine import DatabaseError, open_database
from tokenmill.db.schema import tenants
from tokenmill.metering.pricing import to_currency
from tokenmill.metering.reports import GROUPS, health_report, usage_report


def add_usage_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the `usage` subcommand."""
    p = subparsers.add_parser("usage", help="report tokens and cost from the usage ledger",
                              description="Report requests, tokens and cost from the usage ledger, or with --health "
                                          "where the tokens went (wasted, cached, delivered) and SLO attainment.")
    p.add_argument("--database", default=os.environ.get("TOKENMILL_DATABASE_URL"),
                   help="SQLite or PostgreSQL URL (env TOKENMILL_DATABASE_URL; default: SQLite in TOKENMILL_HOME)")
    p.add_argument("--group-by", default="tenant,model", type=_groups,
                   help=f"comma-separated, from {','.join(GROUPS)} (default: tenant,model)")
    p.add_argument("--tenant", help="only this tenant (name or id)")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="from this UTC day on")
    p.add_argument("--until", metavar="YYYY-MM-DD", help="up to and including this UTC day")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--health", action="store_true",
                   help="token health: shares by scenario and outcome, wasted and cached tokens, cost per 1,000 "
                        "delivered tokens, SLO attainment")
    p.add_argument("--ttft-slo", type=float, metavar="MS", help="with --health: time-to-first-token target in ms")
    p.add_argument("--tpot-slo", type=float, metavar="MS", help="with --health: time-per-output-token target in ms")
    p.set_defaults(handler=_usage)


def _groups(text: str) -> list[str]:
    groups = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise argparse.ArgumentTypeError(f"cannot group by {', '.join(unknown)}: choose from {', '.join(GROUPS)}")
    return groups


def _usage(args: argparse.Namespace) -> int:
    if (args.ttft_slo is not None or args.tpot_slo is not None) and not args.health:
        print("error: --ttft-slo and --tpot-slo go with --health", file=sys.stderr)
        return 2
    try:
        engine = open_database(args.database)
        tenant_id = resolve_tenant(engine, args.tenant) if args.tenant else None
        if args.health:
            report = health_report(engine, tenant_id, args.ttft_slo, args.tpot_slo, args.since, args.until)
            print(json.dumps(report, indent=2) if args.json else format_health(report))
        else:
            rows = usage_report(engine, args.group_by, tenant_id, args.since, args.until)
            print(json.dumps(rows, indent=2) if args.json else format_usage(rows, args.group_by))
    except (ValueError, DatabaseError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"error: could not read the usage ledger: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    return 0


def resolve_tenant(engine: Engine, name_or_id: str) -> str:
    """The id of the tenant with this name or id; the text itself if no such tenant row exists (e.g. 'operator')."""
    with engine.connect() as conn:
        found = conn.scalar(select(tenants.c.id).where(or_(tenants.c.id == name_or_id, tenants.c.name == name_or_id)))
    return found or name_or_id


def format_usage(rows: list[dict], group_by: list[str]) -> str:
    """A table with a total line; costs in currency units with 6 decimals."""
    if not rows:
        return "no usage recorded for this selection"
    numbers = ("requests", "prompt_tokens", "cached_tokens", "completion_tokens")
    header = [g.upper() for g in group_by] + ["REQUESTS", "PROMPT", "CACHED", "COMPLETION", "COST"]
    body = [[str(r[g]) or "-" for g in group_by] + [str(r[n]) for n in numbers] + [r["cost"]] for r in rows]
    if group_by and len(rows) > 1:
        total = [sum(r[n] for r in rows) for n in numbers]
        body.append(["TOTAL"] + [""] * (len(group_by) - 1) + [str(t) for t in total]
                    + [str(to_currency(sum(r["cost_micros"] for r in rows)))])
    return _table(header, body, right_from=len(group_by))


def format_health(report: dict) -> str:
    if not report["requests"]:
        return "no usage recorded for this selection"
    pairs = [
        ("requests", str(report["requests"])),
        ("tokens", f"{report['tokens']} (prompt + completion)"),
        ("wasted tokens", f"{report['wasted_tokens']} ({_percent(report['wasted_share'])}; aborted, error, "
                          "content_filter, rejected)"),
        ("prefix cache saved",
         f"{report['cached_tokens']} prompt tokens ({_percent(report['cached_share'])} of prompt)"),
        ("delivered tokens", f"{report['delivered_tokens']} (completion tokens of stop/length requests)"),
        ("cost", str(to_currency(report["cost_micros"]))),
        ("cost per 1k delivered", report["cost_per_1k_delivered"] or "-"),
    ]
    slo = report["slo"]
    for name, target, attained in (("TTFT", slo["ttft_slo_ms"], slo["ttft_attainment"]),
                                   ("TPOT", slo["tpot_slo_ms"], slo["tpot_attainment"])):
        if target is not None:
            figure = "-" if attained is None else _percent(attained)
            pairs.append((f"{name} <= {target:g} ms", f"{figure} of {slo['completed_requests']} completed requests"))
    width = max(len(label) for label, _ in pairs)
    lines = [f"{label.ljust(width)}  {value}" for label, value in pairs]
    for title, shares in (("SCENARIO", report["by_scenario"]), ("OUTCOME", report["by_outcome"])):
        lines.append("")
        lines.append(_table([title, "REQUESTS", "TOKENS", "SHARE"],
                            [[s["name"] or "-", str(s["requests"]), str(s["tokens"]), _percent(s["share"])]
                             for s in shares], right_from=1))
    return "\n".join(lines)


def _table(header: list[str], body: list[list[str]], right_from: int) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = []
    for row in [header, *body]:
        cells = [c.rjust(w) if i >= right_from else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"
