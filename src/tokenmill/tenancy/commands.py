"""`tokenmill tenants create | list` and `tokenmill keys create | list | revoke`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from tokenmill.metering.pricing import parse_amount, to_currency
from tokenmill.tenancy.records import Limits
from tokenmill.tenancy.store import TenancyError, TenancyStore

_DURATION = re.compile(r"(\d+)([dhm])")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000}


def add_tenancy_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the `tenants` and `keys` subcommands."""
    tenants = subparsers.add_parser("tenants", help="create and list tenants")
    sub = tenants.add_subparsers(dest="tenants_command", required=True)
    p = sub.add_parser("create", help="add a tenant, optionally with limits")
    p.add_argument("name", help="letters, digits, '.', '_' or '-'")
    _limit_options(p)
    _model_limit_option(p)
    p.add_argument("--route-floor", type=float, default=None, metavar="SCORE",
                   help='quality (0..1) a model needs for the scenario when this tenant asks for model "auto" '
                        "(default: the server's, 0.5)")
    _database_option(p)
    p.set_defaults(handler=_run(_create_tenant))
    p = sub.add_parser("list", help="show the tenants and their limits")
    p.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    _database_option(p)
    p.set_defaults(handler=_run(_list_tenants))

    keys = subparsers.add_parser("keys", help="create, list and revoke API keys")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    p = sub.add_parser("create", help="make a key for a tenant; its secret is shown once")
    p.add_argument("--tenant", required=True, help="tenant name or id")
    p.add_argument("--name", default="", help="a label for the key")
    _limit_options(p)
    p.add_argument("--expires-in", metavar="DURATION", help="expire after this long: 30d, 12h or 90m")
    _model_limit_option(p)
    _database_option(p)
    p.set_defaults(handler=_run(_create_key))
    p = sub.add_parser("list", help="show keys (never their secrets)")
    p.add_argument("--tenant", help="only this tenant's keys (name or id)")
    p.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    _database_option(p)
    p.set_defaults(handler=_run(_list_keys))
    p = sub.add_parser("revoke", help="stop a key working, at once")
    p.add_argument("id", help="the key's id (key_...), from `tokenmill keys list`")
    _database_option(p)
    p.set_defaults(handler=_run(_revoke_key))


def _limit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpm", type=int, help="requests per minute")
    p.add_argument("--tpm", type=int, help="tokens per minute (prompt + completion)")
    p.add_argument("--budget", metavar="AMOUNT", help="spending limit in currency units, e.g. 50 or 12.5")


def _model_limit_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-limit", action="append", default=[], metavar="MODEL:rpm=N,tpm=N",
                   help="limits for one model (repeatable)")


def _database_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database", metavar="URL", help="database URL (default: SQLite in TOKENMILL_HOME)")


def _run(command: Callable[[TenancyStore, argparse.Namespace], None]) -> Callable[[argparse.Namespace], int]:
    """A handler that opens the store, runs command, and turns a user's mistake into one line and exit code 2."""

    def handler(args: argparse.Namespace) -> int:
        from tokenmill.db.engine import DatabaseError, open_database

        try:
            engine = open_database(args.database)
            try:
                command(TenancyStore(engine), args)
            finally:
                engine.dispose()
        except (TenancyError, DatabaseError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    return handler


def _create_tenant(store: TenancyStore, args: argparse.Namespace) -> None:
    model_limits = dict(parse_model_limit(text) for text in args.model_limit)
    tenant = store.create_tenant(args.name, _limits(args), model_limits, args.route_floor)
    print(f"created tenant {tenant.name} ({tenant.id}); limits: {_limits_text(tenant.limits, tenant.model_limits)}")


def _list_tenants(store: TenancyStore, args: argparse.Namespace) -> None:
    tenants = store.list_tenants()
    if args.json:
        from tokenmill.tenancy.admin import tenant_view  # the admin API's JSON shape

        print(json.dumps([tenant_view(t) for t in tenants], indent=2))
        return
    _table(("ID", "NAME", "CREATED", "DISABLED", "LIMITS"),
           [(t.id, t.name, _time(t.created_at), "yes" if t.disabled else "no", _limits_text(t.limits, t.model_limits))
            for t in tenants])


def _create_key(store: TenancyStore, args: argparse.Namespace) -> None:
    expires_at = None
    if args.expires_in:
        expires_at = store.clock() + parse_duration_ms(args.expires_in)
    model_limits = dict(parse_model_limit(text) for text in args.model_limit)
    key, secret = store.create_key(args.tenant, args.name, _limits(args), model_limits, expires_at)
    print(f"created key {key.id} for tenant {args.tenant}; expires: {_time(key.expires_at)}; "
          f"limits: {_limits_text(key.limits, key.model_limits)}")
    print(f"secret: {secret}")
    print("This secret is shown only now and cannot be shown again: store it safely.", file=sys.stderr)


def _list_keys(store: TenancyStore, args: argparse.Namespace) -> None:
    keys = store.list_keys(args.tenant)
    names = {t.id: t.name for t in store.list_tenants()}
    if args.json:
        from tokenmill.tenancy.admin import key_view  # the admin API's JSON shape

        print(json.dumps([key_view(k, names.get(k.tenant_id, "")) for k in keys], indent=2))
        return
    _table(("ID", "TENANT", "NAME", "PREFIX", "CREATED", "EXPIRES", "REVOKED", "LIMITS"),
           [(k.id, names.get(k.tenant_id, k.tenant_id), k.name or "-", k.prefix + "...", _time(k.created_at),
             _time(k.expires_at), _time(k.revoked_at), _limits_text(k.limits, k.model_limits)) for k in keys])


def _revoke_key(store: TenancyStore, args: argparse.Namespace) -> None:
    key = store.revoke_key(args.id)
    print(f"revoked key {key.id} ({key.prefix}...) at {_time(key.revoked_at)}")


def parse_duration_ms(text: str) -> int:
    """Milliseconds in a duration such as "30d", "12h" or "90m"."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"--expires-in {text!r} is not a duration: write a whole number and d, h or m, like 30d, "
                         "12h or 90m")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_model_limit(text: str) -> tuple[str, Limits]:
    """("MODEL", Limits) from "MODEL:rpm=N,tpm=N" (the model name may itself contain ':')."""
    model, sep, spec = text.rpartition(":")
    values: dict[str, int] = {}
    for part in spec.split(",") if sep and model else ["?"]:
        name, eq, number = part.partition("=")
        if not eq or name.strip() not in ("rpm", "tpm") or not number.strip().isdigit():
            raise ValueError(f"--model-limit {text!r} is not MODEL:rpm=N,tpm=N (either or both), "
                             "e.g. llama-3.2-1b:rpm=60,tpm=20000")
        values[name.strip()] = int(number)
    return model, Limits(**values)


def _limits(args: argparse.Namespace) -> Limits:
    budget = parse_amount(args.budget, what="--budget") if args.budget is not None else None
    return Limits(rpm=args.rpm, tpm=args.tpm, budget_micros=budget)


def _limits_text(limits: Limits, model_limits: Mapping[str, Limits]) -> str:
    parts = []
    if limits.rpm is not None:
        parts.append(f"rpm={limits.rpm}")
    if limits.tpm is not None:
        parts.append(f"tpm={limits.tpm}")
    if limits.budget_micros is not None:
        parts.append(f"budget={to_currency(limits.budget_micros)}")
    for model, lim in model_limits.items():
        inner = ",".join(f"{k}={v}" for k, v in (("rpm", lim.rpm), ("tpm", lim.tpm)) if v is not None)
        parts.append(f"{model}:{inner}")
    return " ".join(parts) or "none"


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%MZ")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip())
    if not rows:
        print("(none)")
