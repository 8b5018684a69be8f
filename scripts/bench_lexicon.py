"""Lexicon matching speed: million characters a second of Lexicon.find on one thread.

    taskset -c 0 .venv/bin/python scripts/bench_lexicon.py [--terms 10000] [--mb 4] [--repeat 5] [--json]

The lexicon is the shipped global lists plus generated terms up to --terms (half English-like
words and phrases, half Chinese strings). The text is several MB of mixed Chinese and English built
from the repository's own routing data (src/tokenmill/routing/data/*.jsonl: requests written in
English and Chinese), shuffled by line with a fixed seed: no network. It is timed twice: as it is ("clean", matches only where the corpus has
them), and with a shipped term or an evasion of one inserted about every 2,000 characters
("with matches"). Each case runs as one find() over the whole text and as find() over 4 KB pieces
(the size of a typical response), --repeat times; the best and the median rate are reported, by
CPU time of the timing thread (what one core does, fair on a shared machine) and by wall time.
Most 4 KB pieces of clean text are settled by the quick loose check (normalize.loose_skeleton); pieces
with a term in them, or near-misses of one, take the exact readings.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from tokenmill.moderation.lexicon import Lexicon, TermList, default_allow, default_lists
from tokenmill.moderation.normalize import tables

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261201
INSERTS = ["c0caine", "k i l l", "毒 品", "買冰毒", "ｈｅｒｏｉｎ", "f.u.c.k", "as shole", "假 钞", "a$$hole",
           "crystal meth", "кill", "摇头丸", "counterfeit", "洗-钱"]


def corpus_lines() -> list[str]:
    lines = []
    for path in sorted((ROOT / "src/tokenmill/routing/data").glob("*.jsonl")):
        for row in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(row)
            lines += [item.get("system", ""), item.get("text", ""), *item.get("turns", [])]
    return [line for line in lines if line.strip()]


def build_text(mb: float, rng: random.Random) -> str:
    lines = corpus_lines()
    out, size = [], 0
    while size < mb * 1_000_000:
        line = rng.choice(lines)
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def with_matches(text: str, every: int, rng: random.Random) -> tuple[str, int]:
    parts, pos, count = [], 0, 0
    while pos < len(text):
        step = rng.randint(every // 2, every * 3 // 2)
        parts.append(text[pos:pos + step])
        parts.append(" " + rng.choice(INSERTS) + " ")
        pos += step
        count += 1
    return "".join(parts), count


def generated_terms(count: int, rng: random.Random) -> list[str]:
    syllables = ["ka", "zor", "vex", "mul", "tri", "qua", "nok", "fep", "dra", "gul", "sny", "plo", "wix", "jub",
                 "rhe", "tok", "bla", "vin", "cro", "zef", "hum", "lop", "ret", "xan"]
    hanzi = [chr(c) for c in range(0x4E00, 0x9FA6)]
    terms: set[str] = set()
    while len(terms) < count:
        if len(terms) % 2:
            word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
            if rng.random() < 0.2:
                word += " " + "".join(rng.choice(syllables) for _ in range(2))
            terms.add(word)
        else:
            terms.add("".join(rng.choice(hanzi) for _ in range(rng.randint(2, 4))))
    return sorted(terms)


def timed(lexicon: Lexicon, text: str, piece: int | None, repeat: int) -> tuple[list[float], list[float], int]:
    """Rates in M chars/s by CPU time of this thread and by wall time (they differ on a busy machine)."""
    pieces = [text] if piece is None else [text[i:i + piece] for i in range(0, len(text), piece)]
    cpu, wall, found = [], [], 0
    for _ in range(repeat):
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        found = sum(len(lexicon.find(p)) for p in pieces)
        cpu.append(len(text) / (time.thread_time() - start_cpu) / 1e6)
        wall.append(len(text) / (time.perf_counter() - start_wall) / 1e6)
    return cpu, wall, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terms", type=int, default=10_000)
    parser.add_argument("--mb", type=float, default=4.0, help="millions of characters of text")
    parser.add_argument("--every", type=int, default=2000, help="characters between inserted matches")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(SEED)
    start = time.perf_counter()
    tables()  # the per-process character tables
    tables_s = time.perf_counter() - start

    shipped = default_lists()
    extra = args.terms - sum(len(tl.terms) for tl in shipped)
    lists = shipped + [TermList("generated", tuple(generated_terms(max(extra, 0), rng)))]
    start = time.perf_counter()
    lexicon = Lexicon(lists, default_allow())
    build_s = time.perf_counter() - start

    clean = build_text(args.mb, rng)
    dirty, inserted = with_matches(clean, args.every, rng)
    cjk = sum(1 for c in clean if "\u4e00" <= c <= "\u9fff") / len(clean)
    lexicon.find(clean[:10_000])  # warm up
    report = {"terms": lexicon.term_count, "tables_s": round(tables_s, 3), "build_s": round(build_s, 3),
              "chars": len(clean), "cjk_fraction": round(cjk, 3), "inserted": inserted, "cases": []}
    for name, text in (("clean", clean), ("with matches", dirty)):
        for piece in (None, 4096):
            cpu, wall, found = timed(lexicon, text, piece, args.repeat)
            report["cases"].append({"text": name, "call": "whole text" if piece is None else f"{piece}-char pieces",
                                    "matches": found,
                                    "cpu_mchars_s_best": round(max(cpu), 1),
                                    "cpu_mchars_s_median": round(statistics.median(cpu), 1),
                                    "wall_mchars_s_best": round(max(wall), 1),
                                    "wall_mchars_s_median": round(statistics.median(wall), 1)})
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"lexicon: {report['terms']} terms, built in {build_s:.3f} s (character tables {tables_s:.3f} s, once "
          f"per process); text: {len(clean):,} chars, {cjk:.0%} Chinese; {inserted} matches inserted")
    for case in report["cases"]:
        print(f"  {case['text']:13s} {case['call']:18s} {case['matches']:6d} matches   M chars/s by CPU time: "
              f"best {case['cpu_mchars_s_best']:5.1f} median {case['cpu_mchars_s_median']:5.1f};  by wall time: "
              f"best {case['wall_mchars_s_best']:5.1f} median {case['wall_mchars_s_median']:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
