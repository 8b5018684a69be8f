"""Tokenizer and chat template of the real SmolLM2 GGUF, checked against transformers."""

from __future__ import annotations

import json
import random

import pytest
from tokenizers import pre_tokenizers

from tokenmill.engine.tokenizer import ChatTemplateError, Tokenizer, load_tokenizer

CORPUS = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog. It's, I'm, we'll, they've, DON'T, she'd.",
    " leading space",
    "   three leading spaces and trailing   ",
    "\n\nnewlines first\nthen\r\nwindows\rold mac\n",
    "你好，世界！今天天气很好。我们去公园散步吧。",
    "日本語のテキストとカタカナ、한국어 텍스트, العربية, Ελληνικά, русский текст",
    "Emoji: 🎉👍🏽👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖🦀",
    "def f(x):\n\tif x  >  1:\n\t\treturn x ** 2    # comment\n        pass\n\n\n",
    "numbers 12345678 3.14159 -42 1,000,000 2024-01-01T12:00:00Z 0x1F ½ ² ٣",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "text<|im_end|>glued<|endoftext|>and <jupyter_code> inside",
    "not special: <|im_ and |im_end|> and <im_end>",
    "combining: e\u0301 n\u0303 zero\u200bwidth",
    "tabs\t\tand\tspaces  \t mixed",
    "",
    " ",
    "a",
    "URL https://example.com/path?q=1&x=y#frag and email a.b@c.org",
    '{"key": [1, 2, {"nested": null}], "s": "quo\\"te"}',
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}],
    [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about 猫 🐱."},
    ],
    [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c\n\nd"},
    ],
]


@pytest.fixture(scope="module")
def hf_reference(model_path):
    """transformers' tokenizer for the same GGUF, with SmolLM2's published pre-tokenizer.

    transformers reads pre 'smollm' as plain GPT-2 and so misses the Digits step that SmolLM2's own
    tokenizer.json (and llama.cpp) have; it then differs on whitespace before a digit ("x  1").
    """
    transformers = pytest.importorskip("transformers")
    ref = transformers.AutoTokenizer.from_pretrained(str(model_path.parent), gguf_file=model_path.name)
    ref.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    return ref


def test_metadata(tokenizer: Tokenizer):
    assert tokenizer.vocab_size == 49152
    assert tokenizer.bos_token_id == 1 and tokenizer.bos_token == "<|im_start|>"
    # The file's eos is the ChatML end-of-turn token, which ends every assistant turn.
    assert tokenizer.eos_token_ids[0] == 2 and tokenizer.token_text(2) == "<|im_end|>"
    assert tokenizer.eos_token == "<|im_end|>"
    assert 0 in tokenizer.eos_token_ids  # <|endoftext|> also ends generation, as in llama.cpp
    assert {0, 1, 2} <= tokenizer.special_token_ids
    assert tokenizer.chat_template is not None and "<|im_end|>" in tokenizer.chat_template


def test_no_bos_added_because_the_model_says_so(tokenizer: Tokenizer):
    assert tokenizer.encode("Hello") == tokenizer.encode("Hello", add_special_tokens=False)
    assert tokenizer.encode("Hello")[0] != tokenizer.bos_token_id


def test_special_tokens_in_text_are_single_tokens(tokenizer: Tokenizer):
    ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
    assert ids[0] == 1 and ids[-1] == 2
    assert tokenizer.decode(ids) == "user\nhi"
    assert tokenizer.decode(ids, skip_special_tokens=False) == "<|im_start|>user\nhi<|im_end|>"


def test_digits_are_split_one_by_one(tokenizer: Tokenizer):
    # The 'smollm' pre-tokenizer isolates every digit, as llama.cpp and the original tokenizer.json do.
    ids = tokenizer.encode("12345678")
    assert len(ids) == 8 and tokenizer.decode(ids) == "12345678"
    # So the spaces before a digit stay one piece: "ĠĠ" + "1", not "Ġ" + "Ġ1" -> "Ġ" "Ġ" "1".
    assert [tokenizer.token_text(i) for i in tokenizer.encode("x  1")] == ["x", "ĠĠ", "1"]


@pytest.mark.parametrize("text", CORPUS)
def test_encode_matches_transformers(tokenizer: Tokenizer, hf_reference, text: str):
    assert tokenizer.encode(text) == hf_reference.encode(text, add_special_tokens=True)


@pytest.mark.parametrize("text", CORPUS)
def test_decode_round_trips(tokenizer: Tokenizer, hf_reference, text: str):
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids, skip_special_tokens=False) == text
    assert tokenizer.decode(ids) == hf_reference.decode(ids, skip_special_tokens=True)


FRAGMENTS = [
    "a", "Z", "word", " the", "I'm", "'ll", "42", "7", " 3", "½", "\u0663", " ", "  ", "\t", "\n", "\r\n", "\n\n",
    ".", ",", "!?", "...", "->", "{", "}", "==", "你", "好世界", "。", "テスト", "한", "é", "e\u0301", "ß", "Ω",
    "🎉", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "|>", "<file_sep>",
]


def test_random_mixtures_match_transformers(tokenizer: Tokenizer, hf_reference):
    rng = random.Random(1234)
    texts = ["".join(rng.choices(FRAGMENTS, k=rng.randint(1, 40))) for _ in range(500)]
    ours = tokenizer.encode_batch(texts)
    for text, ids in zip(texts, ours):
        assert ids == hf_reference.encode(text, add_special_tokens=True), text
        assert tokenizer.decode(ids, skip_special_tokens=False) == text


def test_token_bytes_rebuild_the_text(tokenizer: Tokenizer):
    for text in CORPUS:
        ids = tokenizer.encode(text)
        assert b"".join(tokenizer.token_bytes(i) for i in ids).decode("utf-8") == text


def test_encode_batch_matches_encode(tokenizer: Tokenizer):
    assert tokenizer.encode_batch(CORPUS) == [tokenizer.encode(t) for t in CORPUS]


@pytest.mark.parametrize("messages", CONVERSATIONS)
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_matches_transformers(tokenizer: Tokenizer, hf_reference, messages, add_generation_prompt):
    ours = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
    theirs = hf_reference.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    assert ours == theirs


def test_chat_template_renders_chatml(tokenizer: Tokenizer):
    prompt = tokenizer.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert prompt == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"


def test_content_parts_are_joined(tokenizer: Tokenizer):
    parts = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    joined = tokenizer.apply_chat_template([{"role": "user", "content": parts}])
    assert joined == tokenizer.apply_chat_template([{"role": "user", "content": "first\nsecond"}])


def test_non_text_parts_are_refused(tokenizer: Tokenizer):
    parts = [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
    with pytest.raises(ChatTemplateError, match="image_url"):
        tokenizer.apply_chat_template([{"role": "user", "content": parts}])


def _with_template(tokenizer: Tokenizer, template: str | None) -> Tokenizer:
    return Tokenizer(
        tokenizer.backend,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_ids=tokenizer.eos_token_ids,
        add_bos=tokenizer.add_bos,
        chat_template=template,
        vocab_size=tokenizer.vocab_size,
    )


def test_missing_chat_template_points_to_completions(tokenizer: Tokenizer):
    with pytest.raises(ChatTemplateError, match="/v1/completions"):
        _with_template(tokenizer, None).apply_chat_template([{"role": "user", "content": "hi"}])


def test_template_helpers_behave_like_transformers(tokenizer: Tokenizer):
    template = (
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}"
        "{{ bos_token }}{{ messages | tojson }}|{{ tools | tojson }}|{{ strftime_now('%Y') | length }}|{{ eos_token }}"
        "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{% generation %}[{{ m.content }}]"
        "{% endgeneration %}{% endfor %}|{{ extra }}"
    )
    tok = _with_template(tokenizer, template)
    out = tok.apply_chat_template([{"role": "user", "content": "<b>é</b>"}], tools=[{"name": "f"}], extra="x")
    assert out == '<|im_start|>[{"role": "user", "content": "<b>é</b>"}]|[{"name": "f"}]|4|<|im_end|>[<b>é</b>]|x'
    with pytest.raises(ChatTemplateError, match="first message must be from the user"):
        tok.apply_chat_template([{"role": "system", "content": "s"}])


def test_broken_template_is_a_clear_error(tokenizer: Tokenizer):
    with pytest.raises(ChatTemplateError, match="does not compile"):
        _with_template(tokenizer, "{% for %}").apply_chat_template([{"role": "user", "content": "hi"}])


def test_hf_directory_gives_the_same_tokenizer(tokenizer: Tokenizer, hf_reference, tmp_path):
    # transformers writes a realistic HF directory (tokenizer.json, tokenizer_config.json, chat template).
    hf_reference.save_pretrained(tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": [2]}))
    from_dir = load_tokenizer(tmp_path)
    assert from_dir.bos_token_id == 1 and from_dir.eos_token_ids[0] == 2 and not from_dir.add_bos
    assert from_dir.special_token_ids >= {0, 1, 2}
    for text in CORPUS:
        ids = from_dir.encode(text)
        assert ids == tokenizer.encode(text)
        assert [from_dir.token_bytes(i) for i in ids] == [tokenizer.token_bytes(i) for i in ids]
    for messages in CONVERSATIONS:
        assert from_dir.apply_chat_template(messages) == tokenizer.apply_chat_template(messages)


def test_unknown_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="tokenizer.json"):
        load_tokenizer(tmp_path)


def test_sentencepiece_directory(sentencepiece_tokenizer: Tokenizer):
    tok = sentencepiece_tokenizer
    assert tok.add_bos and tok.bos_token_id == tok.token_to_id("<s>")
    assert tok.eos_token_ids == [tok.token_to_id("</s>")]
    assert tok.strips_leading_space
    for text in ["Hello world", "The cat sat.\nOn the mat", "Paris 🎉 é 你好"]:
        ids = tok.encode(text)
        assert ids[0] == tok.bos_token_id
        assert tok.decode(ids) == text
        # '▁' is a space and '<0xF0>' one byte, so the bytes rebuild the text (plus the prefix space).
        assert b"".join(tok.token_bytes(i) for i in ids[1:]).decode() == " " + text
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}]) == "[user] hi</s>"


@pytest.fixture(scope="module")
def smollm_vocab(model_path) -> dict:
    from gguf import GGUFReader

    fields = GGUFReader(model_path).fields
    return {key: fields[f"tokenizer.ggml.{key}"].contents() for key in ("tokens", "token_type", "merges")}


@pytest.mark.parametrize(("pre", "bos_by_default"), [("qwen2", False), ("llama-bpe", True), ("tekken", True)])
def test_other_gguf_pre_tokenizers_match_transformers(smollm_vocab, tmp_path, pre: str, bos_by_default: bool):
    # The same vocabulary under another family's pre-tokenizer: checks that the regex and options
    # picked for each `tokenizer.ggml.pre` value split text as transformers does.
    transformers = pytest.importorskip("transformers")
    from gguf import GGUFWriter

    path = tmp_path / f"{pre}.gguf"
    writer = GGUFWriter(path, "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(smollm_vocab["tokens"])
    writer.add_token_types(smollm_vocab["token_type"])
    writer.add_token_merges(smollm_vocab["merges"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    tok = load_tokenizer(path)
    assert tok.add_bos == bos_by_default  # llama.cpp's default when the file does not say
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    for text in CORPUS:
        assert tok.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False), text
