"""Lexicon quality: recall on written evasions of shipped terms, false positives on benign near-misses.

    .venv/bin/python scripts/eval_lexicon.py --set heldout12  # held-out v12: the last measured (once, then seen)
    .venv/bin/python scripts/eval_lexicon.py --set heldout11  # held-out v11: measured once, then seen
    .venv/bin/python scripts/eval_lexicon.py --set heldout10  # held-out v10: measured once, then seen
    .venv/bin/python scripts/eval_lexicon.py --set heldout8  # held-out v8: measured once, then seen
    .venv/bin/python scripts/eval_lexicon.py --set heldout9  # held-out v9: measured once, then seen
    .venv/bin/python scripts/eval_lexicon.py --set heldout7  # held-out v7: seen (one fix from it)
    .venv/bin/python scripts/eval_lexicon.py --set heldout6  # held-out v6: seen (one class of fix from it)
    .venv/bin/python scripts/eval_lexicon.py --set heldout5  # held-out v5: seen (six allow-words from it)
    .venv/bin/python scripts/eval_lexicon.py --set heldout4  # held-out v4: seen (its failures chose fixes)
    .venv/bin/python scripts/eval_lexicon.py --set heldout3  # held-out v3: seen (its failures chose fixes)
    .venv/bin/python scripts/eval_lexicon.py --set heldout2  # held-out v2: seen twice since
    .venv/bin/python scripts/eval_lexicon.py --set heldout   # held-out v1: seen since (its failures chose fixes)
    .venv/bin/python scripts/eval_lexicon.py --set tuning    # the sets used while tuning
    .venv/bin/python scripts/eval_lexicon.py --json --show-failures

Data: tests/moderation/data/{evasions,benign}_{tuning,heldout,heldout2,...,heldout12}.tsv (see PROVENANCE.md there).
An evasion case counts as found when a lexicon of every shipped list (default and strict) reports a
match of its term; a benign case is a false positive when it reports any match at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tokenmill.moderation.lexicon import Lexicon, default_allow, default_lists, strict_lists

DATA = Path(__file__).resolve().parents[1] / "tests" / "moderation" / "data"
PLACEHOLDERS = {"{ZWSP}": "\u200b", "{ZWNJ}": "\u200c", "{ZWJ}": "\u200d", "{WJ}": "\u2060", "{SHY}": "\u00ad",
                "{BOM}": "\ufeff", "{NBSP}": "\u00a0"}


@dataclass(frozen=True, slots=True)
class Case:
    kind: str
    term: str  # the term it hides (evasions) or comes near (benign)
    text: str
    line: int


def load(path: Path) -> list[Case]:
    """Rows 'kind<TAB>term<TAB>text'; '#' lines are comments; placeholders stand for invisible characters."""
    cases = []
    for number, row in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not row.strip() or row.startswith("#"):
            continue
        parts = row.split("\t")
        if len(parts) != 3:
            raise ValueError(f"{path}:{number}: expected kind<TAB>term<TAB>text, got {row!r}")
        kind, term, text = parts
        for name, char in PLACEHOLDERS.items():
            text = text.replace(name, char)
        cases.append(Case(kind, term, text, number))
    return cases


def evaluate(lexicon: Lexicon, evasions: list[Case], benign: list[Case]) -> dict:
    missed = [c for c in evasions if not any(m.term == c.term for m in lexicon.find(c.text))]
    flagged = [(c, lexicon.find(c.text)) for c in benign]
    flagged = [(c, ms) for c, ms in flagged if ms]
    by_kind = Counter(c.kind for c in evasions)
    missed_kind = Counter(c.kind for c in missed)
    return {
        "evasions": len(evasions),
        "recall": round(1 - len(missed) / max(len(evasions), 1), 4),
        "recall_by_kind": {k: round(1 - missed_kind[k] / n, 3) for k, n in sorted(by_kind.items())},
        "benign": len(benign),
        "false_positive_rate": round(len(flagged) / max(len(benign), 1), 4),
        "missed": [{"line": c.line, "kind": c.kind, "term": c.term, "text": c.text} for c in missed],
        "false_positives": [{"line": c.line, "kind": c.kind, "text": c.text,
                             "found": [(m.term, c.text[m.start:m.end]) for m in ms]} for c, ms in flagged],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sets = [f"heldout{v}" for v in range(13, 1, -1)] + ["heldout", "tuning"]
    parser.add_argument("--set", choices=sets, default=sets[0],
                        help="heldout12: the last set measured; heldout11 ... heldout: v11 to v1; none is clean any "
                             "more (PROVENANCE.md); tuning")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args(argv)
    evasions = load(DATA / f"evasions_{args.set}.tsv")
    benign = load(DATA / f"benign_{args.set}.tsv")
    # the matcher over every shipped term, the opt-in strict lists ("kill", "ass") included
    lexicon = Lexicon([*default_lists(), *strict_lists()], default_allow())
    report = {"set": args.set, **evaluate(lexicon, evasions, benign)}
    if not args.show_failures:
        report.pop("missed")
        report.pop("false_positives")
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"{args.set}: recall {report['recall']:.1%} on {report['evasions']} evasions; "
          f"false positives {report['false_positive_rate']:.1%} of {report['benign']} benign near-misses")
    for kind, recall in report["recall_by_kind"].items():
        print(f"  {kind:14s} recall {recall:.1%}")
    if args.show_failures:
        for m in report["missed"]:
            print(f"  missed  line {m['line']:4d} {m['kind']:13s} {m['term']!r}: {m['text']!r}")
        for f in report["false_positives"]:
            print(f"  false + line {f['line']:4d} {f['kind']:13s} {f['text']!r} -> {f['found']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
