"""Text normalisation for lexicon matching: one function for terms and for the text they are sought in.

`normalize(text)` turns a string into a *skeleton*, the letters and digits the lexicon matches on,
and keeps the arrays that map every skeleton character back to the original string:

1. Per character (one precomputed table, so a numpy gather over the code points, not a Python loop):
   Unicode NFKC (full-width to half-width, ligatures, mathematical and circled letters), case folding,
   accents stripped, Cyrillic and Greek letters that look Latin mapped to that Latin letter (а→a, ο→o,
   Н→h, ...), a few other look-alikes (small capitals, dotless i, regional-indicator letters), and
   traditional Chinese characters mapped to simplified (OpenCC's character table, data/t2s.tsv).
2. Zero-width and format characters, combining marks and control characters are dropped (INVISIBLE).
   Spaces, punctuation and symbols are separators: they are removed from the skeleton but remembered,
   so that the lexicon can judge them (a space between single letters is an evasion, a full stop
   followed by a space is the end of a sentence).
3. Leetspeak, in context only: the digits 0 1 3 4 5 7 8 read as o i e a s t b, and the symbols @ $ € ¢
   as a s e c, when a Latin letter stands next to them ("h3r0in", "@ss", "$hit"), across punctuation
   ("c.0.c.a.i.n.e"), or across a space when that letter stands alone ("$ h i t", not "5 hit"; a lone
   "a" or "i" is a word and lends only where it is spelled out itself: "$ a r 1 n", not "a 5 hit");
   a run of one to three ! or | reads as i or l only between two letters ("k!ll", "sh!!t"), and a lone
   ! spelled out between lone letters ("r ! c ! n"). It runs in LEET_ROUNDS passes, so chains of three
   ("@$$h0le") resolve; then a word of leet symbols alone, with no letter in reach ("@$$": two of
   @ $ € ¢, three to eight characters, no price), reads as letters. One to three capitals followed only by
   one to four digits are a code (A55, M4, A380, SH17), not leet; so are part numbers (6HB-220), numbers
   of two digits or more (but in a dotted chain of letters: "H.3.R.0.1.N") and a digit before a hyphenated
   word ("5-hit"). So "2024", "$5", "5 hit points", "kill!" and "the A55" are left alone.
   Decision: leet is contextual rather than global, because a global digit map turns every number
   into letters and every "!" after a word into an "i", which costs word boundaries.
   Two readings (`readings`): where a 1, ! or | became a letter, a second reading takes ! and | as
   punctuation and 1 as l ("k!i!l!l", "ki11"); the lexicon matches both and reports the union.
   The katakana long-vowel mark ー between two Chinese characters is a separator ("毒ー品").
   A third reading (`glyph_text`) reads letters drawn with several symbols (|_| |< /\\ \\/ |\\| ...),
   # for h between leet characters ("$#!t"), v for u between consonants and 9 or 6 for g beside a
   letter or across a dot from one ("6.h.b"); the loose reading folds v, 6 and 9
   the same way and steps aside (None) where a multi-symbol glyph touches a letter.
4. Runs of one repeated character collapse to one ("kiiilll" → "kil"); the run lengths are kept so
   that the lexicon can still require "kill" to have two l's (so "kil" or "as" do not match "kill" or
   "ass"). A run longer than MAX_RUN letters is cut into runs of MAX_RUN.
5. A gap of more than MAX_GAP non-letters between two letters is a hard break: runs do not collapse
   across it and the lexicon matches nothing across it. With MAX_RUN this bounds how much text a
   match can cover, which bounds what a stream scanner must hold back.

`Normalized.text` is the collapsed skeleton (what the automaton runs over); `Normalized.span(i, j)`
maps skeleton positions [i, j) back to [start, end) in the original string (Python str indices).

`loose_skeleton(text)` is a cheaper, coarser reading for a pre-check: every exact skeleton, put
through `loose_form`, is a substring of it, so where the loose reading holds no term, no reading
does. Most text stops there (see lexicon.py).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).with_name("data")

MAX_GAP = 8  # non-letters between two letters beyond which they never join
MAX_RUN = 32  # a longer run of one letter is cut into runs of this length

# Codes below FIRST_LETTER in the per-character table are classes, not letters.
INVISIBLE = 0  # zero-width, format, combining, control: dropped, not a separator
SPACE = 1  # whitespace
MARK = 2  # punctuation and symbols: a separator that does not end a sentence
STOP = 3  # full stop and ellipsis: ends a sentence when a space follows
BREAK = 4  # , ; : ! ? 。 、: ends a clause, never inside a Chinese term
NEWLINE = 5  # line and paragraph breaks: nothing matches across them
AMBIG_FIRST = 8  # 8..12: leet symbols, resolved by context (see _AMBIG)
LEET_DIGIT_FIRST = 16  # 16..25: the digits that leetspeak uses, resolved by context
LEET_LAST = 25
EXPAND = 31  # one character that normalises to several letters (ﬁ, ß, ㎏)
FIRST_LETTER = 32

WORD = 1  # KIND of a letter of a script written with spaces (Latin, Greek, Cyrillic, digits, ...)
UNSPACED = 2  # KIND of a letter of a script written without spaces (Chinese, Japanese, Thai, ...)

# Cyrillic and Greek capitals are mapped before case folding: Н looks like H, its lower case н like n.
_UPPER_LOOKALIKES = dict(pair.split(":") for pair in (
    "А:a В:b Е:e К:k М:m Н:h О:o Р:p С:c Т:t У:y Х:x Ѕ:s І:i Ј:j Ү:y Һ:h Ӏ:l Ԁ:d Ь:b "  # Cyrillic
    "Α:a Β:b Ε:e Ζ:z Η:h Ι:i Κ:k Μ:m Ν:n Ο:o Ρ:p Τ:t Υ:y Χ:x Ϲ:c"  # Greek
).split())
_LOOKALIKES = dict(pair.split(":") for pair in (
    "а:a в:b е:e к:k м:m н:h о:o р:p с:c т:t у:y х:x ѕ:s і:i ї:i ј:j ԁ:d ԛ:q ԝ:w һ:h ӏ:l ь:b ѵ:v ү:y п:n "
    "α:a β:b γ:y ε:e η:n ι:i κ:k μ:u ν:v ο:o ρ:p τ:t υ:u χ:x ω:w ϲ:c ϳ:j "
    "ı:i ȷ:j ɑ:a ɡ:g ɩ:i ɪ:i ʟ:l ø:o ð:d đ:d ħ:h ł:l ŧ:t ƀ:b ɨ:i ʉ:u "
    "ᴀ:a ʙ:b ᴄ:c ᴅ:d ᴇ:e ɢ:g ʜ:h ᴊ:j ᴋ:k ᴍ:m ɴ:n ᴏ:o ᴘ:p ʀ:r ꜱ:s ᴛ:t ᴜ:u ᴠ:v ᴡ:w ʏ:y ᴢ:z"
).split())
_INVISIBLE_LETTERS = "\u115f\u1160\u3164\uffa0"  # Hangul fillers: letters by category, blank on screen
_NEWLINES = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_BREAKS = ",;:!?\u3002\u3001"  # NFKC already turned ，；：！？ into these
_STOPS = ".\u2026"
# symbol -> (letter, needs a letter on both sides)
_AMBIG = {"@": ("a", False), "$": ("s", False), "€": ("e", False), "\u00a2": ("c", False), "!": ("i", True),
          "|": ("l", True)}
_AMBIG_FALLBACK = {"!": BREAK}
LEET_REACH = 3  # characters a leet digit or symbol looks across for a letter
LEET_ROUNDS = 3  # passes of leet resolution: a chain of three symbols ("@$$h0le") resolves
# How far a character's normalisation depends on its neighbours, either side: LEET_ROUNDS passes of
# leet resolution, each looking LEET_REACH characters out and one more to see if a letter stands
# alone, plus one such step for the code rule (A55) and the long-vowel mark between Chinese.
REACH = (LEET_ROUNDS + 1) * (LEET_REACH + 1)
LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b"}

# Scripts written without spaces between words: no word boundaries there.
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x2E80, 0x2FDF), (0x3005, 0x3007),
    (0x3021, 0x3029), (0x3040, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA000, 0xA4CF),
    (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x323AF),
)
_TABLE_LIMIT = 0x40000
# Blocks whose code points are all letters that normalise to themselves (modulo traditional->simplified).
# Each block's pages are set in bulk; the block's ends must be on 256-code-point page boundaries
# or the remainder is covered one by one.
_PLAIN_LETTER_BLOCKS = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xAC00, 0xD7A3), (0x20000, 0x2A6DF))  # planes 4-13 are unassigned; tags and variation selectors are added below


@dataclass(frozen=True, slots=True)
class Tables:
    code: np.ndarray  # uint32[0x110000]: letter code point, or a class below FIRST_LETTER
    kind: np.ndarray  # uint8[0x110000]: WORD, UNSPACED or 0 for a code point used as a letter code
    expansions: dict[int, str]  # code point -> its letters, for code == EXPAND
    leet: np.ndarray  # uint32[32]: for a leet class code, the letter it stands for
    leet_alt: np.ndarray  # the same in the second reading: 1 reads as l
    both_sides: np.ndarray  # bool[32]: the leet symbol needs letters on both sides
    fallback: np.ndarray  # uint32[32]: what a leet class code is when it stays: its digit, or a class


def _load_t2s() -> dict[str, str]:
    table = {}
    for line in (DATA / "t2s.tsv").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            trad, simp = line.split("\t")
            table[trad] = simp
    return table


def _is_unspaced(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _UNSPACED_RANGES)


def _letters_of(ch: str, t2s: dict[str, str]) -> str:
    """The skeleton letters of one character: NFKC, casefold, accents off, look-alikes, simplified."""
    if ch in _UPPER_LOOKALIKES:
        return _UPPER_LOOKALIKES[ch]
    if not unicodedata.decomposition(ch) and ch.casefold() == ch:  # most letters, all of Chinese: fast
        c = t2s.get(ch) or _LOOKALIKES.get(ch, ch)
        return c if unicodedata.category(c)[0] in "LN" and c not in _INVISIBLE_LETTERS else ""
    text = unicodedata.normalize("NFKC", ch).casefold()
    if not text.isascii():
        bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
        text = unicodedata.normalize("NFC", bare)
    out = []
    for c in text:
        c = _LOOKALIKES.get(c, c)
        c = t2s.get(c, c)
        if unicodedata.category(c)[0] in "LN" and c not in _INVISIBLE_LETTERS:
            out.append(c)
    return "".join(out)


def _separator_class(ch: str) -> int:
    folded = unicodedata.normalize("NFKC", ch)
    cat = unicodedata.category(ch)
    if ch in _NEWLINES:
        return NEWLINE
    if ch.isspace() or cat == "Zs":
        return SPACE
    if cat in ("Mn", "Me", "Cf", "Cc") or ch in _INVISIBLE_LETTERS:
        return INVISIBLE
    if folded in _AMBIG:
        return AMBIG_FIRST + list(_AMBIG).index(folded)
    if folded and all(c in _STOPS for c in folded):
        return STOP
    if folded in _BREAKS:
        return BREAK
    return MARK


def _build_tables() -> Tables:
    t2s = _load_t2s()
    code = np.full(0x110000, MARK, dtype=np.uint32)
    kind = np.zeros(0x110000, dtype=np.uint8)
    expansions: dict[int, str] = {}
    category = unicodedata.category
    # The big blocks of plain letters (CJK ideographs, Hangul syllables) in bulk, the rest one by one.
    bulk = [(lo, hi) for lo, hi in _PLAIN_LETTER_BLOCKS if unicodedata.category(chr(hi)) != "Cn"]
    for lo, hi in bulk:
        code[lo:hi + 1] = np.arange(lo, hi + 1, dtype=np.uint32)
        kind[lo:hi + 1] = UNSPACED if _is_unspaced(lo) else WORD
    for trad, simp in t2s.items():
        code[ord(trad)] = ord(simp)
    skip = set()
    for lo, hi in bulk:
        skip.update(range(lo >> 8, (hi + 1) >> 8))  # whole 256-code-point pages inside the blocks
    ranges = [range(page << 8, (page + 1) << 8) for page in range(_TABLE_LIMIT >> 8) if page not in skip]
    ranges.append(range(0xE0000, 0xE01F0))
    for cp in (cp for r in ranges for cp in r):
        ch = chr(cp)
        cat = category(ch)
        if cat in ("Cn", "Cs", "Co"):
            continue  # unassigned, surrogate, private use: separators (MARK)
        letters = _letters_of(ch, t2s) if cat[0] in "LNS" or not unicodedata.is_normalized("NFKC", ch) else ""
        if ch in _AMBIG or unicodedata.normalize("NFKC", ch) in _AMBIG:
            letters = ""
        if not letters:
            code[cp] = _separator_class(ch)
            continue
        code[cp] = ord(letters[0]) if len(letters) == 1 else EXPAND
        if len(letters) > 1:
            expansions[cp] = letters
        first = ord(letters[0])
        kind[first] = UNSPACED if _is_unspaced(first) else WORD
        kind[cp] = kind[first]
    for i in range(26):  # regional indicator symbols 🇦..🇿, used to spell words
        code[0x1F1E6 + i] = ord("a") + i
    for ch in _INVISIBLE_LETTERS:
        code[ord(ch)] = INVISIBLE
    leet = np.zeros(32, dtype=np.uint32)
    fallback = np.zeros(32, dtype=np.uint32)
    both_sides = np.zeros(32, dtype=bool)
    for digit, letter in LEET_DIGITS.items():
        c = LEET_DIGIT_FIRST + int(digit)
        code[code == ord(digit)] = c  # every character that normalises to this digit (１, ¹, ...)
        leet[c], fallback[c] = ord(letter), ord(digit)
    for i, (symbol, (letter, both)) in enumerate(_AMBIG.items()):
        c = AMBIG_FIRST + i
        leet[c], fallback[c], both_sides[c] = ord(letter), _AMBIG_FALLBACK.get(symbol, MARK), both
    leet_alt = leet.copy()
    leet_alt[LEET_DIGIT_FIRST + 1] = ord("l")
    return Tables(code, kind, expansions, leet, leet_alt, both_sides, fallback)


_tables: Tables | None = None
_tables_lock = threading.Lock()


def tables() -> Tables:
    """The per-character tables, built once per process (about a quarter of a second)."""
    global _tables
    if _tables is None:
        with _tables_lock:
            if _tables is None:
                _tables = _build_tables()
    return _tables


@dataclass(frozen=True, slots=True)
class Normalized:
    """A text's skeleton and the arrays that tie it to the original string."""

    original: str
    text: str  # the collapsed skeleton the automaton runs over
    codes: np.ndarray  # uint32 per original character: its letter code, or its class (< FIRST_LETTER)
    letter_pos: np.ndarray  # int64 per skeleton letter before collapsing: its index in `original`
    letters: np.ndarray  # uint32 per skeleton letter before collapsing: its code
    run_start: np.ndarray  # int64, len(text) + 1: index into `letters` of each run's first letter
    ambiguous: bool = False  # a 1, ! or | near a Latin letter: the second reading may differ

    def span(self, start: int, end: int) -> tuple[int, int]:
        """[start, end) in the skeleton -> [start, end) in the original string, whole runs included."""
        assert 0 <= start < end <= len(self.text)
        return int(self.letter_pos[self.run_start[start]]), int(self.letter_pos[self.run_start[end] - 1]) + 1

    def run_length(self, i: int) -> int:
        return int(self.run_start[i + 1] - self.run_start[i])


# Leet resolution looks at a byte string of character classes, one byte a character: L a Latin
# letter, "." a separator other than a space, " " a space, x anything else (other letters, clause
# breaks, newlines, candidates not yet resolved).
_L, _DOT, _SP, _X = ord("L"), ord("."), ord(" "), ord("x")
_CLASS_BYTES = np.full(128, _X, dtype=np.uint8)
_CLASS_BYTES[97:123] = _L
_CLASS_BYTES[[INVISIBLE, MARK, STOP]] = _DOT
_CLASS_BYTES[SPACE] = _SP
_EXCLAIM, _BAR = AMBIG_FIRST + list(_AMBIG).index("!"), AMBIG_FIRST + list(_AMBIG).index("|")
_ONE = LEET_DIGIT_FIRST + 1
_EXCLAIM_B, _BAR_B = ord("!"), ord("|")
_CLASS_BYTES[_EXCLAIM], _CLASS_BYTES[_BAR] = _EXCLAIM_B, _BAR_B
# A capital letter followed only by one to four digits is a code (road A55, model M4, paper A4):
# its digits stay digits.
_CODE = re.compile(r"[A-Z]{1,3}[0-9]{1,4}(?![A-Za-z0-9])")
# The katakana long-vowel mark between Chinese characters is a separator ("毒ー品"), not a letter.
_HAN_MARK = re.compile("(?<=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])[\u30fc\uff70]{1,2}"
                       "(?=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")


def _in_code(text: str, p: int) -> bool:
    """Whether the digit at p is one of the digits of a code such as A55, SH17 or MDM4 (see _CODE)."""
    q = p
    while q > 0 and p - q < 4 and "0" <= text[q - 1] <= "9":
        q -= 1
    c = q
    while c > 0 and q - c < 3 and "A" <= text[c - 1] <= "Z":
        c -= 1
    if c == q:
        return False
    if c >= 1 and (text[c - 1].isascii() and text[c - 1].isalnum()):
        return False
    return _CODE.match(text, c) is not None


_PART_NUMBER = re.compile(r"[A-Z0-9]*[A-Z][A-Z0-9]*-[0-9]{2}")  # a capitals-and-digits part before "-" and a number


def _in_part_number(text: str, p: int) -> bool:
    """Whether the digit at p is in a part or tracking number: capitals and digits joined by a hyphen to a number
    of two or more digits ("6HB-220", "5H1T-9902"; at most 8 characters before the hyphen)."""
    if "-" not in text[p + 1:p + 9]:
        return False
    a = p
    while a > 0 and p - a < 8 and (text[a - 1].isascii() and (text[a - 1].isdigit() or text[a - 1].isupper())):
        a -= 1
    if a > 0 and text[a - 1].isascii() and text[a - 1].isalnum():
        return False
    m = _PART_NUMBER.match(text, a)
    return m is not None and m.end() - 3 - a <= 8


def _in_compound(text: str, p: int) -> bool:
    """Whether the digit at p is in a number of one to three digits joined by a hyphen to a word: "5-hit game",
    "10-day pass" (short, so that what decides it stays within REACH)."""
    a = p
    while a > 0 and "0" <= text[a - 1] <= "9":
        a -= 1
    b = p + 1
    while b < len(text) and "0" <= text[b] <= "9":
        b += 1
    word = text[b + 1:b + 3]
    return (b - a <= 3 and text[b:b + 1] == "-" and len(word) == 2 and word.isascii() and word.isalpha()
            and not (a > 0 and _LEET_BOUND.match(text[a - 1])))


def _stays_digit(text: str, p: int) -> bool:
    """Whether the digit at p is part of a code (A55, SH17), of a number (two or more digits, with . or ,
    between digits, that touch no Latin letter and no @ $ €: "455 °F", "5 h 17") or of a short number joined
    by a hyphen to a word ("5-hit"), or of a part number ("6HB-220"); such digits are never leet."""
    return _in_code(text, p) or _in_number(text, p) or _in_compound(text, p) or _in_part_number(text, p)


_NUMBER_REACH = 8  # a number is judged within this many characters of the digit (a longer one is a number)


def _in_number(text: str, p: int) -> bool:
    n = len(text)
    a = p
    while a > 0 and p - a < _NUMBER_REACH and (
            "0" <= text[a - 1] <= "9" or (text[a - 1] in ".," and a > 1 and "0" <= text[a - 2] <= "9")):
        a -= 1
    b = p + 1
    while b < n and b - p <= _NUMBER_REACH and (
            "0" <= text[b] <= "9" or (text[b] in ".," and b + 1 < n and "0" <= text[b + 1] <= "9")):
        b += 1
    digits = sum(1 for c in text[a:b] if "0" <= c <= "9")
    # a Latin letter (or @ $ €) next to it makes it leet, but for a decimal, where it is a unit ("4.5s"); so
    # does one after a dot next to it, in a dotted chain ("H.3.R.0.1.N"; not a hyphen: "BASS-455", "KI-11")
    decimal = "." in text[a:b]
    left_open = a > 0 and p - a < _NUMBER_REACH and (
        (not decimal and _LEET_BOUND.match(text[a - 1]))
        or (a > 1 and text[a - 1] == "." and _LEET_BOUND.match(text[a - 2])))
    right_open = b < n and b - p <= _NUMBER_REACH and (
        (not decimal and _LEET_BOUND.match(text[b]))
        or (b + 1 < n and text[b] == "." and _LEET_BOUND.match(text[b + 1])))
    return digits >= 2 and not left_open and not right_open


_LEET_BOUND = re.compile("[A-Za-z@$\u20ac]")


_WORD_LETTERS = "aAiI"  # letters that are words of their own ("a 5 hit combo")
_WORD_LETTERS_NEAR = re.compile(f"[{_WORD_LETTERS}]")


def _lends(cls: bytearray, p: int, step: int, text: str) -> bool:
    """Whether a Latin letter lends its context to position p from one side (step +1: right, -1: left):
    the nearest non-separator within LEET_REACH is a Latin letter, and if a space lies between, that
    letter stands alone ("$ h i t", not "5 hit"); an "a" or "i" standing alone is a word, and lends only
    where a letter standing alone follows it across a space in turn ("$ a r 1 n", not "a 5 hit")."""
    n = len(cls)
    spaced = False
    for d in range(1, LEET_REACH + 1):
        q = p + step * d
        if q < 0 or q >= n:
            return False
        c = cls[q]
        if c == _L:
            r = q + step
            alone = r < 0 or r >= n or cls[r] != _L
            return not spaced or (alone and (text[q] not in _WORD_LETTERS or _spelled_on(cls, q, step)))
        if c == _SP:
            spaced = True
        elif c != _DOT:
            return False
    return False


def _spelled_on(cls: bytearray, q: int, step: int) -> bool:
    """Whether, beyond the letter at q, one space and then a letter standing alone follow ("a r" in "$ a r 1 n")."""
    n = len(cls)
    r, s, t = q + step, q + 2 * step, q + 3 * step
    return (0 <= s < n and cls[r] == _SP and cls[s] == _L
            and (t < 0 or t >= n or cls[t] != _L))


def _tight(cls: bytearray, p: int) -> bool:
    """Whether the ! or | at p is in a run of one to three of it between two Latin letters ("sh!!t"), or is a
    lone ! spelled out between two letters that stand alone ("r ! c ! n")."""
    c, n = cls[p], len(cls)
    a = p
    while a > 0 and cls[a - 1] == c:
        a -= 1
    b = p + 1
    while b < n and cls[b] == c:
        b += 1
    if b - a <= 3 and a > 0 and b < n and cls[a - 1] == _L and cls[b] == _L:
        return True
    return c == _EXCLAIM_B and b - a == 1 and _spelled_on(cls, p, -1) and _spelled_on(cls, p, 1)


def _resolve_slow(text: str, codes: np.ndarray, cls: bytearray, made: np.ndarray, slow: np.ndarray,
                  leet: np.ndarray) -> int:
    """The candidates without a letter right next to them, one by one, in rounds; a candidate is looked at
    only when a Latin letter (first round) or a letter made in the round before is within reach.
    Returns the MADE_ flags of what became letters."""
    # First round, vectorised: `_lends` on each side, from the nearest non-separator ("solid").
    c = np.frombuffer(bytes(cls), dtype=np.uint8)
    n = len(c)
    solid = np.flatnonzero((c != _DOT) & (c != _SP))
    spaces = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(c == _SP, out=spaces[1:])
    right = solid.take(np.searchsorted(solid, slow, side="right"), mode="clip")
    left = solid.take(np.searchsorted(solid, slow, side="left") - 1, mode="clip")
    ok_right = (c[right] == _L) & (right > slow) & (right - slow <= LEET_REACH) & (
        (spaces[right] == spaces[slow]) | (c.take(right + 1, mode="clip") != _L) | (right == n - 1))
    ok_left = (c[left] == _L) & (left < slow) & (slow - left <= LEET_REACH) & (
        (spaces[slow] == spaces[left]) | (c.take(left - 1, mode="clip") != _L) | (left == 0))
    symbol = (c[slow] == _EXCLAIM_B) | (c[slow] == _BAR_B)
    first = (ok_right | ok_left) & ~symbol
    # near a lone "a" or "i", `_lends` decides again, one by one: they lend only where spelled out themselves
    new = [p for p in slow[first].tolist() if not ("0" <= text[p] <= "9" and _stays_digit(text, p))
           and (not _WORD_LETTERS_NEAR.search(text, max(p - LEET_REACH, 0), p + LEET_REACH + 1)
                or _lends(cls, p, 1, text) or _lends(cls, p, -1, text))]
    new += [p for p in slow[symbol].tolist() if _tight(cls, p)]
    pending = set(slow.tolist())
    reach = LEET_REACH + 1
    made_kinds = 0
    for round_ in range(LEET_ROUNDS):  # chains like "a$$" and "@$$h0le" resolve one link a round
        if round_:
            new = []
            for p in todo:
                if cls[p] == _EXCLAIM_B or cls[p] == _BAR_B:
                    ok = _tight(cls, p)
                else:
                    ok = ((_lends(cls, p, 1, text) or _lends(cls, p, -1, text))
                          and not ("0" <= text[p] <= "9" and _stays_digit(text, p)))
                if ok:
                    new.append(p)
        if not new:
            break
        for p in new:
            cls[p] = _L
            pending.discard(p)
        at = np.array(new, dtype=np.int64)
        kinds = codes[at]
        made_kinds |= _made_kinds(kinds)
        codes[at] = leet[kinds]
        todo = sorted({q for p in new for q in range(p - reach, p + reach + 1)} & pending)
    return made_kinds


MADE_ONE, MADE_SYMBOL = 1, 2  # flags: a 1, a ! or | became a letter


def _made_kinds(kinds: np.ndarray) -> int:
    return (MADE_ONE if (kinds == _ONE).any() else 0) | (MADE_SYMBOL if ((kinds == _EXCLAIM) | (kinds == _BAR)).any() else 0)


SMALL = 256  # below this many characters leet is resolved in plain Python (numpy calls cost more)


def _resolve_small(text: str, codes: np.ndarray, t: Tables, alt: bool) -> int:
    """`_resolve_leet` for a short text, one character at a time; the same result, step for step."""
    cand = np.flatnonzero((codes - AMBIG_FIRST) <= LEET_LAST - AMBIG_FIRST).tolist()
    if not cand:
        return 0
    values = codes.tolist()
    n = len(values)
    leet = t.leet_alt if alt else t.leet
    cls = bytearray(_CLASS_BYTES.take(np.minimum(codes, 127)).tobytes())  # codes from 128 on: _X, as 127
    if alt:  # second reading: ! and | are punctuation, never letters
        for p in cand:
            if values[p] == _EXCLAIM or values[p] == _BAR:
                cls[p] = _X
                codes[p] = t.fallback[values[p]]
        cand = [p for p in cand if values[p] != _EXCLAIM and values[p] != _BAR]
    made_kinds = 0
    quick, pending = [], []
    for p in cand:  # a letter right next to it, not a ! or |, not perhaps in a code
        k = values[p]
        before = values[p - 1] if p > 0 else -1
        after = values[p + 1] if p < n - 1 else -1
        if k == _EXCLAIM or k == _BAR or not (97 <= before <= 122 or 97 <= after <= 122) or (
                k >= LEET_DIGIT_FIRST and p > 0 and ("A" <= text[p - 1] <= "Z" or "0" <= text[p - 1] <= "9")):
            pending.append(p)
        else:
            quick.append(p)
    for p in quick:
        cls[p] = _L
        made_kinds |= MADE_ONE if values[p] == _ONE else 0
        codes[p] = leet[values[p]]
    for _ in range(LEET_ROUNDS):
        new = [p for p in pending if (_tight(cls, p) if cls[p] == _EXCLAIM_B or cls[p] == _BAR_B else
                                      (_lends(cls, p, 1, text) or _lends(cls, p, -1, text))
                                      and not ("0" <= text[p] <= "9" and _stays_digit(text, p)))]
        if not new:
            break
        for p in new:
            cls[p] = _L
            k = values[p]
            made_kinds |= MADE_ONE if k == _ONE else MADE_SYMBOL if k == _EXCLAIM or k == _BAR else 0
            codes[p] = leet[k]
        pending = [p for p in pending if cls[p] != _L]
    lonely = [p for p in pending if values[p] < _EXCLAIM]  # @ $ € ¢ that no letter made leet
    if len(lonely) > 1:
        for q in _symbol_words(text, codes, leet, lonely):
            cls[q] = _L
            made_kinds |= MADE_ONE if values[q] == _ONE else 0
    for p in cand:
        if cls[p] != _L:
            codes[p] = t.fallback[values[p]]
    return made_kinds


# A word written in leet symbols and digits alone, with no letter to lend it context: "@$$", "€@$" (two of
# @ $ € ¢ at least, three to eight characters, nothing of a word on either side, no price in it: "$$", "@$5",
# "5$5" and "$100" are not).
_SYMBOLS = "@$\u20ac\u00a2"
_SYMBOL_WORD_CHARS = frozenset(_SYMBOLS + "0134578")
_PRICE = re.compile("[$\u20ac][0-9]|[0-9][$\u20ac\u00a2]")


def _symbol_words(text: str, codes: np.ndarray, leet: np.ndarray, symbols: list[int]) -> list[int]:
    """Read as letters, in place, each symbol word that holds one of `symbols` (@ $ € ¢ that no letter made
    leet); return the positions read."""
    made: list[int] = []
    n, done = len(text), -1
    for k, p in enumerate(symbols):
        if p < done or not ((k and p - symbols[k - 1] < 8) or (k + 1 < len(symbols) and symbols[k + 1] - p < 8)):
            continue  # a symbol word holds two symbols
        a, b = p, p + 1
        while a > 0 and p - a < 8 and text[a - 1] in _SYMBOL_WORD_CHARS:
            a -= 1
        while b < n and b - a < 9 and text[b] in _SYMBOL_WORD_CHARS:
            b += 1
        done = b
        word = text[a:b]
        if (3 <= b - a <= 8 and not (a > 0 and _word_like(text[a - 1])) and not (b < n and _word_like(text[b]))
                and sum(word.count(c) for c in _SYMBOLS) >= 2 and not _PRICE.search(word)):
            for q in range(a, b):
                if AMBIG_FIRST <= codes[q] <= LEET_LAST:
                    codes[q] = leet[codes[q]]
                    made.append(q)
    return made


def _word_like(c: str) -> bool:
    return c.isalnum() or c == "_" or c in _SYMBOL_WORD_CHARS


def _resolve_leet(text: str, raw: np.ndarray, codes: np.ndarray, t: Tables, alt: bool) -> int:
    """Leet digits and symbols next to Latin letters become letters, in place; the rest fall back.

    Returns MADE_ONE and MADE_SYMBOL flags: whether a 1, a ! or | became a letter (only there, and
    within REACH of it, may the second reading differ).
    """
    if len(codes) <= SMALL:
        return _resolve_small(text, codes, t, alt)
    cand = np.flatnonzero((codes - AMBIG_FIRST) <= LEET_LAST - AMBIG_FIRST)
    if not len(cand):
        return 0
    n = len(codes)
    latin = (codes - 97) < 26
    count = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(latin, out=count[1:])
    near = (count[np.minimum(cand + REACH + 1, n)] - count[np.maximum(cand - REACH, 0)]) > 0
    live = cand[near]
    made_kinds = 0
    if len(live):
        kinds = codes[live]
        leet = t.leet_alt if alt else t.leet
        cls = bytearray(_CLASS_BYTES.take(np.minimum(codes, 127)).tobytes())
        symbol = (kinds == _EXCLAIM) | (kinds == _BAR)
        if alt and symbol.any():  # second reading: ! and | are punctuation, never letters
            for p in live[symbol].tolist():
                cls[p] = _X  # as an unresolved one in the first reading: blocks leet context
            live, kinds, symbol = live[~symbol], kinds[~symbol], symbol[~symbol]
        # The common case at once: a letter right next to it, not a ! or |, not perhaps in a code.
        before = codes.take(live - 1, mode="clip")
        after = codes.take(live + 1, mode="clip")
        adjacent = (((before - 97) < 26) & (live > 0)) | (((after - 97) < 26) & (live < n - 1))
        digit = (kinds - LEET_DIGIT_FIRST) <= 9
        raw_before = raw.take(live - 1, mode="clip")
        maybe_code = digit & (((raw_before - 65) < 26) | ((raw_before - 48) < 10))
        quick = adjacent & ~symbol & ~maybe_code
        made = live[quick]
        made_kinds = MADE_ONE if (kinds[quick] == _ONE).any() else 0
        codes[made] = leet[kinds[quick]]
        for p in made.tolist():
            cls[p] = _L
        slow = live[~quick]
        if len(slow):
            made_kinds |= _resolve_slow(text, codes, cls, made, slow, leet)
    rest = np.flatnonzero((codes - AMBIG_FIRST) <= LEET_LAST - AMBIG_FIRST)
    if len(rest):
        lonely = rest[codes[rest] < _EXCLAIM]  # @ $ € ¢ that no letter made leet
        if len(lonely) > 1:
            words = _symbol_words(text, codes, t.leet_alt if alt else t.leet, lonely.tolist())
            if words:
                made_kinds |= MADE_ONE if any(text[q] == "1" for q in words) else 0
                rest = rest[(codes[rest] - AMBIG_FIRST) <= LEET_LAST - AMBIG_FIRST]
    if len(rest):
        codes[rest] = t.fallback[codes[rest]]
    return made_kinds


def _expand(letter_pos: np.ndarray, letters: np.ndarray, original: str, t: Tables) -> tuple[np.ndarray, np.ndarray]:
    """Replace each EXPAND letter by its several letters, all at the same original index."""
    where = np.flatnonzero(letters == EXPAND).tolist()
    pos_parts, letter_parts, prev = [], [], 0
    for i in where:  # rare: slices of the arrays with the expansions spliced in (np.insert is slow)
        part = t.expansions[ord(original[letter_pos[i]])]
        pos_parts += [letter_pos[prev:i], np.full(len(part), letter_pos[i], dtype=letter_pos.dtype)]
        letter_parts += [letters[prev:i], np.array([ord(c) for c in part], dtype=letters.dtype)]
        prev = i + 1
    pos_parts.append(letter_pos[prev:])
    letter_parts.append(letters[prev:])
    return np.concatenate(pos_parts), np.concatenate(letter_parts)


def _has_long_run(same: np.ndarray) -> bool:
    """Whether MAX_RUN letters in a row are equal, given the k where letters k and k+1 are equal."""
    span = MAX_RUN - 1
    return len(same) >= span and bool(((same[span - 1:] - same[:len(same) - span + 1]) == span - 1).any())


def _cut_long_runs(run_start: np.ndarray, total: int) -> np.ndarray:
    bounds = np.append(run_start, total)
    lengths = np.diff(bounds)
    if lengths.max(initial=0) <= MAX_RUN:
        return run_start
    pieces = [np.arange(s, s + n, MAX_RUN) for s, n in zip(run_start, lengths)]
    return np.concatenate(pieces)


def normalize(text: str, first: int = 0, alt: bool = False) -> Normalized:
    """The skeleton of `text`; characters before index `first` are context only (read, not matched).

    alt: the second reading, where ! and | are punctuation and 1 reads as l (see `readings`).
    """
    t = tables()
    raw = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    codes = t.code[raw]
    if "\u30fc" in text or "\uff70" in text:
        for m in _HAN_MARK.finditer(text):
            codes[m.start():m.end()] = MARK
    made = _resolve_leet(text, raw, codes, t, alt)
    ambiguous = not alt and made != 0
    letter_pos = np.flatnonzero(codes[first:] >= EXPAND)
    if first:
        letter_pos += first
    letters = codes[letter_pos]
    if len(letters) and (letters == EXPAND).any():
        letter_pos, letters = _expand(letter_pos, letters, text, t)
    if not len(letters):
        return Normalized(text, "", codes, letter_pos, letters, np.zeros(1, dtype=np.int64), ambiguous)
    new_run = np.empty(len(letters), dtype=bool)
    new_run[0] = True
    np.not_equal(letters[1:], letters[:-1], out=new_run[1:])
    same = np.flatnonzero(~new_run[1:])  # k: letters k and k+1 are equal
    if len(same):
        far = (letter_pos[same + 1] - letter_pos[same]) > MAX_GAP + 1
        new_run[same[far] + 1] = True
    run_start = np.flatnonzero(new_run)
    if _has_long_run(same):
        run_start = _cut_long_runs(run_start, len(letters))
    skeleton = letters[run_start].tobytes().decode("utf-32-le")
    return Normalized(text, skeleton, codes, letter_pos, letters, np.append(run_start, len(letters)), ambiguous)


def readings(text: str, first: int = 0, glyphs: list[tuple[int, int, str]] | None = None) -> list[Normalized]:
    """The readings of `text` the lexicon matches: the first; where it has a 1, ! or | near a Latin
    letter, a second in which ! and | are punctuation and 1 is l ("k!i!l!l", "ki11"); where it draws
    letters with symbols or stand-ins, one with them read as letters (`glyph_text`: "c|_|nt", "fvck")."""
    nz = normalize(text, first)
    out = [nz, normalize(text, first, alt=True)] if nz.ambiguous else [nz]
    read = glyph_text(text, glyphs)  # glyphs: glyph_edits(text) when the caller has it ([] for none)
    if read is not None:
        out.append(normalize(read, first))
    return out


# Leetspeak that draws a letter with several symbols (|_| for u, |< for k, /\\ for a), or with a letter or
# digit that stands for another (v for u between consonants, 9 or 6 for g beside a letter), read in a
# reading of its own: each is replaced by its letter and zero-width spaces (dropped, not separators),
# so offsets do not move. A multi-symbol glyph counts only next to a Latin letter or leet character.
# Not read: "(" "<" "[" "{" for c and "+" for t: they are brackets and plus signs in most text (code above
# all), and reading them there would send most text past the quick check.
GLYPHS = {
    "|\\/|": "m", "/\\/\\": "m", "\\/\\/": "w", "|\\|": "n", "/\\/": "n", "|_|": "u", "\\_/": "u",
    "|-|": "h", "/-\\": "a", "/\\": "a", "\\/": "v", "|<": "k", "|{": "k", "|)": "d", "|3": "b", "|_": "l",
    "|_|_": "ll",  # "|<1|_|_": two l's, not u and a mark
    "|2": "r",  # only after a letter, a digit, @ or $ ("mu|2d3r", "0|23"; "|2x − 3|" is math)
}
_MULTI_GLYPH = re.compile("|".join(re.escape(g) for g in sorted(GLYPHS, key=len, reverse=True)))
_LETTER_GLYPHS = {"v": "u", "V": "u", "6": "g", "9": "g"}
LOOSE_LETTER_GLYPHS = {"v": "u", "6": "g", "9": "g"}  # how the loose reading folds them (see loose_skeleton)
_CONSONANTS = "bcdfghjklmnpqrstvwxzBCDFGHJKLMNPQRSTVWXZ"  # a v between two of these reads as u
_ASCII_CONSONANT = np.zeros(129, dtype=bool)  # index 128: every code from 128 on
_ASCII_CONSONANT[[ord(c) for c in _CONSONANTS]] = True
_ASCII_DOT = np.zeros(129, dtype=bool)
_ASCII_DOT[ord(".")] = True
_ASCII_LATIN = np.zeros(129, dtype=bool)
_ASCII_LATIN[[ord(c) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"]] = True


def _symbol_glyphs(text: str) -> list[tuple[int, int, str]]:
    found = _hash_glyphs(text) if "#" in text else []
    if not ("|" in text and _bar_pair(text) or "\\" in text and _backslash_pair(text)):
        return found
    candidates = [(m.start(), m.end(), GLYPHS[m.group()]) for m in _MULTI_GLYPH.finditer(text)]
    taken = [_touches_leet(text, s, e) for s, e, _ in candidates]
    grown = True
    while grown:  # a glyph right next to a taken one is taken too: "\/\/|-|0" is w, h and o
        grown = False
        for k in range(len(candidates)):
            if not taken[k] and ((k and taken[k - 1] and candidates[k - 1][1] == candidates[k][0]) or (
                    k + 1 < len(candidates) and taken[k + 1] and candidates[k][1] == candidates[k + 1][0])):
                taken[k] = grown = True
    found += [c for c, t in zip(candidates, taken) if t]
    return sorted(found) if len(found) > 1 else found


# "#" for h between two leet characters, one of them a digit or symbol ("$#!t"; not "page#section")
# "#" first in the pattern: a fast scan for it, then the look-arounds
_HASH_GLYPH = re.compile(r"#(?:(?<=[0-9@$!|]#)(?=[0-9A-Za-z@$!|])|(?<=[A-Za-z]#)(?=[0-9@$!|]))")


def _hash_glyphs(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), "h") for m in _HASH_GLYPH.finditer(text)]


def letter_glyphs_near(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """The v, 6 and 9 glyphs of `text` (see _letter_glyphs) inside the given [start, end] spans, in order."""
    found: set[tuple[int, int, str]] = set()
    for a, b in spans:
        lo = max(a - 2, 0)
        found.update((s, e, g) for s, e, g in _letter_glyphs(text, lo, b + 3) if a <= s <= b)
    return sorted(found)


def _letter_glyphs(text: str, lo: int = 0, hi: int | None = None) -> list[tuple[int, int, str]]:
    """v between two consonants, 6 or 9 beside a Latin letter (or a dot from one) but for a code's
    digits, in text[lo:hi] read in the whole text (vectorised: v is common)."""
    part = text[lo:hi]
    raw = np.frombuffer(part.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    small = np.minimum(raw, 128)
    vs = np.flatnonzero((small == 118) | (small == 86))
    digits = np.flatnonzero((small == 54) | (small == 57))
    if not (len(vs) or len(digits)):
        return []
    vs = vs[_ASCII_CONSONANT[_near(small, vs, -1)] & _ASCII_CONSONANT[_near(small, vs, 1)]]
    before, after = _near(small, digits, -1), _near(small, digits, 1)
    # beside a letter, or across a dot from one, in a chain: "6.h.b" (not a hyphen: "5H1T-9902" is a part number)
    beside = (_ASCII_LATIN[before] | _ASCII_LATIN[after]
              | (_ASCII_DOT[before] & _ASCII_LATIN[_near(small, digits, -2)])
              | (_ASCII_DOT[after] & _ASCII_LATIN[_near(small, digits, 2)]))
    if len(digits) > 1:  # a run of them is one glyph each: "f@99ot"
        run = np.cumsum(np.diff(digits, prepend=-2) != 1) - 1
        beside = np.bincount(run, weights=beside).astype(bool)[run]
    at = np.union1d(vs, digits[beside]).tolist()
    return [(i + lo, i + lo + 1, _LETTER_GLYPHS[part[i]]) for i in at
            if not (part[i] in "69" and _stays_digit(text, i + lo))]


def _near(small: np.ndarray, at: np.ndarray, k: int) -> np.ndarray:
    """small at the positions at + k, 128 (no ASCII character) outside it."""
    q = at + k
    return np.where((q >= 0) & (q < len(small)), small.take(q, mode="clip"), 128)


def _bar_pair(text: str) -> bool:
    i = text.find("|")
    while i >= 0:
        if text[i + 1:i + 2] in _AFTER_BAR:
            return True
        i = text.find("|", i + 1)
    return False


_AFTER_BAR = frozenset("_<{)32\\-")  # the second character of every glyph that starts with |


def _backslash_pair(text: str) -> bool:
    return "/\\" in text or "\\/" in text or "\\_" in text or "-\\" in text


def glyph_open_at_end(text: str) -> bool:
    """Whether the text ends in a v that the next character may still make a glyph (a consonant, then v:
    "fv" before "ck"), so that letters before it may yet start a term in the glyph reading."""
    return len(text) >= 2 and text[-1] in "vV" and text[-2] in _CONSONANTS


def has_symbol_glyph(text: str) -> bool:
    """Whether `text` draws a letter with symbols next to a letter ("|_|", "|<", "#" between leet)."""
    return bool(_symbol_glyphs(text))


def glyph_edits(text: str) -> list[tuple[int, int, str]]:
    """Where `text` draws a letter with symbols or a stand-in: (start, end, letter), in order, not overlapping."""
    edits = _symbol_glyphs(text) + _letter_glyphs(text)
    if len(edits) < 2:
        return edits
    out: list[tuple[int, int, str]] = []
    for edit in sorted(edits):
        if not out or edit[0] >= out[-1][1]:
            out.append(edit)
    return out


GLYPH_PADDING = "\u200b"  # what follows a glyph's letter in the glyph reading, so that it keeps the text's length


def glyph_text(text: str, edits: list[tuple[int, int, str]] | None = None) -> str | None:
    """`text` with letters drawn in symbols or stand-in letters read as letters ("c|_|nt" -> "cu" + two
    zero-width spaces + "nt", "fvck" -> "fuck", "9hb" -> "ghb"), the same length; None where it has none."""
    edits = glyph_edits(text) if edits is None else edits
    if not edits:
        return None
    out, pos = [], 0
    for start, end, letter in edits:
        out += [text[pos:start], letter, GLYPH_PADDING * (end - start - len(letter))]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _touches_leet(text: str, start: int, end: int) -> bool:
    """Whether the nearest visible character before `start` or from `end` is a Latin letter, a digit, @ or $
    (zero-width characters between do not count: "|<" + ZWSP + "ill"); for a glyph with a digit in it, a Latin
    letter ("|3itch"; "|3.5|" in a table is a number), and for "|2" one of them before it ("mu|2d3r", "0|23";
    "|2x − 3|" is an absolute value)."""
    before = start - 1
    while before >= 0 and text[before] in _ZERO_WIDTH:
        before -= 1
    after = end
    while after < len(text) and text[after] in _ZERO_WIDTH:
        after += 1
    near = (text[before] if before >= 0 else "") + text[after:after + 1]
    if text[start:end] == "|2":
        return before >= 0 and text[before].isascii() and (text[before].isalnum() or text[before] in "@$")
    if any(c.isdigit() for c in text[start:end]):
        return any(c.isascii() and c.isalpha() for c in near)
    return any(c.isascii() and (c.isalnum() or c in "@$") for c in near)


_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u00ad\ufeff")


def loose_form(skeleton: str) -> str:
    """A skeleton as the loose reading has it: leet digits as letters, l as i, v as u, 6 and 9 as g, no ー,
    repeats collapsed."""
    s = skeleton.translate(_LOOSE_MAP)
    return "".join(c for i, c in enumerate(s) if i == 0 or c != s[i - 1])


_LOOSE_MAP = ({ord(d): ("i" if c == "l" else c) for d, c in LEET_DIGITS.items()} | {ord("l"): "i", 0x30FC: None}
              | {ord(c): g for c, g in LOOSE_LETTER_GLYPHS.items()})
# The loose reading of a per-character code below 128: leet digit classes to letters, l to i.
_LOOSE_CODES = np.arange(128, dtype=np.uint32)
_LOOSE_CODES[ord("l")] = ord("i")
for _digit, _letter in LEET_DIGITS.items():
    _LOOSE_CODES[LEET_DIGIT_FIRST + int(_digit)] = ord(_LOOSE_MAP[ord(_digit)])
for _char, _letter in LOOSE_LETTER_GLYPHS.items():  # every v as u, 6 and 9 as g: the glyph reading's stand-ins
    _LOOSE_CODES[ord(_char)] = ord(_letter)


_loose_table: np.ndarray | None = None


def _loose_codes() -> np.ndarray:
    """_LOOSE_CODES over every code (the rest map to themselves): one gather instead of a masked one."""
    global _loose_table
    if _loose_table is None:
        table = np.arange(0x110000, dtype=np.uint32)
        table[:128] = _LOOSE_CODES
        _loose_table = table
    return _loose_table


@dataclass(frozen=True, slots=True)
class Loose:
    """The loose reading: its skeleton and, for each skeleton letter, where its run starts."""

    text: str
    codes: np.ndarray  # per original character, as the loose reading has it
    letter_pos: np.ndarray  # original index of each letter before collapsing
    run_start: np.ndarray  # len(text) + 1: index into letter_pos of each run's first letter

    def at_word_edge(self, k: int, step: int) -> bool:
        """Whether some letter of skeleton run k has no letter or digit of a spaced script before it
        (step -1) or after it (step +1): a word could start or end there."""
        kind = tables().kind
        for i in range(int(self.run_start[k]), int(self.run_start[k + 1])):
            q = int(self.letter_pos[i]) + step
            if q < 0 or q >= len(self.codes):
                return True
            c = int(self.codes[q])
            if c < FIRST_LETTER or kind[c] != WORD:
                return True
        return False


def loose_skeleton(text: str) -> Loose | None:
    """A quick reading that holds every term the exact readings hold (so "no term in it" means none in
    the text), or None where it cannot promise that (a ! or | that may read as a letter, ligatures).

    Every leet digit reads as its letter whatever its context (l reads as i, so 1 as i and as l are
    both covered); @ $ € ¢ read as letters when one stands right next to a Latin letter, as separators
    when no letter or leet character is near, and otherwise as `normalize` resolves them. ー is
    dropped, separators are dropped and repeats collapse with no limits. The exact skeletons, put
    through the same letter map (`loose_form`), are substrings of it.
    """
    if has_symbol_glyph(text):
        return None  # "c|_|nt": the glyph reading has letters where this one has separators
    t = tables()
    raw = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    codes = t.code[raw]
    symbols = np.flatnonzero((codes - AMBIG_FIRST) <= _BAR - AMBIG_FIRST)
    if len(symbols) and not _loose_symbols(text, raw, codes, symbols, t):
        return None
    codes = _loose_codes()[codes]
    if "\u30fc" in text or "\uff70" in text:
        codes[codes == 0x30FC] = MARK
    pos = np.flatnonzero(codes >= EXPAND)
    if not len(pos):
        return Loose("", codes, pos, np.zeros(1, dtype=np.int64))
    letters = codes[pos]
    if letters.min() == EXPAND:
        return None
    keep = np.empty(len(letters), dtype=bool)
    keep[0] = True
    np.not_equal(letters[1:], letters[:-1], out=keep[1:])
    starts = np.flatnonzero(keep)
    return Loose(letters[starts].tobytes().decode("utf-32-le"), codes, pos, np.append(starts, len(letters)))


def _code_at(codes: np.ndarray, p: int) -> int:
    return int(codes[p]) if 0 <= p < len(codes) else MARK


def _leet_or_letter(code: int) -> bool:
    """Whether a code is a Latin letter or a leet character that may still become one."""
    return 97 <= code <= 122 or AMBIG_FIRST <= code <= LEET_LAST


def _loose_symbols(text: str, raw: np.ndarray, codes: np.ndarray, symbols: np.ndarray, t: Tables) -> bool:
    """Settle @ $ € ¢ ! | for the loose reading, in place; False where only the full reading can."""
    n = len(codes)
    undecided, lonely = [], []
    made = -2
    for p in symbols.tolist():
        c = int(codes[p])
        if c == _EXCLAIM or c == _BAR:
            a, b = p, p + 1  # the run of this symbol around p
            while a > 0 and codes[a - 1] == c:
                a -= 1
            while b < n and codes[b] == c:
                b += 1
            before, after = _code_at(codes, a - 1), _code_at(codes, b)
            if b - a <= 3 and _leet_or_letter(before) and _leet_or_letter(after):
                return False  # perhaps between letters (or leet that may become letters): a letter
            if c == _EXCLAIM and b - a == 1 and before == SPACE and after == SPACE and _leet_or_letter(
                    _code_at(codes, a - 2)) and _leet_or_letter(_code_at(codes, b + 1)):
                return False  # perhaps spelled out between letters: "r ! c ! n"
            continue  # falls back below, with the other classes
        # next to a Latin letter of the text, not one this loop made ("a$$$$@": the full reading's rounds end)
        before = int(codes[p - 1]) if p > 0 and p - 1 != made else MARK
        after = int(codes[p + 1]) if p < n - 1 else MARK
        if 97 <= before <= 122 or 97 <= after <= 122:
            codes[p] = t.leet[c]
            made = p
        elif ((codes[max(p - REACH, 0):p + REACH + 1] - 97) < 26).any():
            undecided.append(p)
        else:
            lonely.append(p)
    # none next to a letter: a symbol word makes them letters as the full reading does (after its rounds)
    if lonely and undecided:
        lonely = sorted(lonely + undecided)
    if len(lonely) > 1 and _symbol_words(text, codes, t.leet, lonely):
        undecided = [p for p in undecided if codes[p] < FIRST_LETTER]
    # A letter in reach but not next to it: resolve as the full reading does, in a window around it
    # (a character's reading depends on REACH characters either side).
    clusters: list[list[int]] = []
    for p in undecided:
        if clusters and p - clusters[-1][-1] <= 4 * REACH:
            clusters[-1].append(p)
        else:
            clusters.append([p])
    for cluster in clusters:
        lo, hi = max(cluster[0] - REACH - 1, 0), min(cluster[-1] + REACH + 2, n)
        exact = t.code[raw[lo:hi]]
        if _resolve_leet(text[lo:hi], raw[lo:hi], exact, t, False) & MADE_SYMBOL:
            return False
        at = np.array(cluster, dtype=np.int64)
        codes[at] = exact[at - lo]
    rest = np.flatnonzero((codes - AMBIG_FIRST) <= _BAR - AMBIG_FIRST)
    codes[rest] = t.fallback[codes[rest]]
    return True


def skeleton(text: str) -> str:
    """The collapsed skeleton of `text` alone: what a term or a text is matched as."""
    return normalize(text).text


def kind_of(code: int) -> int:
    """WORD, UNSPACED, or 0 (not a letter) for a code from `Normalized.codes` or `.letters`."""
    return int(tables().kind[code]) if code >= FIRST_LETTER else 0
