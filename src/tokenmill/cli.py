"""Command line: `tokenmill serve | models | bench | route | usage | tenants | keys`."""

from __future__ import annotations

import argparse
import sys


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenmill", description="A token factory: serve LLMs over an OpenAI-compatible API.")
    sub = parser.add_subparsers(dest="command", required=True)

    from tokenmill.modelstore.commands import add_models_parser

    add_models_parser(sub)

    from tokenmill.api.serve_command import add_serve_parser

    add_serve_parser(sub)

    from tokenmill.bench.command import add_bench_parser

    add_bench_parser(sub)

    from tokenmill.metering.commands import add_usage_parser

    add_usage_parser(sub)

    from tokenmill.tenancy.commands import add_tenancy_parsers

    add_tenancy_parsers(sub)

    from tokenmill.routing.command import add_route_parser

    add_route_parser(sub)

    from tokenmill.moderation.command import add_moderate_parser

    add_moderate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
