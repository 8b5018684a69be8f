"""The parts of a request the scenario classifier reads: the last user turn, and the context around it.

The last user turn decides the scenario ("thanks, bye" ends a coding session as chat), so it is
embedded on its own; the turn before it and the system prompt are embedded apart as context, to
break ties. Measured on the training set (5-fold): 96.2% accuracy this way, 94.1% with everything
in one text. Long inputs are cut: the head of a pasted file says what it is, and embedding cost
grows with length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LAST_TURN_CHARS = 1200
CONTEXT_CHARS = 600


@dataclass(frozen=True, slots=True)
class RequestText:
    last: str  # the last user turn (or the completion prompt)
    context: str = ""  # the user turn before it and the system prompt; "" when there are none


def request_text(messages: Sequence[dict] | None = None, prompt: str | None = None) -> RequestText:
    """What to classify, from chat messages ({"role", "content"}) or a completion prompt."""
    if messages is None:
        return RequestText((prompt or "")[:LAST_TURN_CHARS])
    users = [_content(m) for m in messages if m.get("role") == "user"]
    last = users[-1] if users else _content(messages[-1]) if messages else ""
    system = next((_content(m) for m in messages if m.get("role") in ("system", "developer")), "")
    context = "\n".join(part for part in (users[-2] if len(users) > 1 else "", system) if part)
    return RequestText(last[:LAST_TURN_CHARS], context[:CONTEXT_CHARS])


def _content(message: dict) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)
