"""Lexicon scanning of streamed output: release text as soon as no term can still cover it.

    scanner = StreamScanner(lexicon, "mask")      # or "block"
    for chunk in chunks:
        step = scanner.feed(chunk)                # step.text: send it now; step.matches: new hits
        if step.blocked: ...                      # "block" and a hit: end the stream (caller's job)
    step = scanner.finish()                       # the rest

Whatever way the output is cut into chunks, the matches reported (offsets into the whole output)
and the text released (masked in "mask" mode) are exactly those of `lexicon.find` and
`lexicon.mask` over the whole output at once. In "block" mode nothing of a matched span is released.

What the client gets. Text goes out up to the first letter where a term may still begin: from there
to the last settled character the letters are the start of some term (Lexicon.term_prefixes), or an
undecided hit starts there. Plain text (ASCII letters, spaces, punctuation, Chinese) is settled (but
for a last character that is not a letter or a Chinese character), and so are digits, ! and | once
their reading is final (a ! followed by a space is punctuation for good; see _reading_final); where
a 1, ! or | whose reading is still open is held, a second reading may appear and re-read it, so the
release falls back to the context bound below. Nothing in the unsettled tail is sent or dropped from the
window, letter or not: a later character may make it a letter ("$" in "$5HIT").

What is kept for context. The scanner runs `lexicon.hits` over a window: the held-back tail plus the new
chunk (plus CONTEXT characters before it, read for word boundaries and leetspeak only), so a chunk
costs its own size plus the tail, never a rescan of the output. A hit is decided once the skeleton
run after it is fixed (its letters and the characters up to the next run can no longer change;
the last UNSETTLED = REACH + 1 = 17 characters are never fixed, since a later "x" can turn a trailing "$" into an "s").
The tail kept is the text from the first letter of skeleton run h onwards, where, with S_fix the
number of fixed runs, L_t the longest term and L_a the longest allowlist phrase (in skeleton letters):

    h = S_fix + 1 - L_t                     without an allowlist
    h = S_fix + 2 - L_a - max(L_t, L_a)     with one (an allowlisted phrase can hide a term in it)
    h = min(that, S_fix + 2 - L_t - 2 L_w)  with Chinese words (L_w: the longest; one can run across a term;
                                            at least SEGMENT_CONTEXT + 1 where a term has a Chinese edge,
                                            since word segmentation reads that many runs around its hits)

and nothing but the unsettled tail once the text ends in a gap longer than MAX_GAP (a hard break:
no later letter can join what came before). Each reading of the window (normalize.readings) is
decided on its own and the tail kept is the longer. The tail also keeps any allowlisted phrase or
Chinese word that overlaps a term hit still held. Where the lexicon's quick check finds no term in
the window (most chunks), no exact reading is made: the tail is counted in runs of the loose
reading, which are coarser than the exact ones, so as many runs back reach at least as far.
A hit of a term that some allowlisted phrase contains
is decided only once that phrase could no longer complete around it; other hits as soon as the
skeleton run after them is fixed. A hit of a term with a Chinese edge keeps the SEGMENT_CONTEXT runs
before it in the window, and the window never starts inside a skeleton run of any reading (readings
collapse runs differently: a glyph's letter may join the run after it).

so it is L_t - 1 (or L_a + max(L_t, L_a) - 2) collapsed skeleton letters, plus the run not yet
fixed and the separators around them. In characters that is bounded because a run is at most
MAX_RUN letters and a gap at most MAX_GAP characters (normalize.py): at most
(letters) * MAX_RUN * (MAX_GAP + 1) + MAX_GAP + UNSETTLED characters; for ordinary text it is a few
characters more than the letters (about the longest term's length).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from tokenmill.moderation.lexicon import Lexicon, Match, _Hit
from tokenmill.moderation.normalize import (
    LEET_REACH, MAX_GAP, REACH, Loose, Normalized, glyph_open_at_end, readings,
)
from tokenmill.moderation.segment import SEGMENT_CONTEXT

ACTIONS = ("block", "mask")
UNSETTLED = REACH + 1  # trailing characters whose normalisation a later character may still change
# Text whose characters no later character can re-read: ASCII letters, spaces, plain punctuation and
# Chinese. Where the last UNSETTLED characters are all such, only the last one is unsettled (a combining
# mark may still join it); leet digits and symbols (0-9, @ $ € ¢ ! |), ー and the rest keep UNSETTLED.
_PLAIN_TAIL = re.compile("[A-Za-z \n\t.,;:?'\"()\u3001\u3002\u4e00-\u9fff\uff0c\uff1a\uff1b\uff1f-]*")
CONTEXT = 2 * REACH  # characters kept before the window, read for word boundaries and leetspeak
QUICK_HOLD_LIMIT = 256  # the quick path only where it holds fewer characters (long runs: the exact one)


@dataclass(frozen=True, slots=True)
class ScanStep:
    text: str  # what may be sent to the client now (masked in "mask" mode)
    matches: list[Match] = field(default_factory=list)  # hits decided in this step, whole-output offsets
    blocked: bool = False  # "block" mode and a hit: end the stream; `text` stops before the hit


class StreamScanner:
    """One per streamed response; not thread-safe (a stream is fed by one task)."""

    def __init__(self, lexicon: Lexicon, action: str = "block") -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown lexicon action {action!r}: use one of {', '.join(ACTIONS)}")
        self.lexicon = lexicon
        self.action = action
        self._buf = ""  # output from self._base on
        self._base = 0
        self._first = 0  # skeleton starts at self._base + self._first; before it: context
        self._released = 0  # output [0, released) has been returned to the caller
        self._reported: set[Match] = set()
        self._masks: list[tuple[int, int]] = []  # reported spans not yet wholly released
        self._blocked = False
        self._finished = False

    @property
    def held_chars(self) -> int:
        """Characters received but not yet released."""
        return self._base + len(self._buf) - self._released

    @property
    def blocked(self) -> bool:
        return self._blocked

    def feed(self, chunk: str) -> ScanStep:
        """Take the next piece of output; return what can be released now."""
        if self._finished:
            raise RuntimeError("feed() after finish(): start a new StreamScanner for a new response")
        if self._blocked:
            return ScanStep("", [], True)
        self._buf += chunk
        return self._step(final=False)

    def finish(self) -> ScanStep:
        """The output has ended: decide everything and release the rest."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if self._blocked:
            return ScanStep("", [], True)
        return self._step(final=True)

    def _step(self, final: bool) -> ScanStep:
        buf, base = self._buf, self._base
        n = len(buf)
        decided: list[_Hit] = []
        loose, may = (None, True) if final else self.lexicon.quick_check(buf)
        hold = self._loose_hold(loose, n) if loose is not None and not may else None
        keep_from = open_from = base + n
        settled = n if final else _settled(buf)  # the same for every reading
        window = readings(buf, first=self._first)
        for r, nz in enumerate(window):  # each reading decided on its own
            held, opened = self._decide(nz, r, n, final, settled, decided)
            keep_from, open_from = min(keep_from, base + held), min(open_from, base + opened)
        if hold is not None and hold > n - QUICK_HOLD_LIMIT:  # no term in the window, a short tail
            keep_from = base + hold
        if len(window) > 1:
            keep_from = base + _whole_runs(window, keep_from - base)
        # what is kept for context (keep_from) may reach further back than what is held from the client
        # (open_from): text where no term can begin any more goes out now, not a term's length later
        if _open_reread(buf, max(0, self._released - base)) or glyph_open_at_end(buf):
            open_from = keep_from  # a 1 ! | whose reading is open: a second reading may yet re-read it; hold as far
        # text not yet settled stays in the window and is not sent, letter or not: a later character may make
        # it one, and a hit may then start there ("$5HIT"; "@$5 |_|0": the glyph makes 5, $ and @ letters)
        unsettled = base + max(settled, self._first)
        keep_from, open_from = min(keep_from, unsettled), min(open_from, unsettled)
        open_from = max(open_from, self._released)
        new = []
        for h in decided:
            m = Match(h.entry.term, h.entry.list_name, base + h.start, base + h.end)
            if m not in self._reported:
                self._reported.add(m)
                new.append(m)
        new.sort(key=lambda m: (m.start, m.end, m.list_name, m.term))

        if self.action == "block" and new:
            self._blocked = True
            stop = min(open_from, min(m.start for m in new))
            text = self._release(stop, masked=False)
            return ScanStep(text, new, True)
        self._masks.extend((m.start, m.end) for m in new)
        text = self._release(open_from, masked=self.action == "mask")
        self._trim(min(keep_from, open_from))
        return ScanStep(text, new, False)

    def _decide(self, nz: Normalized, reading: int, n: int, final: bool, settled_at: int,
                decided: list[_Hit]) -> tuple[int, int]:
        """Add the hits of one reading that later text can no longer change; return where to keep the text
        from (for the hits and allowlisted phrases still to decide) and where the client's text must stop
        (the first letter where a term may still begin, or an undecided hit starts). settled_at: how much of
        the buffer no later character can re-read (_settled)."""
        lex = self.lexicon
        runs = len(nz.text)
        fixed, closed = (runs, True) if final else _fixed_runs(nz, n - UNSETTLED)
        hits = lex.hits(nz, reading) if runs else []
        # the client's text: held from the first letter where a term may still begin, counted over the
        # characters no later one can re-read (see _settled)
        # where every character is settled, the last run is read as it will stay (a repeat only lengthens it)
        known = runs if settled_at >= n else _fixed_runs(nz, settled_at)[0]
        open_run = runs if closed else _first_open_run(nz.text, known, lex)

        def settled(h: _Hit) -> bool:
            # an allowlisted phrase (or Chinese word) that could still grow around the hit must be complete first
            return closed or (h.end_run <= fixed and h.first_run <= fixed - lex.allow_cover(nz.text[h.first_run:h.end_run]))

        for h in lex.apply_allowlist(hits, nz):
            if settled(h):
                decided.append(h)
        for h in hits:  # a term hit, dropped by an allowlisted phrase or not, is not sent until settled
            if not h.entry.allow and not settled(h):
                open_run = min(open_run, h.first_run)
        hold = self._hold_run(fixed, runs, closed)
        if hold < runs and hits:
            hold = _keep_deciders(hits, hold)
        tail = n if final else max(n - UNSETTLED, self._first)
        open_tail = n if final else max(settled_at, self._first)
        return (int(nz.letter_pos[nz.run_start[hold]]) if hold < runs else tail,
                int(nz.letter_pos[nz.run_start[open_run]]) if open_run < runs else open_tail)

    def _loose_hold(self, loose: Loose, n: int) -> int:
        """Where to hold from, counted in runs of the loose reading: they are coarser than the exact
        readings' runs (each holds one or more of them), so as many runs back reach at least as far."""
        runs = len(loose.text)
        settled = n - UNSETTLED
        tail = max(settled, self._first)
        if not runs:
            return tail
        first_pos = loose.letter_pos[loose.run_start[:-1]]
        started = int(np.searchsorted(first_pos, settled, side="left"))
        last = int(loose.letter_pos[-1])
        if started == runs and (settled - 1) - last > MAX_GAP and "\u30fc" not in self._buf[last:]:
            return tail  # a hard break: nothing later joins what came before
        hold = self._hold_run(max(started - 1, 0), runs, False)
        return int(loose.letter_pos[loose.run_start[hold]]) if hold < runs else tail

    def _hold_run(self, fixed: int, runs: int, closed: bool) -> int:
        """The first skeleton run that an undecided or future hit (or its allowlist) may start in."""
        if closed:
            return runs
        lex = self.lexicon
        start = fixed + 1 - lex.longest_term
        if lex.longest_allow:
            start = min(start, fixed + 1 - lex.longest_allow) + 1 - lex.longest_allow
        if lex.longest_word:  # a Chinese word may run across an undecided hit's first letter
            start = min(start, fixed + 2 - lex.longest_term - 2 * lex.longest_word)
        return min(max(start, 0), fixed)

    def _release(self, upto: int, masked: bool) -> str:
        lo = self._released
        if upto <= lo:
            return ""
        text = self._buf[lo - self._base:upto - self._base]
        if masked and self._masks:
            chars = None
            for s, e in self._masks:
                s, e = max(s, lo), min(e, upto)
                if s < e:
                    chars = chars or list(text)
                    chars[s - lo:e - lo] = "*" * (e - s)
            if chars is not None:
                text = "".join(chars)
            self._masks = [(s, e) for s, e in self._masks if e > upto]
        self._released = upto
        return text

    def _trim(self, keep_from: int) -> None:
        """Drop output before keep_from (but CONTEXT characters); the skeleton restarts at keep_from."""
        new_base = max(self._base, keep_from - CONTEXT)
        self._buf = self._buf[new_base - self._base:]
        self._base = new_base
        self._first = keep_from - new_base
        self._reported = {m for m in self._reported if m.start >= keep_from}


def _first_open_run(skeleton: str, fixed: int, lexicon: Lexicon) -> int:
    """The first skeleton run where a term may still begin: from it to the last fixed run, the letters are
    the start of some term (runs after the fixed ones may still change, so they are always open)."""
    prefixes = lexicon.term_prefixes
    for j in range(max(0, fixed - lexicon.longest_term + 1), fixed):
        if skeleton[j:fixed] in prefixes:
            return j
    return fixed


def _keep_deciders(hits: list[_Hit], hold: int) -> int:
    """Move the hold back until every term hit still held keeps in the window what decides it: any
    allowlisted phrase or Chinese word that overlaps it, and for a term with a Chinese edge the
    SEGMENT_CONTEXT runs before it that word segmentation reads (a held hit is decided again each step)."""
    covers = [h for h in hits if h.entry.allow]
    terms = [h for h in hits if not h.entry.allow]
    changed = True
    while changed:
        changed = False
        for t in terms:
            if t.first_run < hold:
                continue
            need = t.first_run - SEGMENT_CONTEXT if t.entry.segment else t.first_run
            need = min([need] + [a.first_run for a in covers if a.first_run < t.end_run and t.first_run < a.end_run])
            if max(need, 0) < hold:
                hold, changed = max(need, 0), True
    return hold


_RE_READ = re.compile("[1!|]")  # characters normalize.readings may read a second way once one of them is a letter
_LEET_CHAR = re.compile("[0-9!|]")  # digits and ! | read as letters or not by their neighbours (normalize._resolve_leet)
_SETTLED_LAST = re.compile("[A-Za-z\u4e00-\u9fff]")  # a last character no later one can re-read
_PLAIN_SEPARATOR = frozenset(" \n\t.,;:?'\"()\u3001\u3002\uff0c\uff1a\uff1b\uff1f-")
# Beyond this distance on both sides a digit, ! or | is read on its own (no letter lends it context, no
# chain of leet characters reaches it): LEET_REACH characters and the one that says if a letter stands alone,
# twice over, which also covers a code's digits and the letter after them (normalize._CODE).
_OWN_READING = 2 * (LEET_REACH + 1)


def _reading_final(buf: str, q: int) -> bool:
    """Whether no later character can change how the digit, ! or | at q is read (letter or not).

    A ! or | becomes a letter only in a run of at most three between two Latin letters, so a space or plain
    punctuation on either side of its run settles it as punctuation, unless a lone ! stands between spaces
    and letters that may stand alone ("r ! c ! n": _may_be_spelled_out). Otherwise the character is settled
    once _OWN_READING characters follow it and no other digit, ! or | (nor any character outside plain
    text) stands within REACH of it, so no chain of leet resolution can reach it."""
    n = len(buf)
    c = buf[q]
    if c in "!|":
        a, b = q, q + 1
        while a > 0 and buf[a - 1] == c:
            a -= 1
        while b < n and buf[b] == c:
            b += 1
        between_letters = not ((a > 0 and buf[a - 1] in _PLAIN_SEPARATOR)
                               or (b < n and (buf[b] in _PLAIN_SEPARATOR or b - a > 3)))
        if not between_letters and not (c == "!" and _may_be_spelled_out(buf, a, b)):
            return True
    if q + _OWN_READING >= n:
        return False
    around = buf[max(0, q - REACH):q] + buf[q + 1:q + REACH + 1]
    return _PLAIN_TAIL.fullmatch(around) is not None


def _may_be_spelled_out(buf: str, a: int, b: int) -> bool:
    """Whether the run of ! at [a, b) may still read as a letter spelled out between two letters that stand
    alone ("r ! c ! n", normalize._tight), as far as the text so far tells."""
    n = len(buf)
    if b - a > 1 or (a > 0 and buf[a - 1] != " ") or (b < n and buf[b] != " "):
        return False
    for letter, beyond in ((a - 2, a - 3), (b + 1, b + 2)):
        if 0 <= letter < n and (buf[letter] in _PLAIN_SEPARATOR or buf[letter].isspace()
                                or (0 <= beyond < n and buf[beyond].isascii() and buf[beyond].isalpha())):
            return False
    return True


def _open_reread(buf: str, start: int) -> bool:
    """Whether a 1, ! or | from `start` on may still be read as a letter: a second reading may yet appear."""
    lo = max(start, len(buf) - UNSETTLED)  # further back, every character's reading is final
    return any(not _reading_final(buf, m.start()) for m in _RE_READ.finditer(buf, lo))


def _whole_runs(window: list[Normalized], keep_from: int) -> int:
    """Move keep_from back to the start of any reading's skeleton run that it would cut: the window must start
    where every reading's runs start, or a reading would find a hit with another span than one pass finds."""
    moved = True
    while moved:
        moved = False
        for nz in window:
            k = int(np.searchsorted(nz.letter_pos, keep_from))  # the first letter at or after keep_from
            if 0 < k < len(nz.letter_pos):
                run = int(np.searchsorted(nz.run_start, k, side="right")) - 1
                start = int(nz.letter_pos[nz.run_start[run]])
                if start < keep_from:
                    keep_from, moved = start, True
    return keep_from


def _settled(buf: str) -> int:
    """How much of buf no later character can re-read: where the last UNSETTLED characters are plain text
    (see _PLAIN_TAIL) or digits, ! and | whose reading is final, all of it when the last is a letter of
    A-Z or a Chinese character (no later mark or letter changes how either reads; a repeat may still
    lengthen its run, which _fixed_runs leaves open), else all but the last; otherwise all but UNSETTLED."""
    n = len(buf)
    start = max(0, n - UNSETTLED)
    tail = buf[start:]
    if _PLAIN_TAIL.fullmatch(tail) or (_PLAIN_TAIL.fullmatch(_LEET_CHAR.sub("", tail)) and all(
            _reading_final(buf, start + m.start()) for m in _LEET_CHAR.finditer(tail))):
        return n if _SETTLED_LAST.fullmatch(buf[-1:]) else n - 1
    return n - UNSETTLED


def _fixed_runs(nz, settled: int) -> tuple[int, bool]:
    """How many leading skeleton runs later text can no longer change, and whether later text can join
    none of them (the text ends in a gap longer than MAX_GAP, a hard break)."""
    runs = len(nz.text)
    if not runs:
        return 0, True
    run_first_pos = nz.letter_pos[nz.run_start[:-1]]
    started = int(np.searchsorted(run_first_pos, settled, side="left"))  # runs starting before `settled`
    if started == runs and (settled - 1) - int(nz.letter_pos[-1]) > MAX_GAP:
        return runs, True
    return max(started - 1, 0), False
