"""The stream scanner: however the output is cut, the same matches and masked text as one pass over it all."""

from __future__ import annotations

import random

import pytest

from tokenmill.moderation.lexicon import Lexicon, TermList, default_allow, default_lists, strict_lists
from tokenmill.moderation.scanner import UNSETTLED, StreamScanner

PIECES = [
    "k i l l", "kill the process", "hello world ", "毒 品", "大麻烦", "买K粉", "c0caine ", "ass", "as", "a$$hole ",
    "\n", "crystal meth", "kiiiill", "$", "5", "x", " ", "   ", "。", "as shole ", "杀人鲸", "skill ", "f.u.c.k ",
    "ethnic cleansing", "12345", "ｋｉｌｌ", "\u200b", "$ ", " h i t", "c.0.c", "1", "@", " @ ", "h3ll0", "買毒品",
    "the counter felt sticky ", "中文文本没有空格", "k", "i", "l",
    # the second reading (! and | as punctuation, 1 as l), leet chains, codes, Chinese words
    "k!i!l!l", "ki11", "sh!!t", "!", "|", "11", "@$$h0le", "A55 ", "M4", "毒ー品", "ー", "有毒品种", "病毒", "品",
    "种", "抑制毒性", "地雷管理", "杀人游戏", "去死海", "过去", "mass acre ",
    # digits, ! and | whose reading settles early: after a space, in a long run, far from other leet
    "Sure! Here", "1. Start ", "!! ", "wow!!!! ", "a|b", "!1", "In 1492, ", "(1)", "sh!", "i!l", "|| ",
    # Chinese word segmentation around a term (segment.py): 装傻|逼我 and 乌鸦|片刻 drop it, 傻逼 alone keeps it
    "装傻", "逼我", "乌鸦", "片刻", "早操", "你妈妈", "傻逼", "鸦片", "制冰（冰毒）", "操你妈妈", "小K粉丝", "吗",
    # the glyph reading (normalize.glyph_text): letters drawn with symbols, v for u, 9 for g
    "c|_|nt", "|<", "|_|", "\\/", "fv", "ck", "cv", "nt ", "9hb", "v", "6",
    # numbers, units, contractions and options that are not evasions
    "455 °F", "5 h 17", "13.5 g Hb", "Mia's hit", "ls -d tabs", "'s", " -", "SH17", "5-hit", "hero_in", "_", "-h",
    "fu\u00a2k", "\u00a2", "50\u00a2 ",
    # inflected forms (english.py): a suffix may come in a later chunk, or be an ordinary word after a space
    "fucking ", "ing", "ers", " in", "Naz is ", "raped", "rapped ", "assess ", "cooking meth", "killer whale", " y ",
    "5H1T-9902", "6HB-2", "20 ", "$5HIT", "H.3.R.0.1.N", "0.1", ".N", "R.",
    "cr@ck", " h3ad", "hero", " in", "h3ro", "@$$", " @$5 ", "$$",
    "r ! c ! n", " ! ", "r", " c", "$#!t", "#", "6.h.b", "a 5 hit", "$ a r 1 n",
    "|_|_", "|_", "dic|<", "ids", "打雷", "管他", "票务", "|2", "0|23", "\\/\\/", "|-|", "人头",
]


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    """Every shipped list, the opt-in strict ones ("kill", "ass") too."""
    return Lexicon([*default_lists(), *strict_lists()], default_allow())


def order(m):
    return (m.start, m.end, m.list_name, m.term)


def stream(lexicon: Lexicon, action: str, chunks: list[str]):
    scanner = StreamScanner(lexicon, action)
    out, matches = [], []
    for chunk in chunks:
        step = scanner.feed(chunk)
        out.append(step.text)
        matches += step.matches
        if step.blocked:
            return "".join(out), matches, True
    step = scanner.finish()
    out.append(step.text)
    matches += step.matches
    return "".join(out), matches, step.blocked


def random_split(text: str, rng: random.Random) -> list[str]:
    chunks, i = [], 0
    while i < len(text):
        k = rng.choice([1, 1, 2, 3, 4, 7, 16, 50])
        chunks.append(text[i:i + k])
        i += k
    return chunks


def test_mask_mode_equals_one_pass_for_random_splits(lexicon):
    rng = random.Random(20261201)
    for _ in range(300):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 25)))
        expected = lexicon.find(text)
        splits = [random_split(text, rng), list(text), [text]]
        for chunks in splits:
            out, matches, blocked = stream(lexicon, "mask", chunks)
            assert not blocked
            assert sorted(matches, key=order) == expected, (text, chunks)
            assert out == lexicon.mask(text, expected), (text, chunks)


def test_splits_inside_a_term_and_inside_chinese(lexicon):
    text = "先生，请买毒品和冰毒，然后 k i l l 他，还有 ｃ０ｃａｉｎｅ。"
    expected = lexicon.find(text)
    assert {m.term for m in expected} == {"毒品", "冰毒", "kill", "cocaine"}
    for cut in range(1, len(text)):
        out, matches, _ = stream(lexicon, "mask", [text[:cut], text[cut:]])
        assert sorted(matches, key=order) == expected and out == lexicon.mask(text, expected)


def test_a_symbol_that_a_later_letter_makes_leet_is_held(lexicon):
    # "$5" reads as no letter and a digit; "$5HIT" as "shit" from the "$" on: the "$" must not go out first
    out, matches, _ = stream(lexicon, "mask", list("$5HIT"))
    assert [(m.start, m.end) for m in matches] == [(0, 5)] and out == "*****"
    # a glyph that comes later ("|_|" for u) lends its letter to the 5, then the 5 to the $ and the @
    text = "@$5 |_|0"
    expected = lexicon.find(text)
    assert [m.term for m in expected] == ["ass"]
    assert stream(lexicon, "mask", list(text))[:2] == (lexicon.mask(text, expected), expected)


def test_block_mode_releases_nothing_of_the_match(lexicon):
    rng = random.Random(7)
    text = "Here is the recipe you asked for. First get some c0c@ine and then mix it. More text follows here."
    first = lexicon.find(text)[0]
    for _ in range(50):
        out, matches, blocked = stream(lexicon, "block", random_split(text, rng))
        assert blocked and first in matches
        assert text.startswith(out) and len(out) <= first.start


def test_clean_output_passes_through_unchanged(lexicon):
    text = "The skillful therapist assessed the class. 这真是个大麻烦。" * 5
    out, matches, blocked = stream(lexicon, "block", list(text))
    assert (out, matches, blocked) == (text, [], False)


def test_hold_back_is_about_the_longest_term():
    lex = Lexicon([TermList("t", ("cocaine", "heroin"))])
    scanner = StreamScanner(lex, "mask")
    held = []
    for ch in "plain words go by one character at a time and nothing is hidden " * 4:
        scanner.feed(ch)
        held.append(scanner.held_chars)
    # 7 letters for the longest term, the separators between them and the unsettled tail
    assert max(held[40:]) <= 7 + 3 + UNSETTLED


def test_hold_back_stays_bounded_on_runs_and_long_gaps(lexicon):
    scanner = StreamScanner(lexicon, "mask")
    for _ in range(2000):
        scanner.feed("a")
    assert scanner.held_chars < 2000
    for _ in range(2000):
        scanner.feed(" ")
    assert scanner.held_chars < 100


def test_scanner_misuse_is_refused(lexicon):
    with pytest.raises(ValueError, match="use one of block, mask"):
        StreamScanner(lexicon, "drop")
    scanner = StreamScanner(lexicon, "mask")
    scanner.finish()
    with pytest.raises(RuntimeError, match="new StreamScanner"):
        scanner.feed("more")


def test_a_hit_blocks_as_soon_as_the_next_letters_fix_it(lexicon):
    scanner = StreamScanner(lexicon, "block")
    assert not scanner.feed("buy heroin").blocked  # "heroine" is still possible
    step = scanner.feed(" now, please, right away")  # no allowlisted phrase holds "heroin": decided at once
    assert step.blocked and [m.term for m in step.matches] == ["heroin"]


def test_a_term_inside_an_allowlisted_phrase_waits_for_the_phrase(lexicon):
    scanner = StreamScanner(lexicon, "block")
    assert not scanner.feed("now kill the proc").blocked
    step = scanner.feed("ess and carry on with the rest of the work")
    assert not step.blocked and not scanner.finish().blocked
    scanner = StreamScanner(lexicon, "block")
    assert not scanner.feed("now kill the proc").blocked
    assert scanner.feed("rastinator, then go home and sleep well tonight").blocked


def test_after_a_block_the_stream_stays_blocked(lexicon):
    scanner = StreamScanner(lexicon, "block")
    step = scanner.feed("buy heroin now, please, right away")
    assert step.blocked and [m.term for m in step.matches] == ["heroin"]
    assert scanner.feed("more").blocked and scanner.feed("more").text == ""


def test_punctuation_and_numbers_do_not_hold_the_start_of_an_answer(lexicon):
    """An exclamation mark after a word, or a list number, settles as soon as the next character shows it is
    no letter: the answer's start goes out then, not a term's length later (time to first token)."""
    for tokens, sent_after in ((["Sure", "!", " Here", "'s", " a", " Python"], 3),
                               (["Hello", "!", " How", " can", " I"], 3),
                               (["1", ".", " Start", " by", " reading", " the", " docs"], 4)):
        scanner = StreamScanner(lexicon, "block")
        released = [scanner.feed(t).text for t in tokens]
        first = next(i for i, text in enumerate(released) if text) + 1
        assert first <= sent_after, (tokens, released)
        assert "".join(released) + scanner.finish().text == "".join(tokens)
    scanner = StreamScanner(lexicon, "block")  # a ! between letters may still be one: "k!ll" is held and caught
    first = scanner.feed("Then k!").text
    step = scanner.feed("ll him")
    end = step if step.blocked else scanner.finish()
    assert end.blocked and "k" not in first + step.text + end.text and [m.term for m in end.matches] == ["kill"]


def test_chinese_that_starts_no_term_goes_out_as_it_comes(lexicon):
    scanner = StreamScanner(lexicon, "block")
    assert [scanner.feed(c).text for c in "晚上好"] == ["晚", "上", "好"]
    scanner = StreamScanner(lexicon, "mask")  # a character that may start a term waits for the next one
    assert [scanner.feed(c).text for c in "毒品"] == ["", ""]
    assert scanner.finish().text == "**"
