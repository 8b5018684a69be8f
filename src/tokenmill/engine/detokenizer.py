"""Streaming token ids -> text for one sequence, with stop strings.

Each token maps to its raw bytes once (a table built with the tokenizer), so a push costs a bytes
join plus an incremental UTF-8 decode of only the new tokens: no re-decoding the whole sequence.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass

from tokenmill.engine.tokenizer import Tokenizer


@dataclass(slots=True)
class DetokenizerDelta:
    text: str  # new text, safe to send to the client
    stopped: bool = False
    stop_reason: str | None = None  # the stop string that matched


class IncrementalDetokenizer:
    """Turns one sequence's generated token ids into text as they arrive, and finds stop strings.

    Bytes of a character split across tokens are held until it is complete. Text that could be the
    start of a stop string is held until it either completes the stop string (never emitted) or
    cannot any more.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        prompt_ids: Sequence[int] = (),
        stop: Sequence[str] = (),
        skip_special_tokens: bool = True,
    ) -> None:
        self._id_to_bytes = tokenizer.id_to_bytes
        self._skip = tokenizer.special_token_ids if skip_special_tokens else frozenset()
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = sorted({s for s in stop if s})
        self._pending = ""  # decoded, held back because it may begin a stop string
        # With no prompt before it, a sentencepiece sequence's first space is dropped, as decode() does.
        self._strip_space = tokenizer.strips_leading_space and not prompt_ids
        self.stopped = False
        self.stop_reason: str | None = None

    def push(self, token_ids: Sequence[int]) -> DetokenizerDelta:
        """Take newly generated tokens; return the text that may be sent now."""
        if self.stopped:
            return DetokenizerDelta("", True, self.stop_reason)
        table, skip, size = self._id_to_bytes, self._skip, len(self._id_to_bytes)
        data = b"".join(table[i] for i in token_ids if i not in skip and 0 <= i < size)
        return self._feed(self._utf8.decode(data))

    def finish(self) -> str:
        """Flush at the end of the sequence: held-back text, and U+FFFD for a character left unfinished."""
        if self.stopped:
            return ""
        delta = self._feed(self._utf8.decode(b"", final=True), final=True)
        return delta.text

    def _feed(self, text: str, final: bool = False) -> DetokenizerDelta:
        if self._strip_space and text:
            self._strip_space = False
            text = text.removeprefix(" ")
        if not self._stops:
            return DetokenizerDelta(text)
        buf = self._pending + text
        match = self._first_stop(buf)
        if match is not None:
            start, stop = match
            self.stopped, self.stop_reason, self._pending = True, stop, ""
            return DetokenizerDelta(buf[:start], True, stop)
        keep = 0 if final else self._partial_stop_len(buf)
        self._pending = buf[len(buf) - keep:] if keep else ""
        return DetokenizerDelta(buf[: len(buf) - keep])

    def _first_stop(self, buf: str) -> tuple[int, str] | None:
        # The stop string that is complete first (smallest end) wins; among those ending at the
        # same place, the longest. This does not depend on how tokens were grouped into pushes.
        best: tuple[int, int, str] | None = None
        for stop in self._stops:
            start = buf.find(stop)
            if start >= 0:
                key = (start + len(stop), start, stop)
                if best is None or key < best:
                    best = key
        return None if best is None else (best[1], best[2])

    def _partial_stop_len(self, buf: str) -> int:
        """Length of the longest tail of `buf` that is a proper prefix of some stop string."""
        longest = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(buf)), longest, -1):
                if buf.endswith(stop[:k]):
                    longest = k
                    break
        return longest
