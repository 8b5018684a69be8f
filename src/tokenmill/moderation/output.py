"""Moderating a completion as it is generated, streamed or not (the same code serves both).

Text passes through a StreamScanner, which holds back only the tail a term could still complete and
releases the rest (masked under the `mask` action). Meanwhile the classifier reads the output in
windows of `output_window` characters (each re-reading the last WINDOW_OVERLAP of the one before) on
the moderation thread: generation never waits for it. A window found harmful ends the output at the next piece. At the end, the last
window is checked and the held tail released only once every window's verdict is in, so the
verdict never depends on how the output was split or whether it was streamed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tokenmill.moderation.moderator import Moderator, Screen
from tokenmill.moderation.scanner import StreamScanner
from tokenmill.moderation.verdict import Verdict, VerdictBuilder

WINDOW_OVERLAP = 200  # characters each window re-reads of the one before, so no sentence falls between two


@dataclass(slots=True)
class Screened:
    text: str  # what may go to the client now
    blocked: Verdict | None = None  # set when the output must end here (finish_reason "content_filter")


@dataclass(slots=True)
class OutputCheck:
    moderator: Moderator
    screen: Screen
    scanner: StreamScanner | None = None
    builder: VerdictBuilder | None = None
    output: list[str] = field(default_factory=list)
    length: int = 0
    window_start: int = 0  # where the next window to classify starts
    pending: list[asyncio.Future] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.screen.lexicon is not None:
            self.scanner = StreamScanner(self.screen.lexicon, self.screen.policy.action)
        self.builder = self.screen.builder()

    @property
    def semantic(self) -> bool:
        return self.moderator.classifies(self.screen)

    async def release(self, text: str, last: bool) -> Screened:
        """feed() the next piece and, when it is the last, finish(): what may be sent on, and whether to stop."""
        screened = self.feed(text)
        if screened.blocked is None and last:
            tail = await self.finish()
            screened = Screened(screened.text + tail.text, tail.blocked)
        return screened

    def feed(self, text: str) -> Screened:
        """The next piece of output; returns what may be sent on."""
        if not text:
            return Screened("", self._semantic_block())
        self.output.append(text)
        self.length += len(text)
        if self.semantic:
            size = self.moderator.config.output_window
            while self.length - self.window_start >= size:
                self._classify(max(0, self.window_start - WINDOW_OVERLAP), self.window_start + size)
                self.window_start += size
        blocked = self._semantic_block()
        if blocked is not None:
            return Screened("", blocked)
        if self.scanner is None:
            return Screened(text)
        step = self.scanner.feed(text)
        return self._after_scan(step)

    async def finish(self) -> Screened:
        """The output ended: check what is left, wait for every window's verdict, release the held tail."""
        if self.semantic and self.length > self.window_start:
            self._classify(max(0, self.window_start - WINDOW_OVERLAP), self.length)
            self.window_start = self.length
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
        blocked = self._semantic_block()
        if blocked is not None:
            return Screened("", blocked)
        if self.scanner is None:
            return Screened("")
        return self._after_scan(self.scanner.finish())

    def verdict(self) -> Verdict:
        return self.builder.verdict()

    def cancel(self) -> None:
        for future in self.pending:
            future.cancel()

    def _after_scan(self, step) -> Screened:
        if step.matches:
            self.builder.add_matches(self.screen.term_hits(step.matches))
        if step.blocked:
            return Screened(step.text, self.builder.verdict())
        return Screened(step.text)

    def _classify(self, start: int, end: int) -> None:
        text = "".join(self.output)
        self.output = [text]
        self.pending.append(self.moderator.score_async([text[start:end]]))

    def _semantic_block(self) -> Verdict | None:
        """A verdict when a finished window crossed a threshold; folds finished windows in."""
        still = []
        for future in self.pending:
            if not future.done():
                still.append(future)
            elif not future.cancelled() and future.exception() is None:
                self.builder.add_scores(future.result()[0])
        self.pending = still
        return self.builder.verdict() if self.builder.scores_flag else None
