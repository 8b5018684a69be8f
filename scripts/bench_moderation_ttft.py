"""What moderation adds to time to first token (issue 6): two servers on the same model, one with
`--moderation` (shipped term lists + classifier) and one without, asked the same streamed chat requests
in turn (A, B, B, A, ...), one request at a time, so both see the same machine. Prompts: the routing
held-out set's requests (English and Chinese, harmless), max_tokens 8.

Usage: .venv/bin/python scripts/bench_moderation_ttft.py [--pairs 200] [--json FILE] [--moderation FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "src/tokenmill/routing/data/scenarios_heldout.jsonl"
MODEL = "smollm2-135m-instruct"


def start(port: int, folder: Path, *flags: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tokenmill.cli", "serve", "--model", MODEL, "--port", str(port), "--log-level",
           "warning", "--database", f"sqlite:///{folder}/{port}.db", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(folder / f"{port}.log", "wb"))
    for _ in range(720):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited: {(folder / f'{port}.log').read_text()[-2000:]}")
        time.sleep(0.25)
    raise SystemExit(f"server on {port} did not start")


def ttft_ms(port: int, prompt: str) -> tuple[float | None, str]:
    """(TTFT in ms, finish reason); (None, error code) for a refused prompt."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8, "temperature": 0,
            "stream": True}
    started = time.perf_counter()
    first = None
    finish = ""
    with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60) as r:
        if r.status_code == 400:
            r.read()
            return None, r.json()["error"]["code"]
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            choice = (chunk.get("choices") or [{}])[0]
            if first is None and choice.get("delta", {}).get("content"):
                first = time.perf_counter()
            finish = choice.get("finish_reason") or finish
    return ((first or time.perf_counter()) - started) * 1000.0, finish


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--json", default=None)
    parser.add_argument("--moderation", default=None, metavar="FILE",
                        help="the moderated server's moderation config (default: the shipped lists and classifier)")
    args = parser.parse_args()
    items = [json.loads(line) for line in PROMPTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    prompts = [item.get("text") or item["turns"][-1] for item in items]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        servers = {"off": (8151, start(8151, folder, "--threads", "1")),
                   "on": (8152, start(8152, folder, "--threads", "1", "--moderation",
                                      *([args.moderation] if args.moderation else [])))}
        try:
            times: dict[str, list[float]] = {"off": [], "on": []}
            filtered, refused = 0, []
            for name in ("off", "on"):  # warm both up
                for prompt in prompts[:5]:
                    ttft_ms(servers[name][0], prompt)
            for i in range(args.pairs):
                prompt = prompts[i % len(prompts)]
                order = ("off", "on") if i % 2 == 0 else ("on", "off")
                pair = {}
                for name in order:
                    pair[name], finish = ttft_ms(servers[name][0], prompt)
                    filtered += finish == "content_filter"
                if pair["on"] is None:  # the moderated server refused it: no first token to time
                    refused.append(prompt)
                    continue
                for name in order:
                    times[name].append(pair[name])
        finally:
            for _, proc in servers.values():
                proc.terminate()
                proc.wait(30)
    diffs = [on - off for on, off in zip(times["on"], times["off"])]
    result = {name: {"median": statistics.median(v), "p90": percentile(v, 90), "p99": percentile(v, 99)}
              for name, v in times.items()}
    result["added_median_ms"] = result["on"]["median"] - result["off"]["median"]
    result["added_p99_ms"] = result["on"]["p99"] - result["off"]["p99"]
    result["paired_difference_median_ms"] = statistics.median(diffs)
    result["pairs"] = args.pairs
    result["content_filtered"] = filtered
    result["refused_prompts"] = refused
    result["cpu_count"] = os.cpu_count()
    for name in ("off", "on"):
        r = result[name]
        print(f"moderation {name:>3}: TTFT median {r['median']:.1f} ms, p90 {r['p90']:.1f} ms, p99 {r['p99']:.1f} ms")
    print(f"added by moderation: median {result['added_median_ms']:+.2f} ms, p99 {result['added_p99_ms']:+.2f} ms, "
          f"median of paired differences {result['paired_difference_median_ms']:+.2f} ms "
          f"({len(diffs)} pairs; {len(refused)} prompts refused, {filtered} answers cut by the filter)")
    for prompt in refused:
        print(f"  refused: {prompt[:100]!r}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
