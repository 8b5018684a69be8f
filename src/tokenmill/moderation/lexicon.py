"""Sensitive-term lexicon: term lists, an allowlist, and matching over normalised text.

    lists = [TermList.from_file(path) for path in paths]          # one term a line, '#' comments
    lexicon = Lexicon(lists, allow=TermList.from_file(allow_path))
    matches = lexicon.find(text)                                  # [Match(term, list_name, start, end)]
    safe = lexicon.mask(text, matches)                            # matched spans -> '*'

Terms and text go through the same `normalize` (see normalize.py), and one Aho-Corasick automaton
(ahocorasick-rs) finds every term skeleton in the text skeleton. Each hit is then checked against
the original text, so normalising hard does not mean matching loosely:

* Repeats: the text must have at least as many of each repeated letter as the term ("kiiill" is
  "kill", "kil" is not; "as" is not "ass").
* Word boundaries: a term that begins (ends) with a letter of a script written with spaces (Latin,
  Greek, Cyrillic, digits) must begin (end) at a word boundary of the original text, so "skill",
  "Scunthorpe" and "assassin" do not hold "kill", "cunt" or "ass". Chinese and Japanese ends have no
  boundary ("买冰毒了" holds "冰毒").
* Separators inside a hit (the evasions "k i l l", "k.i.l.l", "k-i-l-l", "kil l", "毒 品", "毒*品"):
  - no match crosses a line break, or more than MAX_GAP characters between two letters;
  - next to a Chinese (unspaced-script) letter, any separator is accepted except clause punctuation
    (， 。 ！ ？ ； ： 、): "毒*品" is an evasion, "吸毒。品" is two sentences; half-width , ; : ! ? with no
    space are not how Chinese ends a clause, so "假,钞" is an evasion;
  - between two Latin letters, punctuation without a space is accepted ("k.i.l.l", "co-caine");
    a space with a full stop or clause punctuation is a sentence break and never accepted;
  - a space inside a term word (not where the term itself has a space, as in "crystal meth") is
    accepted unless every piece it splits that word into is an ordinary English word, one of them a
    function word, all written plainly (english.py): "k i l l", "kil l", "as shole", "her oin" are
    evasions, and so are "ass hole" and "mass acre" (a compound cut at its seam) and "a$$ h0le"
    (disguised letters); "the hero in", "to be head of", "pen is" are words and do not match.
    Ordinary words are SCOWL's ~40,000 English words up to size 35 (data/ordinary_words.txt); a single
    letter other than "a" and "i" is never ordinary. The price: a pair with a function word ("be head
    them") is taken as words even when meant as one, and two content words that meet by chance ("each
    mass acre") as one.
* Inflections (english.py): each term and allowlisted phrase is also compiled in its regular English
  forms (-s, -ed, -ing, -in, -er, -ers, -y on its first or last word), which report the plain term:
  "fucking", "r3tarded", "sluts", "cooking meth". An inflected word cut by spaces hides its term only
  letter by letter or when its last piece is a long non-word ("fu cking"; not "naz is" or "k1ll y").
  Ordinary words that a form's skeleton finds but that are other words ("rapped" for "raped") are
  allowlisted.
* Allowlist: a hit that lies inside an allowlisted phrase ("kill the process", "大麻烦") is dropped.
* Chinese words (data/allow_zh_words.txt, part of the shipped allowlist): Chinese has no spaces, so
  a short Chinese term can be the end of one word and the start of the next. An allowlisted entry
  written wholly in Chinese also drops a term hit that it runs across, overlapping the term's first
  or last character but not the whole of it: 有毒|品种 (毒品), 抑制|毒性 (制毒), 地雷|管理 (雷管),
  死海 after 去死. The list holds only words whose crossing reading is far more common than the term.
* Chinese word segmentation (segment.py): a term hit with a Chinese first or last character is dropped
  when the best segmentation of the words around it (jieba's dictionary plus the lexicon's terms) has
  a word that runs across that character: 装傻|逼我, 乌鸦|片刻, 芝麻|古法. A word that holds the whole
  term (杀人放火) keeps it. This covers what allow_zh_words.txt does one word at a time.
* Readings (normalize.readings): where a 1, ! or | became a letter, the text is also read with
  ! and | as punctuation and 1 as l; where it draws letters with symbols or stand-ins ("c|_|nt",
  "|<ill", "fvck", "9hb"), also with them read as letters (normalize.glyph_text). Matches of every
  reading are reported, each reading with its allowlist.
* Quick check: before the exact readings, `normalize.loose_skeleton` (no run or position
  bookkeeping, leet digits always letters, l as i) runs through a second automaton of the terms'
  loose forms; no hit there, or hits only inside words for terms that need word boundaries, means no
  match, which is most text. It is a pre-check only: it never changes what is found.

A Lexicon is immutable once built, so `find` is safe to call from many threads; reload by building
a new Lexicon and swapping the reference.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ahocorasick_rs
import numpy as np

from tokenmill.moderation.english import FUNCTION_WORDS, ORDINARY_WORDS, inflections, lookalikes
from tokenmill.moderation.normalize import (
    BREAK, DATA, EXPAND, FIRST_LETTER, GLYPH_PADDING, MARK, MAX_GAP, NEWLINE, REACH, SPACE, STOP, UNSPACED, WORD,
    Loose, Normalized, glyph_edits, letter_glyphs_near, loose_form, loose_skeleton, normalize, readings, tables,
)
from tokenmill.moderation.segment import SEGMENT_CONTEXT, chinese_words

DEFAULT_TERMS = DATA / "terms"  # the shipped global term lists, one file per list
STRICT_TERMS = DATA / "terms_strict"  # shipped lists not used unless a config names them
DEFAULT_ALLOW = DATA / "allow.txt"
DEFAULT_WORDS = DATA / "allow_zh_words.txt"  # Chinese words that cut a term's characters apart
QUICK_CHECK_LIMIT = 65_536  # longer texts nearly always hold a near-miss: the quick check would not pay


@dataclass(frozen=True, slots=True)
class Match:
    """One term found in a text; start and end index the original text (text[start:end])."""

    term: str  # as written in its list
    list_name: str
    start: int
    end: int


class TermFileError(ValueError):
    """A term list that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class TermList:
    """A named list of terms, as written (normalisation happens when a Lexicon is built)."""

    name: str
    terms: tuple[str, ...]
    source: str = ""  # the file it came from, for error messages

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> TermList:
        """Read one term a line; '#' starts a comment; blank lines are ignored. Name: the file's stem."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TermFileError(f"cannot read term list {path}: {e}; give a UTF-8 text file, one term a line") from e
        return cls.from_text(name or path.stem, text, source=str(path))

    @classmethod
    def from_text(cls, name: str, text: str, source: str = "<text>") -> TermList:
        terms: list[str] = []
        seen = set()
        for number, line in enumerate(text.splitlines(), start=1):
            term = _strip_comment(line)
            if not term:
                continue
            if not normalize(term).text:
                raise TermFileError(
                    f"{source}:{number}: term {term!r} has no letters or digits once normalised, so it "
                    "would match nothing; remove the line or write the word itself")
            if term not in seen:
                seen.add(term)
                terms.append(term)
        return cls(name, tuple(terms), source)


def _strip_comment(line: str) -> str:
    line = line.strip()
    if line.startswith("#"):
        return ""
    cut = min((i for i in (line.find(" #"), line.find("\t#")) if i >= 0), default=-1)
    return (line[:cut] if cut >= 0 else line).strip()


def default_lists() -> list[TermList]:
    """The shipped global term lists (data/terms/*.txt)."""
    return [TermList.from_file(p) for p in sorted(DEFAULT_TERMS.glob("*.txt"))]


def strict_lists() -> list[TermList]:
    """The shipped opt-in lists of everyday words that are also harmless (data/terms_strict/*.txt: "kill", "ass")."""
    return [TermList.from_file(p) for p in sorted(STRICT_TERMS.glob("*.txt"))]


def default_allow() -> TermList:
    """The shipped allowlist: data/allow.txt and the Chinese words of data/allow_zh_words.txt."""
    phrases, words = TermList.from_file(DEFAULT_ALLOW, name="allow"), TermList.from_file(DEFAULT_WORDS)
    return TermList("allow", tuple(dict.fromkeys(phrases.terms + words.terms)), f"{phrases.source}, {words.source}")


@dataclass(frozen=True, slots=True)
class _Entry:
    term: str
    list_name: str
    allow: bool
    runs: tuple[int, ...]  # letters each run of the skeleton needs
    breaks: frozenset[int]  # the term has a space after these runs (relative index)
    word_start: bool  # starts with a letter of a spaced script: needs a word boundary
    word_end: bool
    crossing: bool = False  # an allowlisted Chinese word: drops a term it runs across, not only one inside it
    segment: str = ""  # a term that begins or ends with a Chinese letter: its letters, for word segmentation
    inflected: int = -1  # an inflected form (english.py): which word of the term carries the suffix


@dataclass(frozen=True, slots=True)
class _Hit:
    entry: _Entry
    first_run: int  # skeleton [first_run, end_run)
    end_run: int
    start: int  # original [start, end)
    end: int
    reading: int = 0  # which reading of the text (normalize.readings) it was found in


class Lexicon:
    """Term lists plus an allowlist, compiled into one automaton over normalised text."""

    def __init__(self, lists: Sequence[TermList], allow: TermList | Iterable[str] = ()) -> None:
        allow_terms = allow.terms if isinstance(allow, TermList) else tuple(allow)
        specs = [(t, tl.name, False) for tl in lists for t in tl.terms]
        specs += [(t, "", True) for t in dict.fromkeys(allow_terms)]
        specs = _with_inflections(specs)
        self.lists = tuple(lists)
        self.allow = tuple(dict.fromkeys(allow_terms))
        by_skeleton: dict[str, list[_Entry]] = {}
        for skeleton, entry in _compile(specs):
            by_skeleton.setdefault(skeleton, []).append(entry)
        self._patterns = list(by_skeleton)
        self._entries = [tuple(v) for v in by_skeleton.values()]
        # every beginning of a term's skeleton: a stream scanner releases text where none of them can start
        self.term_prefixes = frozenset(p[:k] for p, es in by_skeleton.items() if any(not e.allow for e in es)
                                       for k in range(1, len(p) + 1))
        self._word_start = np.array([e[0].word_start for e in self._entries] + [False])
        self._word_end = np.array([e[0].word_end for e in self._entries] + [False])
        # For the vectorised pre-check: the first run that every entry of a pattern needs doubled.
        need_at, need = [], []
        for entries in self._entries:
            least = [min(r) for r in zip(*(e.runs for e in entries))]
            k = next((i for i, r in enumerate(least) if r > 1), 0)
            need_at.append(k)
            need.append(least[k])
        self._need_at = np.array(need_at + [0], dtype=np.int64)
        self._need = np.array(need + [1], dtype=np.int64)
        # Bytes, not str: the str automaton converts every offset from UTF-8 to characters, at half speed.
        self._automaton = (ahocorasick_rs.BytesAhoCorasick([p.encode() for p in self._patterns],
                                                           implementation=ahocorasick_rs.Implementation.DFA)
                           if self._patterns else None)
        # The quick pre-check: the term skeletons in the loose reading (see normalize.loose_skeleton).
        # loose form -> whether every term with it needs a word boundary at its start, at its end
        loose: dict[str, tuple[bool, bool]] = {}
        for p, es in by_skeleton.items():
            if any(not e.allow for e in es):
                f = loose_form(p)
                start, end = loose.get(f, (True, True))
                terms = [e for e in es if not e.allow]
                loose[f] = (start and all(e.word_start for e in terms) and f[:1] == p[:1],
                            end and all(e.word_end for e in terms) and f[-1:] == p[-1:])
        self._loose_edges = list(loose.values())
        self._prefilter = (ahocorasick_rs.BytesAhoCorasick([p.encode() for p in loose],
                                                           implementation=ahocorasick_rs.Implementation.DFA)
                           if loose and "" not in loose else None)
        self.longest_term = max((len(p) for p, es in by_skeleton.items() if any(not e.allow for e in es)), default=0)
        self.longest_allow = max((len(p) for p, es in by_skeleton.items() if any(e.allow for e in es)), default=0)
        allowed = [p for p, es in by_skeleton.items() if any(e.allow for e in es)]
        self._allow_cover: dict[str, int] = {}  # term skeleton -> the longest allowlisted skeleton holding it
        for a in allowed:
            for k, _, _ in self._automaton.find_matches_as_indexes(a.encode(), overlapping=True):
                p = self._patterns[k]
                self._allow_cover[p] = max(self._allow_cover.get(p, 0), len(a))
        words = [p for p, es in by_skeleton.items() if any(e.crossing for e in es)]
        self.longest_word = max(map(len, words), default=0)
        if words:
            self._add_crossing_cover(words)
        segmented = [p for p, es in by_skeleton.items() if any(e.segment for e in es)]
        self._words = chinese_words(e.segment for es in self._entries for e in es if e.segment) if segmented else None
        if segmented:  # a hit is decided once the context that segmentation reads is fixed, and kept as long
            for p in segmented:
                self._allow_cover[p] = max(self._allow_cover.get(p, 0), len(p) + SEGMENT_CONTEXT)
            self.longest_word = max(self.longest_word, SEGMENT_CONTEXT + 1)

    def _add_crossing_cover(self, words: list[str]) -> None:
        """A term that a Chinese word can run across is decided only once that word could be complete."""
        prefixes: dict[str, int] = {}
        suffixes: dict[str, int] = {}
        for w in words:
            for k in range(1, len(w)):
                prefixes[w[:k]] = max(prefixes.get(w[:k], 0), len(w))
                suffixes[w[-k:]] = max(suffixes.get(w[-k:], 0), len(w))
        for p in self._patterns:
            cover = self._allow_cover.get(p, 0)
            for k in range(1, min(len(p), self.longest_word)):
                reach = max(prefixes.get(p[-k:], 0), suffixes.get(p[:k], 0))
                if reach:
                    cover = max(cover, len(p) + reach - k)
            if cover:
                self._allow_cover[p] = cover

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], allow_paths: Iterable[str | Path] = ()) -> Lexicon:
        allow = [t for p in allow_paths for t in TermList.from_file(p).terms]
        return cls([TermList.from_file(p) for p in paths], allow)

    @classmethod
    def default(cls) -> Lexicon:
        """The shipped global lists and allowlist."""
        return cls(default_lists(), default_allow())

    def quick_check(self, text: str) -> tuple[Loose | None, bool]:
        """The loose reading of `text` and whether a term may be in it (False: certainly none)."""
        if self._prefilter is None:
            return None, True
        loose = loose_skeleton(text)
        if loose is None:
            return None, True
        return loose, self._loose_hit(loose)

    def _loose_hit(self, loose: Loose) -> bool:
        return bool(self._loose_spans(loose, first_only=True))

    def _loose_spans(self, loose: Loose, first_only: bool = False) -> list[tuple[int, int]]:
        """Where the loose reading holds a term's loose form that starts (ends) at a word edge where the term
        needs one: [first letter, last letter] positions in the original text."""
        utf8 = loose.text.encode()
        found = self._prefilter.find_matches_as_indexes(utf8, overlapping=True)
        if not found:
            return []
        ascii_ = len(utf8) == len(loose.text)
        spans = []
        for p, start, end in found:
            if not ascii_:
                start, end = len(utf8[:start].decode()), len(utf8[:end].decode())
            need_start, need_end = self._loose_edges[p]
            if need_start and not loose.at_word_edge(start, -1):
                continue
            if need_end and not loose.at_word_edge(end - 1, 1):
                continue
            spans.append((int(loose.letter_pos[loose.run_start[start]]), int(loose.letter_pos[loose.run_start[end] - 1])))
            if first_only:
                break
        return spans

    def allow_cover(self, skeleton: str) -> int:
        """Length of the longest allowlisted skeleton that contains this term skeleton (0: none)."""
        return self._allow_cover.get(skeleton, 0)

    @property
    def term_count(self) -> int:
        return sum(len(tl.terms) for tl in self.lists)

    def find(self, text: str) -> list[Match]:
        """Every term in `text`, with offsets into `text`, in order of start."""
        if not text or self._automaton is None:
            return []
        if len(text) > QUICK_CHECK_LIMIT:
            return self._find_long(text)
        glyphs = None  # every glyph (normalize.glyph_edits) unless the loose reading narrows them down
        if self._prefilter is not None:
            loose = loose_skeleton(text)
            if loose is not None:
                spans = self._loose_spans(loose)
                if not spans:
                    return []
                # The loose reading is made only where no symbol glyph is, and folds v, 6 and 9 as the glyph
                # reading does: only those within REACH of a term's loose form can matter (a glyph's letter may
                # lend leet context that far).
                glyphs = letter_glyphs_near(text, [(max(a - REACH, 0), b + REACH) for a, b in spans])
        found: list[_Hit] = []
        for r, nz in enumerate(readings(text, glyphs=glyphs)):
            found += self.apply_allowlist(self.hits(nz, r), nz)
        return _to_matches(found)

    def _find_long(self, text: str) -> list[Match]:
        """`find` for a text over QUICK_CHECK_LIMIT characters, where the quick check does not pay (such text
        nearly always holds a near-miss): the first two readings over all of it, the glyph reading only in
        windows around its glyphs (GLYPH_WINDOW characters either side, far more than a match and what decides
        it can reach), keeping the matches there that come within REACH of a glyph."""
        found: list[_Hit] = []
        for r, nz in enumerate(readings(text, glyphs=[])):
            found += self.apply_allowlist(self.hits(nz, r), nz)
        matches = set(_to_matches(found))
        for lo, hi, edits in _glyph_windows(glyph_edits(text), len(text)):
            for m in self.find(text[lo:hi]):
                start, end = m.start + lo, m.end + lo
                if any(start < e + REACH and s - REACH < end for s, e, _ in edits):
                    matches.add(Match(m.term, m.list_name, start, end))
        return sorted(matches, key=lambda m: (m.start, m.end, m.list_name, m.term))

    @staticmethod
    def mask(text: str, matches: Iterable[Match]) -> str:
        """`text` with each matched span replaced by as many '*' as it has characters."""
        spans = sorted((m.start, m.end) for m in matches)
        if not spans:
            return text
        out, pos = [], 0
        for start, end in spans:
            start = max(start, pos)
            if end <= start:
                continue
            out.append(text[pos:start])
            out.append("*" * (end - start))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    # -- used by the stream scanner --------------------------------------------------------------

    def hits(self, nz: Normalized, reading: int = 0) -> list[_Hit]:
        """Verified hits of terms and allowlist phrases in a normalised text (allowlist not applied)."""
        if self._automaton is None or not nz.text:
            return []
        utf8 = nz.text.encode()
        found = self._automaton.find_matches_as_indexes(utf8, overlapping=True)
        if not found:
            return []
        hits = np.array(found, dtype=np.int64)
        pattern, first, end = hits[:, 0], hits[:, 1], hits[:, 2]
        if len(utf8) != len(nz.text):  # byte offsets -> character offsets
            char_starts = np.flatnonzero((np.frombuffer(utf8, dtype=np.uint8) & 0xC0) != 0x80)
            first, end = np.searchsorted(char_starts, first), np.searchsorted(char_starts, end)
        rs = nz.run_start
        at = first + self._need_at[pattern]
        keep = (rs[at + 1] - rs[at]) >= self._need[pattern]
        keep &= _boundary_prefilter(nz, first, end, self._word_start[pattern], self._word_end[pattern])
        out = []
        for p, cs, ce in zip(pattern[keep].tolist(), first[keep].tolist(), end[keep].tolist()):
            for entry in self._entries[p]:
                span = _verify(entry, nz, cs, ce)
                if span is not None:
                    out.append(_Hit(entry, cs, ce, span[0], span[1], reading))
        return out

    def apply_allowlist(self, hits: list[_Hit], nz: Normalized) -> list[_Hit]:
        """Term hits not inside an allowlisted hit, nor run across by an allowlisted Chinese word or by a
        word of the text's own segmentation (segment.py)."""
        allowed = sorted((h.start, h.end) for h in hits if h.entry.allow)
        crossing = [(h.start, h.end) for h in hits if h.entry.crossing]
        kept = []
        for h in hits:
            if h.entry.allow:
                continue
            if allowed and _inside_any(h.start, h.end, allowed):
                continue
            if crossing and any(s < h.start < e < h.end or h.start < s < h.end < e for s, e in crossing):
                continue
            if h.entry.segment and self._words is not None and self._cut_by_words(h, nz):
                continue
            kept.append(h)
        return kept

    def _cut_by_words(self, h: _Hit, nz: Normalized) -> bool:
        """Whether the words around a hit (SEGMENT_CONTEXT runs either side, within its phrase) run across the
        term's first or last character, however many of the repeats in its first and last runs are the term's
        ("制冰（冰毒）" may read 制冰|冰毒, "操你妈妈" 操|你|妈妈)."""
        assert self._words is not None
        rs, need = nz.run_start, h.entry.runs
        first_run, end_run = int(rs[h.first_run]), int(rs[h.end_run])  # letters of the hit's runs
        starts = {first_run, int(rs[h.first_run + 1]) - need[0]} if len(need) > 1 else {first_run}
        ends = {end_run, int(rs[h.end_run - 1]) + need[-1]} if len(need) > 1 else {end_run}
        lo = int(rs[max(h.first_run - SEGMENT_CONTEXT, 0)])
        hi = int(rs[min(h.end_run + SEGMENT_CONTEXT, len(nz.text))])
        a, b = first_run, end_run
        while a > lo and _joined(nz, a - 1):
            a -= 1
        while b < hi and _joined(nz, b - 1):
            b += 1
        if a == first_run and b == end_run:
            return False
        context = "".join(map(chr, nz.letters[a:b].tolist()))
        return all(self._words.cuts(context, i - a, j - a) for i in starts for j in ends)


_CLAUSE_EDGES = frozenset("()[]{}<>\"'\uff08\uff09\u3010\u3011\u300a\u300b\u300c\u300d\u300e\u300f\u3008\u3009"
                          "\u201c\u201d\u2018\u2019")  # brackets and quotes: 制冰（冰毒） is two phrases


def _joined(nz: Normalized, k: int) -> bool:
    """Whether letters k and k + 1 are in one phrase: nothing between them but spaces and marks, no clause
    break, bracket or quote."""
    p, q = int(nz.letter_pos[k]), int(nz.letter_pos[k + 1])
    if q - p == 1:
        return True
    between = nz.codes[p + 1:q]
    return (q - p - 1 <= MAX_GAP and not ((between == BREAK) | (between == NEWLINE) | (between == STOP)).any()
            and not _CLAUSE_EDGES.intersection(nz.original[p + 1:q]))


GLYPH_WINDOW = 1024  # characters read either side of a glyph in a long text (see Lexicon._find_long)


def _glyph_windows(edits: list[tuple[int, int, str]], n: int) -> list[tuple[int, int, list[tuple[int, int, str]]]]:
    """Windows [lo, hi) around clusters of glyphs, each under QUICK_CHECK_LIMIT characters, with their glyphs."""
    windows: list[tuple[int, int, list[tuple[int, int, str]]]] = []
    group: list[tuple[int, int, str]] = []
    for edit in edits:
        if group and (edit[0] - group[-1][1] > GLYPH_WINDOW or edit[1] - group[0][0] > QUICK_CHECK_LIMIT // 4):
            windows.append((max(group[0][0] - GLYPH_WINDOW, 0), min(group[-1][1] + GLYPH_WINDOW, n), group))
            group = []
        group.append(edit)
    if group:
        windows.append((max(group[0][0] - GLYPH_WINDOW, 0), min(group[-1][1] + GLYPH_WINDOW, n), group))
    return windows


def _inside_any(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    i = bisect.bisect_right(spans, (start, 1 << 62))
    return any(e >= end for _, e in spans[:i])


def _to_matches(hits: list[_Hit]) -> list[Match]:
    unique = {Match(h.entry.term, h.entry.list_name, h.start, h.end) for h in hits}
    return sorted(unique, key=lambda m: (m.start, m.end, m.list_name, m.term))


_Spec = tuple[str, str, str, bool, int]  # pattern text, the term it reports, list, allowlisted?, inflected word


def _with_inflections(specs: list[tuple[str, str, bool]]) -> list[_Spec]:
    """Each term and allowlisted phrase, then its inflected forms (english.py), then as allowlisted phrases the
    ordinary words that a term's form finds but that are other words ("rapped" for "raped")."""
    out: list[_Spec] = []
    others: list[str] = []
    for term, list_name, allow in specs:
        out.append((term, term, list_name, allow, -1))
        for form in inflections(term.lower()):
            out.append((form.text, term, list_name, allow, form.word))
            if not allow:
                others += lookalikes(form)
    return out + [(w, w, "", True, -1) for w in dict.fromkeys(others)]


def _compile(specs: list[_Spec]) -> list[tuple[str, _Entry]]:
    """Normalise all patterns in one pass: joined by line breaks longer than MAX_GAP, so none touch."""
    if not specs:
        return []
    sep = "\n" * (MAX_GAP + 2)
    nz = normalize(sep.join(spec[0] for spec in specs))
    kind = tables().kind
    offsets = np.cumsum([0] + [len(spec[0]) + len(sep) for spec in specs])
    term_letter = np.searchsorted(nz.letter_pos, offsets).tolist()  # each term's first letter
    run_start = nz.run_start.tolist()
    run_of_letter = (np.searchsorted(nz.run_start, np.arange(len(nz.letters) + 1), side="right") - 1).tolist()
    letter_pos, letters = nz.letter_pos.tolist(), nz.letters.tolist()
    spaced = (nz.codes == SPACE) | (nz.codes == NEWLINE)
    out = []
    for k, (text, term, list_name, allow, inflected) in enumerate(specs):
        a, b = term_letter[k], term_letter[k + 1]
        assert b > a, f"term {text!r} normalises to nothing"
        r0, r1 = run_of_letter[a], run_of_letter[b - 1] + 1
        runs = tuple(run_start[r + 1] - run_start[r] for r in range(r0, r1))
        breaks = frozenset(run_of_letter[i] - r0 for i in range(a, b - 1)
                           if letter_pos[i + 1] - letter_pos[i] > 1 and spaced[letter_pos[i] + 1:letter_pos[i + 1]].any())
        chinese = allow and all(_letter_kind(c, kind) == UNSPACED for c in letters[a:b])
        edges = (_letter_kind(letters[a], kind), _letter_kind(letters[b - 1], kind))
        segment = "".join(map(chr, letters[a:b])) if not allow and UNSPACED in edges else ""
        entry = _Entry(term, list_name, allow, runs, breaks, edges[0] == WORD, edges[1] == WORD, chinese, segment,
                       inflected)
        out.append((nz.text[r0:r1], entry))
    return out


def _letter_kind(code: int, kind: np.ndarray) -> int:
    return int(kind[code]) if code >= FIRST_LETTER else WORD  # EXPAND letters are Latin (ﬁ, ß, ㎏)


def _word_char_mask(nz: Normalized, positions: np.ndarray) -> np.ndarray:
    """Whether each original position holds a letter or digit of a spaced script (-1, n: no)."""
    codes = nz.codes.take(positions, mode="clip")
    word = (codes >= FIRST_LETTER) & (tables().kind[codes] == WORD)
    word &= (positions >= 0) & (positions < len(nz.codes))
    expand = codes == EXPAND
    if expand.any():
        for i in np.flatnonzero(expand).tolist():
            word[i] = _word_char(nz, int(positions[i]))
    return word


def _word_char(nz: Normalized, position: int) -> bool:
    if position < 0 or position >= len(nz.codes):
        return False
    code = int(nz.codes[position])
    if code == EXPAND:
        code = ord(nz.original[position])
    elif code < FIRST_LETTER:
        return False
    return tables().kind[code] == WORD


def _boundary_prefilter(nz: Normalized, first: np.ndarray, end: np.ndarray,
                        word_start: np.ndarray, word_end: np.ndarray) -> np.ndarray:
    """Cheap rejection of hits inside words ("skill"), exact where the end runs are one letter long.

    Hits it keeps are verified one by one; it never drops a hit that verification would accept.
    """
    rs, lp = nz.run_start, nz.letter_pos
    first_single = (rs[first + 1] - rs[first]) == 1
    last_single = (rs[end] - rs[end - 1]) == 1
    start_pos = lp[rs[first]]
    end_pos = lp[rs[end] - 1] + 1
    k = len(first)
    word = _word_char_mask(nz, np.concatenate([start_pos - 1, end_pos]))
    bad_start = word_start & first_single & word[:k]
    bad_end = word_end & last_single & word[k:]
    return ~(bad_start | bad_end)


def _verify(entry: _Entry, nz: Normalized, cs: int, ce: int) -> tuple[int, int] | None:
    """The original [start, end) of a skeleton hit of `entry` at runs [cs, ce), or None if it fails."""
    rs = nz.run_start[cs:ce + 1].tolist()
    runs = entry.runs
    if any(rs[k + 1] - rs[k] < need for k, need in enumerate(runs)):
        return None
    lp = nz.letter_pos
    a0, a1, b0, b1 = rs[0], rs[1], rs[-2], rs[-1]
    # The first and last runs may be longer than the term needs ("bosss sex"): take the earliest
    # start and the latest end that sit on word boundaries.
    starts = [i for i in range(a0, a1 - runs[0] + 1)
              if not entry.word_start or not (_word_char(nz, int(lp[i]) - 1) or _after_apostrophe(nz, int(lp[i])))]
    ends = [j for j in range(b1 - 1, b0 + runs[-1] - 2, -1)
            if not entry.word_end or not _word_char(nz, int(lp[j]) + 1)]
    for i in starts:
        for j in ends:
            if ce - cs > 1 or j - i + 1 >= runs[0]:
                if _gaps_ok(entry, nz, cs, i, j):
                    return int(lp[i]), _past_padding(nz.original, int(lp[j]) + 1)
                return None
    return None


def _past_padding(original: str, end: int) -> int:
    """end moved past the padding right after it: the rest of a glyph ("fuc|<" is "fuck" and GLYPH_PADDING in
    the glyph reading, normalize.glyph_text), so that the match covers all of it."""
    while end < len(original) and original[end] == GLYPH_PADDING:
        end += 1
    return end


def _after_apostrophe(nz: Normalized, pos: int) -> bool:
    """Whether the letter at pos follows an apostrophe that follows a letter: "Mia's", "don't" go on one word."""
    return pos >= 2 and nz.original[pos - 1] in "'\u2019" and _word_char(nz, pos - 2)


_ASCII_MARKS = re.compile(r"[!-/:-@\[-`{-~]+")  # ASCII punctuation only: Chinese is written with full-width
_OPTION = re.compile(r"\s-{1,2}\Z")  # " -d", " --all": a command-line option starts after the gap
_NUMBER_BEFORE = re.compile(r"[0-9][ \u00a0]?\Z")  # "13.5 g", "5h": a letter right after a number is a unit


def _gaps_ok(entry: _Entry, nz: Normalized, cs: int, i: int, j: int) -> bool:
    """Whether the separators between skeleton letters i..j are an evasion rather than real breaks."""
    pos = nz.letter_pos[i:j + 1].tolist()
    if pos[-1] - pos[0] == j - i:
        return True  # no character between the letters
    kind = tables().kind
    cuts: list[tuple[int, bool, bool]] = []  # (letter index after which a gap cuts, natural?, a space?)
    for g in range(j - i):
        if pos[g + 1] - pos[g] <= 1:
            continue
        if pos[g + 1] - pos[g] - 1 > MAX_GAP:
            return False
        has = set(nz.codes[pos[g] + 1:pos[g + 1]].tolist())
        if NEWLINE in has:
            return False
        left, right = int(nz.letters[i + g]), int(nz.letters[i + g + 1])
        gap = nz.original[pos[g] + 1:pos[g + 1]]
        if _letter_kind(left, kind) == UNSPACED or _letter_kind(right, kind) == UNSPACED:
            if BREAK in has and not _ASCII_MARKS.fullmatch(gap):
                return False  # "吸毒。品", "毒，品": a clause ends; "假,钞" (half-width, no space) is an evasion
            continue
        if SPACE not in has and not (has == {MARK} and len(gap) == 1 and gap in "_-"):
            continue  # punctuation without a space: "k.i.l.l", "co-caine"; but "hero_in", "hero-in" are words
        if BREAK in has or STOP in has:
            return False
        run = int(np.searchsorted(nz.run_start, i + g, side="right")) - 1 - cs
        natural = run in entry.breaks  # the term has a space here too ("crystal meth", "kill -9")
        if not natural and _OPTION.search(gap):
            return False  # "ls -d tabs": an option, not a letter cut off
        if not natural and g == 0 and not _word_char(nz, pos[0] + 1) and _NUMBER_BEFORE.search(
                nz.original[max(pos[0] - 2, 0):pos[0]]):
            return False  # "13.5 g Hb": a unit after a number, then the next word
        cuts.append((i + g, natural, SPACE in has))
    return not _cut_into_words(nz, i, j, cuts, entry.inflected)


INFLECTED_TAIL = 4  # letters the last piece of an inflected word cut by spaces needs (or all pieces one letter)


def _cut_into_words(nz: Normalized, i: int, j: int, cuts: list[tuple[int, bool, bool]], inflected: int) -> bool:
    """Whether a term word is cut into ordinary English words rather than hidden by the cuts: its pieces are
    all ordinary words, written plainly, and where a space cuts it one of them is a function word ("the hero
    in", "pen is", "hero_in_view"; but "ass hole" and "mass acre" are compounds cut at their seam, "a$$ h0le"
    and "wh0 re" disguise their letters). Or the inflected word (english.py) is cut, not letter by letter, and
    its last piece, which holds the suffix, is short or an ordinary word: "naz is" is not "nazis", "k1ll y" not
    "killy"; "f u c k i n g" and "fu cking" hide their term."""
    if not any(not natural for _, natural, _ in cuts):
        return False
    pieces: list[str] = []
    start, word, word_start, spaced = i, 0, i, False
    for cut, natural, space in cuts + [(j, True, False)]:
        pieces.append(_letters_text(nz, start, cut))
        start = cut + 1
        spaced |= space and not natural
        if natural:
            if (len(pieces) > 1 and all(p in ORDINARY_WORDS for p in pieces)
                    and (not spaced or any(p in FUNCTION_WORDS for p in pieces))
                    and not _disguised(nz, word_start, cut)):
                return True
            if len(pieces) > 1 and word == inflected and any(len(p) > 1 for p in pieces) and (
                    len(pieces[-1]) < INFLECTED_TAIL or pieces[-1] in ORDINARY_WORDS):
                return True
            pieces = []
            word, word_start, spaced = word + 1, start, False
    return False


def _disguised(nz: Normalized, i: int, j: int) -> bool:
    """Whether any of letters i..j is written as something other than an ASCII letter: leet, a look-alike,
    a full-width letter (what a writer does to hide a word, not to write two)."""
    return any(not (c.isascii() and c.isalpha()) for c in (nz.original[p] for p in nz.letter_pos[i:j + 1].tolist()))


def _letters_text(nz: Normalized, i: int, j: int) -> str:
    return "".join(chr(c) if c >= FIRST_LETTER else "?" for c in nz.letters[i:j + 1].tolist())
