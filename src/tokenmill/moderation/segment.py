"""Chinese word boundaries for term hits: is a term's reading the text's own, or does it run across words?

Chinese is written without spaces, so a short term can be the end of one word and the start of the
next: 装傻|逼我 holds 傻逼, 乌鸦|片刻 holds 鸦片, 芝麻|古法 holds 麻古. A lexicon hit whose term begins
or ends with a Chinese character is checked here: the letters around it (SEGMENT_CONTEXT skeleton runs
either side, up to a clause break) are cut into words by jieba's dictionary (rjieba, the Rust port;
no HMM, so no guessed words), with the lexicon's own Chinese terms added to that dictionary at
TERM_FREQ. If the best cut has a word that runs across the term's first or last character (it begins
before the term and ends inside it, or the other way round), the hit is dropped. Where the term is
the better reading (有|毒品|吗, 买|冰毒), or a longer word holds all of it (杀人放火), it stays.

The dictionary decides, so the rule is general rather than a list of words; `allow_zh_words.txt`
still holds the words where the dictionary's choice is wrong.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from functools import lru_cache

SEGMENT_CONTEXT = 4  # skeleton runs of context read on each side of a term hit
# The weight of a term in the word dictionary (jieba's counts: 的 ~318,000, 鸦片 730, 贱人 278, 冰毒 11).
TERM_FREQ = 10


class ChineseWords:
    """Word segmentation of short Chinese contexts with a lexicon's terms in the dictionary.

    Immutable once built (words are added only here), so `cuts` may be called from many threads.
    """

    def __init__(self, terms: Iterable[str]) -> None:
        import rjieba

        self._jieba = rjieba.Jieba()
        for term in terms:
            if any(c.isascii() for c in term):
                continue  # a term mixing scripts is cut at the change anyway ("k|粉"); its Chinese side decides
            if not self._jieba.has_word(term):
                self._jieba.add_word(term, TERM_FREQ, None)
        self._words = lru_cache(maxsize=WORDS_CACHE)(self._segment)  # per instance: freed with it

    def cuts(self, context: str, start: int, end: int) -> bool:
        """Whether the best segmentation of `context` has a word that runs across an edge of context[start:end]:
        one that starts before the term and ends inside it, or starts inside it and ends after it. A word
        that holds the whole term (杀人放火, 毒品走私) does not: the term is still read there."""
        return any(s < start < e < end or start < s < end < e for s, e in self._words(context))

    def _segment(self, context: str) -> tuple[tuple[int, int], ...]:
        return tuple((s, e) for _, s, e in self._jieba.tokenize(context, "default", False))


WORDS_CACHE = 65_536  # segmentations of contexts kept per term set
_shared: weakref.WeakValueDictionary[frozenset[str], ChineseWords] = weakref.WeakValueDictionary()
_lock = threading.Lock()


def chinese_words(terms: Iterable[str]) -> ChineseWords:
    """One ChineseWords per set of terms, shared by every lexicon with that set while one holds it (each holds
    jieba's dictionary, about 40 MB); a set no lexicon uses any more, after a reload, is freed."""
    key = frozenset(terms)
    with _lock:
        words = _shared.get(key)
        if words is None:
            words = ChineseWords(sorted(key))
            _shared[key] = words
        return words
