"""The labelled scenario examples (routing/data/*.jsonl) and how each becomes the classifier's input."""

from __future__ import annotations

import json
from pathlib import Path

from tokenmill.routing.request_text import RequestText, request_text

DATA = Path(__file__).with_name("data")
TRAINING = DATA / "scenarios.jsonl"
HELDOUT = DATA / "scenarios_heldout.jsonl"  # never used for training or tuning


def load_examples(path: Path) -> list[dict]:
    """{"text" | "system" + "turns", "label", "lang", "hard", "note"} per line (see data/PROVENANCE.md)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def example_request(example: dict) -> RequestText:
    """An example as a live request would reach the classifier: turns alternate user, assistant, user, ..."""
    if "turns" in example:
        messages = [{"role": "system", "content": example["system"]}] if example.get("system") else []
        messages += [{"role": "user" if i % 2 == 0 else "assistant", "content": turn}
                     for i, turn in enumerate(example["turns"])]
        return request_text(messages)
    return request_text([{"role": "user", "content": example["text"]}])
