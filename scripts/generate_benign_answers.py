"""Harmless model answers for the moderation classifier (issue 6): the answers a served model gives to the
routing sets' ordinary requests, so the classifier learns what benign output looks like and the output
check stops cutting plain answers. Labels are empty by construction (the prompts are harmless requests
written for the router); an answer in which the shipped term lists, the opt-in strict ones included,
find a term is left out rather than called harmless (moderation/data/MODERATION_PROVENANCE.md).

Starts one tokenmill server (SmolLM2-135M-Instruct, w8a8) and asks it, 32 at a time, for a greedy answer of
at most --max-tokens tokens to every request of each routing file; writes JSON lines
{"text", "labels": [], "lang", "kind": "benign_answer", "source": "FILE#LINE"}.

Usage: .venv/bin/python scripts/generate_benign_answers.py OUT.jsonl [--routing-file NAME ...] [--max-tokens 160]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tokenmill.moderation.lexicon import Lexicon, default_allow, default_lists, strict_lists

ROOT = Path(__file__).resolve().parent.parent
ROUTING = ROOT / "src/tokenmill/routing/data"
MODEL = "smollm2-135m-instruct"
PORT = 8771


def messages(item: dict) -> list[dict]:
    """The routing record as chat messages: its system prompt, then turns alternating user / assistant."""
    out = [{"role": "system", "content": item["system"]}] if item.get("system") else []
    turns = item.get("turns") or [item["text"]]
    out += [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    return out


async def answer(client: httpx.AsyncClient, gate: asyncio.Semaphore, item: dict, max_tokens: int) -> str:
    async with gate:
        body = {"model": MODEL, "messages": messages(item), "max_tokens": max_tokens, "temperature": 0}
        response = await client.post(f"http://127.0.0.1:{PORT}/v1/chat/completions", json=body, timeout=600)
        response.raise_for_status()
        return response.json()["choices"][0]["message"]["content"].strip()


async def generate(items: list[tuple[str, int, dict]], max_tokens: int) -> list[str]:
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient() as client:
        return await asyncio.gather(*(answer(client, gate, item, max_tokens) for _, _, item in items))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--routing-file", action="append", default=None,
                        help="routing data file(s) under routing/data (default: scenarios.jsonl)")
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    items = []
    for name in args.routing_file or ["scenarios.jsonl"]:
        lines = (ROUTING / name).read_text(encoding="utf-8").splitlines()
        items += [(name, n, json.loads(line)) for n, line in enumerate(lines, 1) if line.strip()]
    with tempfile.TemporaryDirectory() as folder:
        log = open(Path(folder) / "server.log", "wb")
        server = subprocess.Popen([sys.executable, "-m", "tokenmill.cli", "serve", "--model", MODEL, "--quantization",
                                   "w8a8", "--port", str(PORT), "--no-ledger", "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL, stderr=log)
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise SystemExit(f"the server exited: {(Path(folder) / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
            started = time.time()
            texts = asyncio.run(generate(items, args.max_tokens))
        finally:
            server.terminate()
            server.wait(timeout=60)
    lexicon = Lexicon([*default_lists(), *strict_lists()], default_allow())
    left_out = 0
    with args.out.open("w", encoding="utf-8") as out:
        for (name, line, item), text in zip(items, texts):
            if text and lexicon.find(text):
                left_out += 1
            elif text:
                record = {"text": text, "labels": [], "lang": item["lang"], "kind": "benign_answer",
                          "source": f"{name}#{line}"}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {sum(1 for t in texts if t) - left_out} answers to {args.out} in {time.time() - started:.0f} s; "
          f"left out {left_out} in which a listed term was found", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
