"""English words for the lexicon: the ordinary-word list, and a term's regular inflections, so that a list
needs only the plain form: "fuck" also finds "fucking", "fucked", "fucker", "fuckers", "fucks", "fuckin";
"slut" finds "sluts" and "slutty"; "rape" finds "raping".

    [f.text for f in inflections("fuck")]       -> ["fucks", "fucked", "fucking", "fuckin", "fucker", ...]
    [f.text for f in inflections("cook meth")]  -> "cooks meth", "cooking meth", ..., "cook meths", ...

Each form is compiled as a pattern of its own that reports the plain term (lexicon.py), so it is matched
with every evasion the plain form is (leet, spacing, look-alikes) and the stream scanner needs nothing
new. Doubled consonants need no pattern of their own: runs of a letter collapse in the skeleton, so the
pattern "shity" finds "shitty" and "stabed" finds "stabbed". The same collapse lets a pattern find other
words: "raped" finds "rapped", "asses" finds "assess". `lookalikes` names the ordinary English words a form
finds that are not one of its own spellings; the lexicon allowlists them.

Decision: regular suffixes on the first and the last word, not a dictionary of English forms. A form that
is not a word ("ghosted gun") costs a pattern and nothing else. Words with no vowel (acronyms: "ghb",
"lsd") and words already inflected ("carding", "laundering") get no forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from tokenmill.moderation.normalize import DATA


def _load_ordinary() -> frozenset[str]:
    lines = (DATA / "ordinary_words.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in (line.strip() for line in lines) if w and not w.startswith("#"))


# SCOWL's English words up to size 35: two of them are two words, not one cut by a space ("hero in")
ORDINARY_WORDS = _load_ordinary()

# English function words (articles, pronouns, prepositions, conjunctions, auxiliaries, particles): a term cut
# into ordinary words reads as those words only where one of them is a function word ("the hero in", "to be
# head of", "pen is"); pieces that are all content words ("ass hole", "mass acre", "crack head") are how a
# compound is cut to hide it.
FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every no other such own all both either neither
i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
who whom whose which what where when why how whoever whatever
myself yourself himself herself itself ourselves yourselves themselves
in on at by for from to of with without into onto upon over under above below about across after
before behind beside besides between beyond during except inside near off out outside past since
through throughout till toward towards until up down via within against among around along per
and or but nor so yet if then than because although though while whether unless as
is am are was were be been being do does did done have has had having
can could may might must shall should will would ought
not never also just only even too very quite rather more most less least much many few
there here now again once ever still already yes oh re
""".split())

MIN_STEM = 3  # shorter words get only a plural ("ids")
_WORD = re.compile(r"[a-z]+\Z")
_VOWELS = frozenset("aeiouy")
_SUFFIXES = ("ed", "ing", "in", "er", "ers")  # after a word that does not end in e or a consonant and y


@dataclass(frozen=True, slots=True)
class Form:
    text: str  # the term with one word inflected
    word: int  # which word of the term (0: the first)
    spellings: tuple[str, ...]  # how that word is spelt: "shity" is spelt "shitty"


def inflections(term: str) -> list[Form]:
    """The inflected forms of `term` (its first and its last word; lower case), without the term itself."""
    words = term.split(" ")
    forms: dict[str, Form] = {}
    for k in dict.fromkeys([0, len(words) - 1]):
        for spellings in word_forms(words[k]):
            text = _with_word(words, k, spellings[0])
            forms.setdefault(text, Form(text, k, spellings))
        if k and len(words[k]) > MIN_STEM and words[k].endswith("s") and not words[k].endswith("ss"):
            text = _with_word(words, k, words[k][:-1])  # "lsd tabs" -> "lsd tab"
            forms.setdefault(text, Form(text, k, (words[k][:-1],)))
    forms.pop(term, None)
    return list(forms.values())


def _with_word(words: list[str], k: int, word: str) -> str:
    """The phrase `words` with its k-th word replaced by `word`."""
    return " ".join(words[:k] + [word] + words[k + 1:])


def word_forms(word: str) -> list[tuple[str, ...]]:
    """Regular inflections of one lower-case English word (-s, -ed, -ing, -in, -er, -ers, and -y where it
    does not end in e or y), each as its spellings: the plain one first, then one with the last consonant
    doubled where English doubles it."""
    if not _WORD.match(word) or not _VOWELS & set(word) or word.endswith(("ing", "ed")):
        return []
    if len(word) < MIN_STEM:
        return [(word + "s",)]  # only the plural of a short word: "fake ids"
    if word.endswith("e") and not word.endswith("ee"):
        stem = word[:-1]
        return [(f,) for f in (word + "s", word + "d", stem + "ing", stem + "in", word + "r", word + "rs")]
    if word.endswith("y") and word[-2] not in _VOWELS:
        stem = word[:-1]
        return [(f,) for f in (stem + "ies", stem + "ied", word + "ing", word + "in", stem + "ier", stem + "iers")]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return [(word + "es",)] + [(word + s,) for s in _SUFFIXES + ("y",)]
    double = word[-1] not in _VOWELS | {"w", "x"} and word[-2] in _VOWELS and word[-3] not in _VOWELS
    suffixes = _SUFFIXES if word.endswith("y") else _SUFFIXES + ("y",)
    return [(word + "s",)] + [(word + s, word + word[-1] + s) if double else (word + s,) for s in suffixes]


def lookalikes(form: Form) -> list[str]:
    """The form with its inflected word replaced by each ordinary English word that the same skeleton finds
    and that doubles a letter none of its spellings doubles ("raped": "rapped"; "asses": "assess"), so that
    allowlisting it hides none of the spellings."""
    words = form.text.split(" ")
    candidates = _by_collapse().get(_collapse(words[form.word]), ())
    if not candidates:
        return []
    spelt = [_runs(s) for s in form.spellings]
    others = [w for w in candidates if all(any(a > b for a, b in zip(_runs(w), r)) for r in spelt)]
    return [_with_word(words, form.word, w) for w in others]


def _collapse(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", word)


def _runs(word: str) -> list[int]:
    return [len(m.group()) for m in re.finditer(r"(.)\1*", word)]


@cache
def _by_collapse() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for w in ORDINARY_WORDS:
        out.setdefault(_collapse(w), []).append(w)
    return {k: tuple(sorted(v)) for k, v in out.items()}
