"""`tokenmill bench`: closed-loop load against any OpenAI-compatible server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from tokenmill.bench.closed_loop import report_dict, run_closed_loop


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure a running OpenAI-compatible server")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    p.add_argument("--model", required=True)
    p.add_argument("--concurrency", default="1", help="comma-separated list, e.g. 1,16,64")
    p.add_argument("--num-requests", type=int, default=0, help="per concurrency (default: 2 x concurrency, at least 4)")
    p.add_argument("--input-tokens", type=int, default=100, help="prompt length, as token ids")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--api-key", default=None)
    p.add_argument("--json", default=None, help="write every figure and the configuration to this file")
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    levels = [int(c) for c in args.concurrency.split(",")]
    # token ids of ordinary words, so every server sees exactly input-tokens prompt tokens
    prompt = [(1000 + 37 * i) % 40000 + 200 for i in range(args.input_tokens)]
    reports = []
    for c in levels:
        n = args.num_requests or max(4, 2 * c)
        r = asyncio.run(run_closed_loop(args.base_url, args.model, c, n, prompt, args.max_tokens, args.api_key))
        reports.append(report_dict(r))
        print(f"concurrency {c:>3}: {r.output_tok_per_s:8.1f} out tok/s  TTFT p50 {r.ttft_p50_ms:8.1f} ms "
              f"p99 {r.ttft_p99_ms:8.1f} ms  TPOT p50 {r.tpot_p50_ms:7.1f} ms  requests {r.num_requests} errors {r.errors}",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": reports, "argv": sys.argv}, f, indent=2)
    return 0
