"""Streaming detokenization with stop strings, on the real SmolLM2 tokenizer."""

from __future__ import annotations

import random
import time

import pytest

from tokenmill.engine.detokenizer import IncrementalDetokenizer
from tokenmill.engine.tokenizer import Tokenizer

TEXT = (
    "The quick brown fox jumps over the lazy dog. 你好，世界！今天天气很好，我们去公园散步吧。"
    "Emoji time: 🎉👍🏽👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖.\n"
    "def add(a, b):\n\treturn a + b    # sum\n\n"
    "日本語のテキスト、한국어 텍스트, Ελληνικά, русский. Numbers: 12345678, 3.14159.\n"
    "<|im_start|>assistant\nSure! Here is the answer.<|im_end|>\nTHE END"
)


def stream(tokenizer: Tokenizer, ids: list[int], stop=(), chunk: int = 1, skip_special_tokens: bool = True):
    """Push `ids` `chunk` at a time; return (all text, the deltas, stop_reason)."""
    detok = IncrementalDetokenizer(tokenizer, prompt_ids=[1], stop=list(stop), skip_special_tokens=skip_special_tokens)
    deltas = []
    for i in range(0, len(ids), chunk):
        delta = detok.push(ids[i : i + chunk])
        deltas.append(delta.text)
        if delta.stopped:
            assert delta.stop_reason in stop
            assert detok.push(ids[i + chunk :]).text == "" and detok.finish() == ""
            return "".join(deltas), deltas, delta.stop_reason
    deltas.append(detok.finish())
    return "".join(deltas), deltas, detok.stop_reason


def first_stop(text: str, stops) -> tuple[str, str | None]:
    """Reference: the text before whichever stop string is complete first."""
    hits = [(text.find(s) + len(s), text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return text, None
    _, start, stop = min(hits)
    return text[:start], stop


@pytest.mark.parametrize("text", ["你好，世界！今天天气很好。", "🎉👍🏽👨‍👩‍👧‍👦🇫🇷❤️🤖", "mixed 中文 and 😀 emoji"])
def test_multibyte_characters_split_across_tokens(tokenizer: Tokenizer, text: str):
    ids = tokenizer.encode(text)
    partial = [i for i in ids if _is_partial_utf8(tokenizer.token_bytes(i))]
    assert partial, "the text should contain tokens that are only part of a character"
    out, deltas, _ = stream(tokenizer, ids)
    assert out == text
    assert all("\ufffd" not in d for d in deltas)


def _is_partial_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_unfinished_character_is_held_then_replaced_at_finish(tokenizer: Tokenizer):
    ids = tokenizer.encode("🎉")
    assert len(ids) > 1
    detok = IncrementalDetokenizer(tokenizer, stop=[])
    assert detok.push(ids[:-1]).text == ""  # nothing shown while the emoji is incomplete
    assert detok.finish() == "\ufffd"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("skip_special_tokens", [True, False])
def test_concatenated_deltas_equal_decode(tokenizer: Tokenizer, chunk: int, skip_special_tokens: bool):
    ids = tokenizer.encode(TEXT)
    out, _, reason = stream(tokenizer, ids, chunk=chunk, skip_special_tokens=skip_special_tokens)
    assert reason is None
    assert out == tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)


def test_random_token_slices_equal_decode(tokenizer: Tokenizer):
    # Slices start and end anywhere, so also inside a character: the U+FFFD must match decode() too.
    ids = tokenizer.encode(TEXT * 3)
    rng = random.Random(7)
    for _ in range(300):
        start = rng.randrange(len(ids))
        piece = ids[start : start + rng.randint(1, 60)]
        skip = rng.random() < 0.5
        out, _, _ = stream(tokenizer, piece, chunk=rng.randint(1, 5), skip_special_tokens=skip)
        assert out == tokenizer.decode(piece, skip_special_tokens=skip), piece


def test_stop_string_split_across_tokens(tokenizer: Tokenizer):
    text = "Here is the answer: forty-two. Anything else?"
    ids = tokenizer.encode(text)
    stop = "forty-two"
    assert not any(stop in tokenizer.decode([i]) for i in ids), "the stop string must span several tokens"
    out, deltas, reason = stream(tokenizer, ids, stop=[stop])
    assert (out, reason) == ("Here is the answer: ", stop)
    assert not any("forty" in d or "two" in d for d in deltas)


def test_stop_string_at_the_very_start(tokenizer: Tokenizer):
    out, deltas, reason = stream(tokenizer, tokenizer.encode("STOP right there, more text"), stop=["STOP"])
    assert (out, reason) == ("", "STOP")
    assert all(d == "" for d in deltas)


def test_text_after_the_stop_is_never_emitted(tokenizer: Tokenizer):
    ids = tokenizer.encode("one two three four five")
    detok = IncrementalDetokenizer(tokenizer, stop=[" three"])
    emitted = ""
    for i in ids:
        delta = detok.push([i])
        emitted += delta.text
        if delta.stopped:
            break
    assert detok.stopped and detok.stop_reason == " three"
    assert detok.push(tokenizer.encode(" six seven")).text == ""
    assert detok.finish() == ""
    assert emitted == "one two"


def test_stop_inside_one_token_drops_the_rest_of_it(tokenizer: Tokenizer):
    ids = tokenizer.encode(" information")
    assert len(ids) == 1
    out, _, reason = stream(tokenizer, ids, stop=["form"])
    assert (out, reason) == (" in", "form")


def test_several_stop_strings_first_to_appear_wins(tokenizer: Tokenizer):
    ids = tokenizer.encode("alpha beta gamma delta")
    assert stream(tokenizer, ids, stop=["delta", "gamma", "zeta"])[::2] == ("alpha beta ", "gamma")
    assert stream(tokenizer, ids, stop=["zeta", "eta"])[::2] == ("alpha b", "eta")


def test_overlapping_stop_prefixes(tokenizer: Tokenizer):
    ids = tokenizer.encode("xx abc yy")
    # "ab" is complete before "abc" could be, so it wins however the tokens arrive.
    for chunk in (1, 100):
        assert stream(tokenizer, ids, stop=["abc", "ab"], chunk=chunk)[::2] == ("xx ", "ab")
    # A held-back prefix of one stop string ("ab" of "abx") is released when it turns out otherwise.
    out, _, reason = stream(tokenizer, tokenizer.encode("xx abd yy"), stop=["abx", "bd"])
    assert (out, reason) == ("xx a", "bd")


def test_text_is_held_back_only_while_it_could_start_a_stop(tokenizer: Tokenizer):
    detok = IncrementalDetokenizer(tokenizer, stop=["</answer>"])
    assert detok.push(tokenizer.encode("Hello")).text == "Hello"
    assert detok.push(tokenizer.encode(" world </")).text == " world "  # "</" may begin the stop
    assert detok.push(tokenizer.encode("div>")).text == "</div>"
    assert detok.push(tokenizer.encode(" done </ans")).text == " done "
    assert detok.finish() == "</ans"  # the sequence ended for another reason: flush what was held


def test_hold_back_is_bounded_by_the_longest_stop(tokenizer: Tokenizer):
    stops = ["\n\nUser:", "###"]
    longest = max(map(len, stops))
    ids = tokenizer.encode("Answer: yes.\n\nUser is happy ## ok #")
    detok = IncrementalDetokenizer(tokenizer, stop=stops)
    emitted = ""
    for n, i in enumerate(ids, 1):
        emitted += detok.push([i]).text
        assert 0 <= len(tokenizer.decode(ids[:n])) - len(emitted) <= longest - 1
    assert emitted + detok.finish() == "Answer: yes.\n\nUser is happy ## ok #"


def test_special_tokens_and_stop_strings(tokenizer: Tokenizer):
    ids = tokenizer.encode("Sure.<|im_end|>\nmore")
    assert stream(tokenizer, ids, stop=["<|im_end|>"])[::2] == ("Sure.\nmore", None)  # skipped: not text
    assert stream(tokenizer, ids, stop=["<|im_end|>"], skip_special_tokens=False)[::2] == ("Sure.", "<|im_end|>")


def test_random_stops_match_reference_for_any_chunking(tokenizer: Tokenizer):
    rng = random.Random(99)
    ids = tokenizer.encode(TEXT)
    text = tokenizer.decode(ids)
    for _ in range(200):
        stops = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.7:
                start = rng.randrange(len(text))
                stops.append(text[start : start + rng.randint(1, 8)])
            else:
                stops.append(rng.choice(["zzz", "Q!", "\n\n\n", "。。"]))
        out, _, reason = stream(tokenizer, ids, stop=stops, chunk=rng.randint(1, 6))
        assert (out, reason) == first_stop(text, stops), stops


def test_byte_level_leading_space_kept(tokenizer: Tokenizer):
    # Byte-level BPE never drops a leading space, with or without prompt context.
    ids = tokenizer.encode(" Paris")
    assert IncrementalDetokenizer(tokenizer).push(ids).text == " Paris"
    assert IncrementalDetokenizer(tokenizer, prompt_ids=tokenizer.encode("Capital:")).push(ids).text == " Paris"


def test_push_cost_does_not_grow_with_length(tokenizer: Tokenizer):
    ids = tokenizer.encode(TEXT) * 200  # ~30k tokens
    detok = IncrementalDetokenizer(tokenizer, stop=["NEVER-SEEN-1", "never seen 2"])
    started = time.perf_counter()
    for i in ids:
        detok.push([i])
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0, f"{len(ids)} single-token pushes took {elapsed:.1f}s"


def test_sentencepiece_leading_space(sentencepiece_tokenizer: Tokenizer):
    tok = sentencepiece_tokenizer
    ids = tok.encode("Paris is nice 🎉", add_special_tokens=False)
    # At the start of a sequence the first space is dropped, as decode() does ...
    out, _, _ = _stream_plain(IncrementalDetokenizer(tok), ids)
    assert out == tok.decode(ids) == "Paris is nice 🎉"
    # ... but after a prompt it is a real space between words.
    out, _, _ = _stream_plain(IncrementalDetokenizer(tok, prompt_ids=tok.encode("Capital:")), ids)
    assert out == " Paris is nice 🎉"


def _stream_plain(detok: IncrementalDetokenizer, ids: list[int]):
    deltas = [detok.push([i]).text for i in ids] + [detok.finish()]
    assert all("\ufffd" not in d for d in deltas)
    return "".join(deltas), deltas, detok.stop_reason
