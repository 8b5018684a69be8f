"""Fixtures for engine tests: the real SmolLM2-135M-Instruct model and its tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MODEL_NAME = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF from the model store (pulled on first use, as `make test` does)."""
    from tokenmill.modelstore.store import resolve_model

    return resolve_model(MODEL_NAME).path


@pytest.fixture(scope="session")
def tokenizer(model_path: Path):
    from tokenmill.engine.tokenizer import load_tokenizer

    return load_tokenizer(model_path)


@pytest.fixture(scope="session")
def sentencepiece_tokenizer(tmp_path_factory):
    """A small Llama-2-style (sentencepiece BPE, byte fallback) HF tokenizer directory, loaded.

    The real model is byte-level BPE; this covers the other vocabulary shape the loader and the
    detokenizer must handle, built with the tokenizers library the way Llama 2's tokenizer.json is laid out.
    """
    from tokenizers import Tokenizer as BackendTokenizer
    from tokenizers import models, normalizers, trainers

    from tokenmill.engine.tokenizer import load_tokenizer

    specials = ["<unk>", "<s>", "</s>"]
    backend = BackendTokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    corpus = ["Hello world, the capital of France is Paris.", "The cat sat on the mat.", "你好世界"] * 20
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    backend.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=specials + byte_tokens))
    spec = json.loads(backend.to_str())
    # Byte tokens are ordinary vocabulary entries in Llama 2, not added tokens.
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in specials]
    spec["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"},
        {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0},
    ]}
    directory = tmp_path_factory.mktemp("spm")
    (directory / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    config = {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True,
              "chat_template": "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}"}
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return load_tokenizer(directory)
