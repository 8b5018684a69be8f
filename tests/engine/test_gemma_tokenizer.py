"""Gemma 3's SentencePiece tokenizer read from its GGUF: the same ids as transformers, and text back intact."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tokenmill.engine.detokenizer import IncrementalDetokenizer
from tokenmill.engine.sentencepiece import sentencepiece_backend
from tokenmill.engine.tokenizer import ChatTemplateError, Tokenizer, load_tokenizer
from tokenmill.modelstore.store import resolve_model

transformers = pytest.importorskip("transformers")

TEXTS = [
    "The capital of France is",
    "Hello, world! How are you today?",
    "请用一句话介绍一下长城。",
    "中文和English混合, 数字12345。",
    "😀👍🏽 🤖 👩‍💻 family: 👨‍👩‍👧‍👦",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "for (int i = 0; i < 10; ++i) {\n\tprintf(\"%d\\n\", i);\n}",
    " leading space",
    "   three leading spaces",
    "trailing space ",
    "trailing spaces   ",
    "multiple     spaces  between    words",
    "line one\nline two\n\nafter a blank line\n\n\n",
    "tabs\there\t\tand\t\t\tthere",
    "\r\nwindows line ending\r\n",
    "Ünïcödé façade naïve — “quotes” … ½ ™",
    "مرحبا بالعالم Привет, мир! こんにちは世界 한국어 텍스트",
    "<div>html tags</div> and <table><tr><td>cells</td></tr></table>",
    "rare characters 𠀋 𪚥 ꙮ and a nul \x00 byte",
    "",
    " ",
    "\n",
]
# characters the vocabulary lacks: each must come out as its UTF-8 bytes, <0xXX> tokens
OUTSIDE_VOCAB = ["𠀋", "𪚥", "ꙮ", "\U0010ffff"]


@pytest.fixture(scope="module")
def gemma_path() -> Path:
    return resolve_model("gemma-3-270m").path


@pytest.fixture(scope="module")
def gemma(gemma_path: Path) -> Tokenizer:
    return load_tokenizer(gemma_path)


@pytest.fixture(scope="module")
def reference(gemma_path: Path):
    """transformers' own tokenizer built from the same GGUF file."""
    return transformers.AutoTokenizer.from_pretrained(gemma_path.parent, gguf_file=gemma_path.name)


def _random_texts(count: int) -> list[str]:
    rng = random.Random(0)
    pieces = [" ", "  ", "\n", "\t", "\n\n", "the", " of", "ing", "Hello", "你", "好", "世界", "😀", "🏽", "é",
              "e\u0301", "<div>", "</div>", "<start_of_turn>", "<bos>", "▁", "12", "3.14", "...", "—", "ß", "ﬁ",
              "\u200b", "𠀋", "http://x.y/z?q=1", "<0x0A>", "[multimodal]"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 20))) for _ in range(count)]
    for _ in range(count // 2):  # random code points, surrogates excluded
        points = (rng.randint(32, 0x2FFFF) for _ in range(rng.randint(1, 8)))
        texts.append("".join(chr(p) for p in points if not 0xD800 <= p < 0xE000))
    return texts


@pytest.mark.parametrize("text", TEXTS)
def test_ids_equal_transformers(gemma, reference, text):
    assert gemma.encode(text) == reference(text)["input_ids"]


def test_ids_equal_transformers_on_random_text(gemma, reference):
    for text in _random_texts(400):
        assert gemma.encode(text) == reference(text)["input_ids"], repr(text)
        ids = gemma.encode(text)
        assert gemma.decode(ids, skip_special_tokens=False) == reference.decode(ids, skip_special_tokens=False)


@pytest.mark.parametrize("text", TEXTS)
def test_decode_gives_the_text_back(gemma, text):
    assert gemma.decode(gemma.encode(text)) == text


def test_bos_is_added_and_eos_includes_end_of_turn(gemma):
    assert gemma.encode("Hi")[0] == gemma.bos_token_id == 2
    assert gemma.encode("Hi", add_special_tokens=False)[0] != 2
    assert gemma.eos_token_ids == [1, 106]  # <eos>, <end_of_turn>
    assert gemma.token_text(106) == "<end_of_turn>"
    assert gemma.encode("<start_of_turn>user\nhi<end_of_turn>", add_special_tokens=False) == [105, 2364, 107, 2202, 106]


def test_spaces_are_spelled_without_a_dummy_prefix(gemma):
    ids = gemma.encode("Hello  world", add_special_tokens=False)
    assert [gemma.token_text(i) for i in ids] == ["Hello", "▁▁", "world"]
    assert [gemma.token_text(i) for i in gemma.encode(" lead", add_special_tokens=False)] == ["▁lead"]


def test_characters_outside_the_vocabulary_fall_back_to_bytes(gemma):
    for char in OUTSIDE_VOCAB:
        ids = gemma.encode(char, add_special_tokens=False)
        assert [gemma.token_text(i) for i in ids] == [f"<0x{b:02X}>" for b in char.encode("utf-8")]
        assert gemma.decode(ids) == char


def test_streaming_detokenizer_joins_characters_split_over_byte_tokens(gemma):
    text = "Rare: 𠀋𪚥, emoji 👩‍💻, and ꙮ — done.\n\tEnd  "
    ids = gemma.encode(text, add_special_tokens=False)
    assert any(gemma.token_text(i).startswith("<0x") for i in ids)
    detok = IncrementalDetokenizer(gemma, prompt_ids=[gemma.bos_token_id])
    pieces = [detok.push([i]).text for i in ids]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) + detok.finish() == text
    # the first generated text keeps its leading space: Gemma's decoder strips nothing
    detok = IncrementalDetokenizer(gemma)
    first = gemma.encode(" Paris", add_special_tokens=False)
    assert detok.push(first).text + detok.finish() == " Paris"


def test_base_model_has_no_chat_template(gemma):
    assert gemma.chat_template is None
    with pytest.raises(ChatTemplateError, match="/v1/completions"):
        gemma.apply_chat_template([{"role": "user", "content": "Hi"}])


def test_a_vocabulary_with_a_dummy_prefix_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="HuggingFace directory"):
        sentencepiece_backend("llama2.gguf", {"gemma.ggml.add_space_prefix": True, "gemma.ggml.tokens": []})
