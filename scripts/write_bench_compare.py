"""Write the tokenmill vs llama-server tables (from scripts/bench_compare.sh's JSON files) into BENCHMARKS.md.

Usage: python scripts/write_bench_compare.py OUT_DIR   (replaces the text between the bench-compare markers)
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
from pathlib import Path

from tokenmill.bench.report import compare


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    isa = ", ".join(f for f in ("avx2", "avx512f", "amx_bf16") if f" {f} " in flags + " ")
    return f"{os.cpu_count()} cores ({cpu}; {isa})"


def main(out: Path) -> None:
    date = json.loads((out / "tokenmill-random.json").read_text())["config"]["date"][:10]
    body = "\n".join([
        "<!-- bench-compare:start -->",
        f"Made by `make bench-compare` (scripts/bench_compare.sh) on {date}, {machine()}. Each server ran alone "
        "with 2 threads; llama-server with 64 slots of 2,304 tokens and continuous batching, on the same GGUF file. "
        "Ratio = tokenmill / llama-server (above 1 is better for throughput, below 1 for latency).",
        "", "Random prompts (unique per request, exact lengths in the model's tokenizer), 100 tokens in, 128 out, "
        "ignore_eos, closed loop, 8 requests at concurrency 1 and 2 x concurrency otherwise:", "",
        compare(out / "tokenmill-random.json", out / "llama-server-random.json", markdown=True),
        "", "`usecases` (interest evaluation, sentiment analysis and greeting generation in equal shares, input "
        "lengths scaled by 0.296 to fit a 2,048-token context), 8 concurrent streams, 24 requests:", "",
        compare(out / "tokenmill-usecases.json", out / "llama-server-usecases.json", markdown=True),
        "<!-- bench-compare:end -->",
    ])
    path = Path("BENCHMARKS.md")
    text = path.read_text()
    pattern = re.compile(r"<!-- bench-compare:start -->.*<!-- bench-compare:end -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text)
    else:
        text = text.rstrip() + "\n\n## tokenmill vs llama-server (issue 3)\n\n" + body + "\n"
    path.write_text(text)
    print(body)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "bench-compare"))
