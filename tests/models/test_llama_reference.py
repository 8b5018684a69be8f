"""Greedy output of our llama implementation equals HF transformers' on the same dequantized weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tokenmill.bench.offline import hf_llama
from tokenmill.engine.config import EngineConfig
from tokenmill.engine.engine import LLMEngine
from tokenmill.engine.loader import read_weights
from tokenmill.engine.messages import EngineRequest
from tokenmill.engine.params import SamplingParams
from tokenmill.engine.tokenizer import load_tokenizer
from tokenmill.modelstore.store import resolve_model

transformers = pytest.importorskip("transformers")

CONVERSATIONS = [
    "What is the boiling point of water at sea level?",
    "Write a Python function that reverses a string.",
    "Give me three tips for sleeping better.",
    "请用一句话介绍一下长城。",
    "把“早上好”翻译成英文。",
]
NEW_TOKENS = 24


@pytest.fixture(scope="module")
def model_path() -> Path:
    return resolve_model("smollm2-135m-instruct").path


def _hf_reference(model_path: Path, prompts: list[list[int]]) -> list[list[int]]:
    model = hf_llama(read_weights(model_path))
    outs = []
    with torch.no_grad():
        for ids in prompts:  # one at a time: no padding in the reference
            seq = torch.tensor([ids])
            for _ in range(NEW_TOKENS):  # plain greedy loop over full forward passes
                nxt = model(seq).logits[0, -1].argmax()
                seq = torch.cat([seq, nxt.view(1, 1)], dim=1)
            outs.append(seq[0, len(ids):].tolist())
    return outs


def test_greedy_matches_transformers(model_path):
    tok = load_tokenizer(model_path)
    prompts = [tok.encode(tok.apply_chat_template([{"role": "user", "content": c}]), add_special_tokens=False)
               for c in CONVERSATIONS]
    engine = LLMEngine(EngineConfig(model_path=str(model_path), dtype="float32",
                                    kv_cache_bytes=64 * 1024**2))
    params = SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0, ignore_eos=True)
    ours = engine.generate([EngineRequest(request_id=str(i), prompt_token_ids=p, params=params) for i, p in enumerate(prompts)])
    reference = _hf_reference(model_path, prompts)
    for i, ref in enumerate(reference):
        assert ours[str(i)] == ref, f"prompt {CONVERSATIONS[i]!r}: {tok.decode(ours[str(i)])!r} != {tok.decode(ref)!r}"
    assert any("长城" in tok.decode(r) or "Great Wall" in tok.decode(r) for r in reference[3:4])
