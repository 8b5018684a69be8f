"""The lexicon: evasions are found at their place in the original text, ordinary text is left alone."""

from __future__ import annotations

import random
import threading
import time

import pytest

from tokenmill.moderation.lexicon import Lexicon, Match, TermFileError, TermList, default_allow, default_lists, strict_lists


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    """Every shipped list, the opt-in strict ones ("kill", "ass") too."""
    return Lexicon([*default_lists(), *strict_lists()], default_allow())


def found(lexicon: Lexicon, text: str) -> list[tuple[str, str]]:
    return [(m.term, text[m.start:m.end]) for m in lexicon.find(text)]


@pytest.mark.parametrize("text, term, spelled", [
    ("I will k i l l you", "kill", "k i l l"),
    ("k.i.l.l them", "kill", "k.i.l.l"),
    ("k-i-l-l", "kill", "k-i-l-l"),
    ("gonna kil l him", "kill", "kil l"),
    ("buy c0caine", "cocaine", "c0caine"),
    ("ＣＯＣＡＩＮＥ cheap", "cocaine", "ＣＯＣＡＩＮＥ"),
    ("co\u200dca\u200dine", "cocaine", "co\u200dca\u200dine"),
    ("сосаinе", "cocaine", "сосаinе"),  # Cyrillic с о а е
    ("h3r0in for sale", "heroin", "h3r0in"),
    ("you a$$hole", "asshole", "a$$hole"),
    ("fuuuuuck", "fuck", "fuuuuuck"),
    ("you are an as shole", "asshole", "as shole"),
    ("买K粉", "K粉", "K粉"),
    ("哪里能买到毒 品", "毒品", "毒 品"),
    ("毒*品批发", "毒品", "毒*品"),
    ("買毒品", "毒品", "毒品"),
    ("幫人洗錢", "洗钱", "洗錢"),
    ("a crystal meth lab", "crystal meth", "crystal meth"),
    ("crystalmeth", "crystal meth", "crystalmeth"),
    ("H.3.R.0.1.N drop", "heroin", "H.3.R.0.1.N"),
    ("a$$ h0le", "asshole", "a$$ h0le"),  # two ordinary words, but written in disguise
    ("you're a massive ass hole", "asshole", "ass hole"),  # two content words: a compound cut at its seam
    ("your mom's a crack head", "crackhead", "crack head"),
    ("neighbour's a CR4CK H3AD", "crackhead", "CR4CK H3AD"),
    ("kiss my @$$ mod", "ass", "@$$"),
    ("出假,钞，一比十", "假钞", "假,钞"),
    ("$#!t server", "shit", "$#!t"),  # "#" for h between leet characters
    ("6.h.b drops", "ghb", "6.h.b"),  # 6 for g across a dot, in a chain
    ("r ! c ! n from castor beans", "ricin", "r ! c ! n"),  # a lone ! spelled out between lone letters
    ("how to make $ a r 1 n", "sarin", "$ a r 1 n"),
    ("f@99ot", "faggot", "f@99ot"),  # a run of 9s beside a letter is one glyph each
    ("just |<1|_|_ y0urs3lf", "kill yourself", "|<1|_|_ y0urs3lf"),  # |_ for l, |_|_ for ll
    ("dic|< pic", "dick", "dic|<"),  # a glyph at a match's end is covered whole
    ("i'll mu|2d3r you", "murder", "mu|2d3r"),  # |2 for r, after a letter
    ("that \\/\\/|-|0|23 stole", "whore", "\\/\\/|-|0|23"),  # glyphs next to glyphs
    ("ｆａｋｅ ｉｄｓ available", "fake id", "ｆａｋｅ ｉｄｓ"),  # a short word's plural
    ("你个傻B", "傻b", "傻B"),  # the pinyin initial of 逼, a listed spelling  # a lone "a" lends leet context inside spelled-out letters  # a half-width comma inside Chinese is no clause break: 。 and ， are  # a word of leet symbols alone: no letter lends it context  # digits in a dotted chain of letters are no decimal number
])
def test_evasions_are_found_at_the_evasive_spelling(lexicon, text, term, spelled):
    assert (term, spelled) in found(lexicon, text)


@pytest.mark.parametrize("text", [
    "This skill is useful", "a skillful player", "the ski llful? no",
    "We drove through Scunthorpe", "Assassin's Creed", "the class was about mass",
    "the therapist said so", "the method returns", "the heroine of the story",
    "the counter felt sticky", "the hero in the film", "the pen is mightier",
    "crystal. Meth is separate", "ki, ll", "5 hit points", "version 1.0.1",
    "as soon as possible",  # "as" is not "ass": the term needs two s
    "kil",  # nor is "kil" "kill"
    "请勿吸。毒蛇出没", "有没有毒，品质怎么样",  # a clause break inside a Chinese term
    "这真是个大麻烦",  # allowlisted
    "这次PK粉丝投票",  # K粉 must start at a word boundary of its Latin letter
    "tracking code 5H1T-9902", "SKU 6HB-220 pencil set",
    "street tacos @$5 every tuesday", "$$ money", "5$5",  # prices are no symbol words
    "landed a 5 hit combo",  # "a" is a word: it lends no leet context to the 5 across a space
    "page#section", "Bonjour ! Je suis là", "|2x − 3| = 5",
    "0 to 60 in 4.5s", "Model BASS-455 amp", "Track KI-11 on the vinyl",  # a decimal's unit; numbers after a hyphen
    "the dicky tummy is a virus", "Claus Sluter's sculptures",  # inflected forms with a harmless sense (allowlisted)  # part numbers: capitals and digits, a hyphen, a number
])
def test_ordinary_text_is_left_alone(lexicon, text):
    assert found(lexicon, text) == []


def test_word_boundaries_at_both_ends(lexicon):
    assert found(lexicon, "kill") == [("kill", "kill")]
    assert found(lexicon, "(kill)") == [("kill", "kill")]
    assert found(lexicon, "我想kill他") == [("kill", "kill")]  # next to Chinese is a boundary
    assert found(lexicon, "killjoy") == [] and found(lexicon, "skill") == []


@pytest.mark.parametrize("text, term, spelled", [
    ("what the fucking hell", "fuck", "fucking"),
    ("he got fucked", "fuck", "fucked"),
    ("you r3tarded?", "retard", "r3tarded"),
    ("sluts", "slut", "sluts"),
    ("that $lutty dress", "slut", "$lutty"),  # a doubled consonant needs no pattern of its own
    ("charged with raping her", "rape", "raping"),  # the e goes before -ing
    ("bitches", "bitch", "bitches"),
    ("they were cooking meth", "cook meth", "cooking meth"),  # the first word of a phrase
    ("two ecstasy pill", "ecstasy pills", "ecstasy pill"),  # a plural last word, singular
    ("f u c k i n g", "fuck", "f u c k i n g"),
    ("fu cking", "fuck", "fu cking"),
])
def test_inflected_forms_report_the_plain_term(lexicon, text, term, spelled):
    assert (term, spelled) in found(lexicon, text)


@pytest.mark.parametrize("text", [
    "they rapped all night", "rapping over the beat",  # "raped" and "raping" reach these through collapsed runs
    "please assess it",  # "asses"
    "Naz is here",  # the suffix's piece is an ordinary word of its own: not "nazis"
    "gh bin/ls",  # acronyms are not inflected ("ghbin")
    "the car dinged",  # nor are words already inflected ("cardinged")
    "killing the process",  # an allowlisted phrase covers its own inflections
])
def test_inflections_leave_other_words_alone(lexicon, text):
    assert found(lexicon, text) == []


def test_longer_run_at_the_edge_still_finds_the_word(lexicon):
    # the s run of "bosss" and "sex"-like starts: the match starts where the word does
    lex = Lexicon([TermList("t", ("sex",))])
    assert found(lex, "bosss sex") == [("sex", "sex")]


def test_allowlist_suppresses_matches_inside_it():
    lex = Lexicon([TermList("violence", ("kill",))], allow=["kill the process", "Scunthorpe"])
    assert found(lex, "kill the process now") == []
    assert found(lex, "then kill him") == [("kill", "kill")]
    assert found(lex, "k i l l the process") == []  # the allowlist is matched the same way


def test_offsets_and_lists(lexicon):
    text = "x k1ll y h3r0in"
    matches = lexicon.find(text)
    assert matches == [Match("kill", "violence", 2, 6), Match("heroin", "drugs", 9, 15)]


def test_mask_replaces_each_matched_character(lexicon):
    text = "I will k i l l you, c0caine!"
    assert lexicon.mask(text, lexicon.find(text)) == "I will ******* you, *******!"
    assert lexicon.mask("hello", []) == "hello"


def test_mask_merges_overlapping_matches():
    assert Lexicon.mask("abcdef", [Match("x", "l", 1, 4), Match("y", "l", 2, 5)]) == "a****f"


def test_term_file_comments_blank_lines_and_names(tmp_path):
    path = tmp_path / "weapons.txt"
    path.write_text("# weapons\n\nPipe Bomb\nghost gun  # a comment\npipe bomb\nPipe Bomb\n", encoding="utf-8")
    terms = TermList.from_file(path)
    assert terms.name == "weapons"
    assert terms.terms == ("Pipe Bomb", "ghost gun", "pipe bomb")
    lex = Lexicon([terms])
    assert {m.term for m in lex.find("a p i p e bomb")} == {"Pipe Bomb", "pipe bomb"}


def test_term_that_normalises_to_nothing_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("kill\n\n***\n", encoding="utf-8")
    with pytest.raises(TermFileError, match=r"bad\.txt:3: term '\*\*\*'"):
        TermList.from_file(path)


def test_missing_term_file_says_what_to_give(tmp_path):
    with pytest.raises(TermFileError, match="one term a line"):
        TermList.from_file(tmp_path / "missing.txt")


def test_empty_lexicon_finds_nothing():
    assert Lexicon([]).find("kill") == []


def test_ten_thousand_terms_build_quickly(lexicon):
    terms = tuple(f"term{chr(97 + i % 26)}{i:05d}x" for i in range(10_000))
    start = time.perf_counter()
    big = Lexicon([TermList("big", terms)])
    assert time.perf_counter() - start < 2.0  # ~0.1 s on one core; generous for a shared CI machine
    assert [m.term for m in big.find("say terma00000x and t e r m b 0 0 0 0 1 x")] == ["terma00000x", "termb00001x"]


def test_find_is_thread_safe(lexicon):
    texts = [f"line {i}: k i l l and 毒 品 and skill {i}" for i in range(200)]
    expected = [lexicon.find(t) for t in texts]
    results: dict[int, list] = {}

    def work(k: int) -> None:
        results[k] = [lexicon.find(t) for t in texts]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results.values())


@pytest.mark.parametrize("text, term, spelled", [
    ("s!h!i!t happens", "shit", "s!h!i!t"),  # ! as punctuation between letters (second reading)
    ("they will ki11 you", "kill", "ki11"),  # 1 as l (second reading)
    ("a load of sh!!t", "shit", "sh!!t"),  # a run of ! between letters
    ("you @$$h01e", "asshole", "@$$h01e"),  # a chain of three symbols
    ("冰ー毒", "冰毒", "冰ー毒"),  # the long-vowel mark between Chinese characters
    ("mas sacre", "massacre", "mas sacre"),  # "sacre" is not an ordinary word
])
def test_second_reading_runs_and_marks(lexicon, text, term, spelled):
    assert (term, spelled) in found(lexicon, text)


@pytest.mark.parametrize("text", [
    "病毒品系很多", "有毒品种要小心", "限制毒素扩散", "抑制毒性", "地雷管理条例", "去死海旅游", "过去死了很多人",
    "杀人游戏", "杀人蜂来了", "圣战士", "请假证明", "反诈骗宣传",  # Chinese words across or around a term
    "自杀人数下降了", "常见的解毒品种", "编制毒理学报告", "街边小贩毒舌得很",
    "外面打雷管他呢", "这个涂鸦片区晚上很热闹", "我们公司找外包代开发票务系统",
    "这游戏音画不同步枪声老是延迟", "这把5杀人头最多", "这种布面能水洗钱夹吗",
    "the mass acres of farmland",  # two ordinary words (SCOWL 35), the last an inflected form's suffix
    "to be head of sales", "the hero in the film", "the pen is mightier",  # ordinary words, one a function word
    "the M55 bus and the A55", "S1 and S2 heart sounds",  # codes, not leet
    "s! hit i1",  # a "!" that the second reading (made by the "1") takes as punctuation still ends a clause
])
def test_words_around_a_term_and_codes_are_left_alone(lexicon, text):
    assert found(lexicon, text) == []


def test_a_chinese_word_only_drops_the_term_it_runs_across(lexicon):
    assert found(lexicon, "有毒品吗") == [("毒品", "毒品")]  # 有毒 is not listed: "have drugs?"
    assert found(lexicon, "病毒品系和毒品") == [("毒品", "毒品")]
    assert found(lexicon, "他说要去杀人") == [("杀人", "杀人")] and found(lexicon, "小贩在贩毒") == [("贩毒", "贩毒")]


@pytest.mark.parametrize("text", [
    "别再装傻逼我说实话了", "一群乌鸦片刻之后就飞走了", "古时候贫贱人家的孩子", "芝麻古法压榨的香油", "小K粉丝见面会",
    "做完早操你妈妈就来接你", "新时代开发票务系统",  # a dictionary word runs across the term's first or last character
])
def test_words_of_the_sentence_that_run_across_a_term_drop_it(lexicon, text):
    assert found(lexicon, text) == []


@pytest.mark.parametrize("text, term", [
    ("你这个傻逼", "傻逼"), ("你这个傻傻逼", "傻逼"), ("操你妈妈", "操你妈"), ("有毒品吗", "毒品"), ("毒品种类很多", "毒品"),
    ("吸鸦片", "鸦片"), ("买K粉", "K粉"), ("杀人放火", "杀人"), ("毒品走私", "毒品"), ("制冰（冰毒）", "冰毒"),
    ("你去死吧", "去死"), ("代开发票，联系我", "代开发票"),  # the term is the best reading, or a longer word holds it
])
def test_a_term_read_as_a_word_of_its_sentence_stays(lexicon, text, term):
    assert term in {t for t, _ in found(lexicon, text)}


@pytest.mark.parametrize("text, term, spelled", [
    ("shut up you c|_|nt", "cunt", "c|_|nt"), ("|<ill yourself", "kill yourself", "|<ill yourself"),
    ("fvck this", "fuck", "fvck"), ("selling 9hb cheap", "ghb", "9hb"), ("/\\ssh0le", "asshole", "/\\ssh0le"),
    ("|<\u200bill them", "kill", "|<\u200bill"),  # a zero-width space after the glyph
    ("fu\u00a2k that", "fuck", "fu\u00a2k"),  # the cent sign for c, as $ for s
])
def test_letters_drawn_with_symbols_or_stand_ins_are_read(lexicon, text, term, spelled):
    assert (term, spelled) in found(lexicon, text)


def test_a_long_text_reads_glyphs_in_windows_around_them(lexicon):
    """Over QUICK_CHECK_LIMIT characters the glyph reading runs only around glyphs: what it finds there, and
    what the first reading finds far from any glyph, are found at their offsets in the whole text."""
    filler = "Envs and argv stay as they are in this long paste. " * 800  # 40,800 characters, v's everywhere
    text = filler + "you c|_|nt, " + filler + "fvck off and kill it"
    found_terms = {(m.term, text[m.start:m.end]) for m in lexicon.find(text)}
    assert found_terms == {("cunt", "c|_|nt"), ("fuck", "fvck"), ("kill", "kill")}


@pytest.mark.parametrize("text", ["I have a NVMe drive", "envs and argv", "a || b", "x | y", "in 1990 we had 9 hosts"])
def test_the_glyph_reading_leaves_ordinary_text_alone(lexicon, text):
    assert found(lexicon, text) == []


@pytest.mark.parametrize("text", [
    "Set the oven to 425 °F.", "Flight time 7 h 35 min", "Hb 12.9 g Hb per dL",  # numbers and units, not leet
    "Tom's hit song", "that's hit and miss",  # an apostrophe's letter belongs to the word before it
    "run ls -d tabs/", "use ki -ll",  # a command-line option starts a new word
    "take the GH17 bus", "MDM2 inhibitors", "a 5-hit night", "hero_in_view = True",  # codes, compounds, snake_case
    "/blog/the-hero-in-us", "mass-acre farms",  # a hyphen between two ordinary words joins words, not letters
])
def test_numbers_units_contractions_and_options_are_not_evasions(lexicon, text):
    assert found(lexicon, text) == []


def test_quick_check_agrees_with_the_exact_readings_on_random_leet(lexicon):
    """The quick check settles @ and $ over windows of REACH + 1 characters: random leet-heavy texts must find
    the same matches with it as without it."""
    exact = Lexicon([*default_lists(), *strict_lists()], default_allow())
    exact._prefilter = None
    pieces = ["$187 ", " a $", "$5", "@", "€1", "a $ 5", "1 a", " i $", "$ h", "5", "$$", "@ 4 ", "x$", " $ ", "0",
              "4", "h", "i t", " s", "k i l l", "c0caine", "a$$hole ", "!", "|", "1", "sh!t", "c|_|nt", "fvck", "9hb",
              "hello world ", "毒 品", "\n", "ass", "5 h 17", "kill the process"]
    rng = random.Random(20261126)
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        assert lexicon.find(text) == exact.find(text), text


def test_quick_check_agrees_with_the_exact_readings(lexicon):
    exact = Lexicon([*default_lists(), *strict_lists()], default_allow())
    exact._prefilter = None  # every text through the exact readings
    texts = ["price $50 for a$$ now", "B!7CH", "wow!! nice", "x | y", "毒ー品", "ﬁne k1ll", "A55 road", "this is it",
             "ghost gun", "the hero in", "s!h!i!t", "ki11 @ 5", "Ｈ３ＲＯＩＮ", "杀人游戏里杀人", "c|_|nt", "fvck",
             "9hb", "|<ill"]
    for text in texts:
        assert lexicon.find(text) == exact.find(text), text


def test_lexicons_with_the_same_chinese_terms_share_one_segmenter_freed_with_the_last():
    """Each segmenter holds jieba's dictionary (~40 MB): reloads must not keep the old term sets' ones alive."""
    import gc

    from tokenmill.moderation import segment

    terms = TermList("reload", ("冰毒", "测试用词"))
    first, second = Lexicon([terms]), Lexicon([terms])
    assert first._words is second._words and first.find("一群乌鸦买冰毒") != []
    key = frozenset(["冰毒", "测试用词"])
    assert key in segment._shared
    del first, second
    gc.collect()
    assert key not in segment._shared
