"""`tokenmill models list | pull NAME`."""

from __future__ import annotations

import argparse
import sys

from tokenmill.modelstore.store import ModelStoreError, list_models, pull, store_root


def add_models_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` subcommand with `list` and `pull NAME`."""
    models = subparsers.add_parser("models", help="list and pull models in the local model store")
    sub = models.add_subparsers(dest="models_command", required=True)

    list_p = sub.add_parser("list", help="show the built-in model index and what is pulled")
    list_p.set_defaults(handler=_list)

    pull_p = sub.add_parser("pull", help="download a model from the index into the store")
    pull_p.add_argument("name", help="model name from `tokenmill models list`")
    pull_p.add_argument("--quiet", action="store_true", help="no progress output")
    pull_p.set_defaults(handler=_pull)


def _list(args: argparse.Namespace) -> int:
    rows = [
        (m.name, f"{m.size_bytes / 1e6:.1f}", "yes" if m.pulled else "no", m.licence, m.description)
        for m in list_models()
    ]
    header = ("NAME", "SIZE MB", "PULLED", "LICENCE", "DESCRIPTION")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.rjust(w) if i == 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join([*cells, row[-1]]))
    print(f"\nstore: {store_root() / 'models'}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    try:
        path = pull(args.name, progress=not args.quiet)
    except ModelStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
