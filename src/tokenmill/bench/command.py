"""`tokenmill bench`: measure any OpenAI-compatible server, or compare two results."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import platform
import sys
from dataclasses import asdict

from tokenmill.bench.client import Target
from tokenmill.bench.metrics import SLO, summarize
from tokenmill.bench.report import compare, run_entry, summary_lines, write_json
from tokenmill.bench.runner import Load, run_load
from tokenmill.bench.workloads import WORKLOADS, PromptMaker, WorkloadConfig, build_requests


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure a running OpenAI-compatible server (or --compare two results)",
                       description="Closed-loop (--concurrency) or open-loop (--request-rate) load against any "
                                   "OpenAI-compatible server; metrics as `vllm bench serve` defines them.")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    p.add_argument("--model", help="model name to send in requests")
    p.add_argument("--api-key", default=None)
    p.add_argument("--name", default="", help="label of this server in --compare tables (default: the file name)")
    load = p.add_argument_group("load (a sweep: comma-separated values)")
    load.add_argument("--concurrency", default=None, help="closed loop: requests kept in flight, e.g. 1,16,64")
    load.add_argument("--request-rate", default=None, help="open loop: requests per second, e.g. 1,4,inf")
    load.add_argument("--burstiness", type=float, default=1.0, help="gamma shape of arrival gaps (1 = Poisson)")
    load.add_argument("--max-concurrency", type=int, default=None, help="open loop: cap on requests in flight")
    load.add_argument("--num-requests", type=int, default=0,
                      help="per load level (default: closed loop 2 x concurrency, at least 8; open loop 100)")
    work = p.add_argument_group("workload")
    work.add_argument("--workload", choices=WORKLOADS, default="random")
    work.add_argument("--input-tokens", type=int, default=100, help="prompt length (suffix length for shared-prefix)")
    work.add_argument("--max-tokens", "--output-tokens", dest="output_tokens", type=int, default=128)
    work.add_argument("--range-ratio", type=float, default=0.0, help="lengths uniform in n * [1 - r, 1 + r]")
    work.add_argument("--num-prefixes", type=int, default=4, help="shared-prefix: distinct shared prompts")
    work.add_argument("--prefix-tokens", type=int, default=512, help="shared-prefix: length of each shared prompt")
    work.add_argument("--scale-to-context", type=int, default=0, help="usecases: shrink prompts to fit this context")
    work.add_argument("--tokenizer", default=None,
                      help="model name or path whose tokenizer makes lengths exact (default: --model if tokenmill "
                           "knows it; 'none' for approximate lengths)")
    work.add_argument("--no-ignore-eos", action="store_true", help="let requests stop at end of sequence")
    work.add_argument("--seed", type=int, default=0)
    p.add_argument("--slo", default=None, help="goodput targets, e.g. ttft=500,tpot=50 (milliseconds)")
    p.add_argument("--request-timeout", type=float, default=600.0, help="seconds for a whole request")
    p.add_argument("--stall-timeout", type=float, default=60.0, help="seconds without a byte before a request fails")
    p.add_argument("--json", default=None, help="write every figure and the full configuration to this file")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="print two results side by side")
    p.add_argument("--markdown", action="store_true", help="with --compare: a markdown table")
    p.set_defaults(handler=_bench)


def _loads(args: argparse.Namespace) -> list[Load]:
    if args.concurrency and args.request_rate:
        raise ValueError("give --concurrency (closed loop) or --request-rate (open loop), not both")
    try:
        if args.request_rate:
            return [Load(request_rate=float(r), burstiness=args.burstiness, max_concurrency=args.max_concurrency)
                    for r in args.request_rate.split(",")]
        return [Load(concurrency=int(c)) for c in (args.concurrency or "1").split(",")]
    except ValueError:
        raise ValueError("--concurrency takes integers and --request-rate numbers or inf, separated by commas") from None


def _prompt_maker(args: argparse.Namespace) -> tuple[PromptMaker, str]:
    name = args.tokenizer or args.model
    if not name or name == "none":
        return PromptMaker(), "none (approximate lengths)"
    from tokenmill.engine.tokenizer import load_tokenizer
    from tokenmill.modelstore.store import ModelStoreError, resolve_model

    try:
        path = resolve_model(name, pull_missing=False).path
    except ModelStoreError as exc:
        if args.tokenizer:
            raise ValueError(f"--tokenizer: {exc}") from None
        print(f"bench: no tokenizer for {name!r}, prompt lengths are approximate (pass --tokenizer)", file=sys.stderr)
        return PromptMaker(), "none (approximate lengths)"
    tok = load_tokenizer(path)
    return PromptMaker(lambda text: tok.encode(text, add_special_tokens=False), tok.decode), str(path)


def _bench(args: argparse.Namespace) -> int:
    if args.compare:
        print(compare(*args.compare, markdown=args.markdown))
        return 0
    if not args.model:
        print("bench: --model is required (the name the server serves)", file=sys.stderr)
        return 2
    try:
        loads = _loads(args)
        slo = SLO.parse(args.slo) if args.slo else None
        maker, tokenizer = _prompt_maker(args)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    target = Target(args.base_url, args.model, args.api_key, ignore_eos=not args.no_ignore_eos,
                    request_timeout_s=args.request_timeout, stall_timeout_s=args.stall_timeout)
    runs = []
    for level, load in enumerate(loads):
        count = args.num_requests or (max(8, 2 * load.concurrency) if load.concurrency else 100)
        workload = WorkloadConfig(args.workload, count, args.input_tokens, args.output_tokens, args.range_ratio,
                                  args.num_prefixes, args.prefix_tokens, args.scale_to_context, args.seed + level)
        requests = build_requests(workload, maker)
        records, duration = asyncio.run(run_load(target, requests, load, not args.no_progress, args.seed + level))
        summary = summarize(records, duration, slo)
        print("\n".join(summary_lines(load.label, summary)), flush=True)
        runs.append(run_entry(load.label, load, summary) | {"workload": asdict(workload)})
    if args.json:
        config = {"name": args.name, "target": {k: v for k, v in asdict(target).items() if k != "api_key"},
                  "tokenizer": tokenizer, "slo": asdict(slo) if slo else None, "argv": sys.argv,
                  "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                  "client_machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip()}
        write_json(args.json, config, runs)
    failed = sum(run["summary"]["failed"] for run in runs)
    return 1 if failed and failed == sum(run["summary"]["failed"] + run["summary"]["completed"] for run in runs) else 0

