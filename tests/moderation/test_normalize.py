"""Normalisation for the lexicon: one skeleton for the many spellings of a word, mapped back to the original."""

from __future__ import annotations

import pytest

from tokenmill.moderation.normalize import MAX_GAP, MAX_RUN, loose_form, loose_skeleton, normalize, readings, skeleton


@pytest.mark.parametrize("spelling", [
    "kill", "KILL", "Kill", "ｋｉｌｌ", "ＫＩＬＬ",  # case, full width
    "k\u200bi\u200dl\u2060l", "ki\u00adll", "k\u0336i\u0336l\u0336l\u0336",  # zero-width, soft hyphen, strike-through
    "кill", "kіll", "ΚΙLL", "kιll",  # Cyrillic к і, Greek Κ Ι ι
    "𝐤𝐢𝐥𝐥", "ⓚⓘⓛⓛ", "🇰🇮🇱🇱", "ᴋɪʟʟ",  # mathematical, circled, regional indicators, small capitals
    "k1ll", "k!ll",  # leetspeak
    "kiiiilllll", "kkkill",  # repeats
    "k i l l", "k.i.l.l", "k-i-l-l", "k_i_l_l", "k*i*l*l", "k♥i♥l♥l",  # separators
])
def test_spellings_of_one_word_share_a_skeleton(spelling):
    assert skeleton(spelling) == skeleton("kill") == "kil"


def test_accents_are_stripped_and_ligatures_expanded():
    assert skeleton("cöcaïne") == skeleton("cocaine")
    assert skeleton("ﬁrearm") == skeleton("firearm")
    assert skeleton("Straße") == skeleton("strasse")


def test_traditional_and_japanese_forms_become_simplified():
    assert skeleton("買毒品") == "买毒品"
    assert skeleton("槍支") == "枪支"
    assert skeleton("麻薬") == "麻药"  # shinjitai 薬 -> 藥 -> 药


def test_chinese_separators_are_dropped_but_characters_kept():
    assert skeleton("毒 品") == skeleton("毒*品") == skeleton("毒　品") == "毒品"


def test_leetspeak_only_next_to_letters():
    assert skeleton("h3r0in") == "heroin"
    assert skeleton("@ss") == skeleton("a$$") == "as"
    assert skeleton("$hit") == "shit"
    assert skeleton("c.0.c.a.1.n.e") == "cocaine"  # across punctuation
    assert skeleton("$ h i t") == "shit"  # across spaces, to single letters
    assert skeleton("5 hit") == "5hit"  # not to a word
    assert skeleton("2024") == "2024"
    assert skeleton("costs $5") == "costs5"
    assert skeleton("kill!") == "kil"  # a closing "!" is punctuation, not an i


def test_span_maps_skeleton_back_to_original_characters():
    text = "buy ｃ0c\u200baine now"
    nz = normalize(text)
    i = nz.text.index("cocaine")
    start, end = nz.span(i, i + len("cocaine"))
    assert text[start:end] == "ｃ0c\u200baine"


def test_span_covers_whole_runs():
    text = "so kiiiilll!"
    nz = normalize(text)
    i = nz.text.index("kil")
    start, end = nz.span(i, i + 3)
    assert text[start:end] == "kiiiilll"
    assert [nz.run_length(i + k) for k in range(3)] == [1, 4, 3]


def test_expansion_keeps_original_offsets():
    text = "a ﬁne day"
    nz = normalize(text)
    i = nz.text.index("fine")
    assert nz.span(i, i + 4) == (2, 5)


def test_a_long_gap_is_a_hard_break_for_runs():
    near = normalize("l" + " " * MAX_GAP + "l")
    far = normalize("l" + " " * (MAX_GAP + 1) + "l")
    assert near.text == "l" and far.text == "ll"


def test_very_long_runs_are_cut():
    assert normalize("b" + "a" * MAX_RUN + "c").text == "bac"
    assert normalize("b" + "a" * (MAX_RUN + 1) + "c").text == "baac"


def test_context_before_first_is_read_but_not_matched():
    nz = normalize("xyz k1ll", first=4)
    assert nz.text == "kil"
    assert nz.span(0, 3) == (4, 8)


def test_empty_and_separator_only_text():
    assert normalize("").text == ""
    assert normalize(" .,!?\u200b\n").text == ""


def test_exclamation_and_bar_runs_between_letters_read_as_letters():
    assert skeleton("sh!!t") == "shit"
    assert skeleton("k!!ll") == skeleton("ki||l") == "kil"
    assert skeleton("wow!! nice") == "wownice"  # after a word, a run of ! is punctuation


def test_second_reading_takes_bang_as_punctuation_and_one_as_l():
    assert [r.text for r in readings("k!i!l!l")] == ["kilil", "kil"]
    assert [r.text for r in readings("ki11")] == ["ki", "kil"]
    assert [r.text for r in readings("kill 2024")] == ["kil2024"]  # nothing ambiguous: one reading


def test_chains_of_three_leet_symbols_resolve():
    assert skeleton("@$$h0le") == "ashole"


def test_capital_and_digits_is_a_code_not_leet():
    assert skeleton("A55") == "a5"
    assert skeleton("M4 and A1") == "m4anda1"
    assert skeleton("a55") == "as"  # lower case: leet as before
    assert skeleton("SH1T") == "shit"  # letters after the digits: not a code


def test_long_vowel_mark_between_chinese_is_a_separator():
    assert skeleton("毒ー品") == skeleton("毒ｰ品") == "毒品"
    assert skeleton("コーヒー") == "コーヒー"  # in katakana it is a letter


@pytest.mark.parametrize("text", [
    "plain words", "c0caine", "$5 for a$$", "B!7CH", "毒ー品", "k!ll", "ﬁne", "A55", "x $ y", "sh!!t", "ki11",
])
def test_loose_reading_holds_every_exact_skeleton(text):
    loose = loose_skeleton(text)
    if loose is not None:
        for reading in readings(text):
            assert loose_form(reading.text) in loose.text


def test_short_and_long_texts_resolve_leet_alike(monkeypatch):
    import random

    import tokenmill.moderation.normalize as nm
    rng = random.Random(5)
    pieces = ["k1ll", " ", "$", "5", "@", "a", "x", "1", "!", "|", "A55", "sh!!t", "h3r0in", ".", "毒", "l", "0", "€", ", "]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    small = [[(r.text, r.ambiguous) for r in readings(t)] for t in texts]
    monkeypatch.setattr(nm, "SMALL", -1)  # every text through the numpy path
    assert [[(r.text, r.ambiguous) for r in readings(t)] for t in texts] == small
