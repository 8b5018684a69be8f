"""JSON lines in, JSON lines out: the stdin/stdout protocol of `tokenmill route` and `tokenmill moderate`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TextIO


def answer_lines(answer: Callable[[dict], dict], errors: tuple[type[Exception], ...] = (ValueError,),
                 stream: TextIO | None = None) -> None:
    """Write answer(object) as one JSON line for each JSON object line of stream (default stdin), and nothing
    else; blank lines are skipped, and a bad line gets {"error": "line N: ..."} while the rest go on."""
    for number, line in enumerate(stream or sys.stdin, 1):
        if not line.strip():
            continue
        try:
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object ({exc.msg})") from None
            if not isinstance(item, dict):
                raise ValueError("each line must be a JSON object")
            try:
                json.dumps(item, ensure_ascii=False).encode("utf-8")  # JSON may escape half a pair: "\\ud83d"
            except UnicodeEncodeError:
                raise ValueError("the line holds half of a surrogate pair (such as a lone \\ud83d): "
                                 "send valid Unicode") from None
            out = answer(item)
        except errors as exc:
            out = {"error": f"line {number}: {exc}"}
        print(json.dumps(out, ensure_ascii=False), flush=True)
