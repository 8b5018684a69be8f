"""The labelled scenario examples (routing/data/*.jsonl) and how each becomes the classifier's input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tokenmill.catalog.entry import SCENARIOS
from tokenmill.routing.request_text import RequestText, request_text

DATA = Path(__file__).with_name("data")
TRAINING = DATA / "scenarios.jsonl"
HELDOUT = DATA / "scenarios_heldout.jsonl"  # never used for training or tuning; measured twice (PROVENANCE.md)
HELDOUT2 = DATA / "scenarios_heldout2.jsonl"  # written after the training set grew; measured once


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


@dataclass(frozen=True, slots=True)
class LabelledRequest:
    request: RequestText
    label: str
    max_tokens: int | None = None  # as the line asks; None: the router's assumption
    lang: str = ""
    hard: bool = False


def read_labelled(path: Path) -> list[LabelledRequest]:
    """A JSONL file of requests with their true scenario: "prompt", "messages", "text" or "turns", and "label".

    Raises ValueError naming the first bad line."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(_labelled(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} line {number}: not a JSON object ({exc.msg})") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{path} line {number}: {exc}") from None
    if not out:
        raise ValueError(f"{path} has no requests: write one JSON object per line")
    return out


def _labelled(item: object) -> LabelledRequest:
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    if item.get("label") not in SCENARIOS:
        raise ValueError(f'"label" must be one of {", ".join(SCENARIOS)}, not {item.get("label")!r}')
    if "messages" in item:
        if not isinstance(item["messages"], list) or not all(isinstance(m, dict) for m in item["messages"]):
            raise ValueError('"messages" must be a list of {"role", "content"} objects')
        request = request_text(item["messages"])
    elif "turns" in item:
        if not isinstance(item["turns"], list) or not item["turns"]:
            raise ValueError('"turns" must be a non-empty list of strings')
        request = example_request(item)
    elif "prompt" in item or "text" in item:
        request = request_text(prompt=str(item["prompt"] if "prompt" in item else item["text"]))
    else:
        raise ValueError('each line needs "prompt", "messages", "text" or "turns"')
    max_tokens = item.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f'"max_tokens" must be a positive integer, not {max_tokens!r}')
    return LabelledRequest(request, item["label"], max_tokens, str(item.get("lang", "")), bool(item.get("hard")))
