"""A model given as an HF-format directory (config.json, *.safetensors, tokenizer.json) serves like its GGUF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import save_file

from tokenmill.engine.config import EngineConfig
from tokenmill.engine.engine import LLMEngine
from tokenmill.engine.loader import read_weights
from tokenmill.engine.messages import EngineRequest
from tokenmill.engine.params import SamplingParams
from tokenmill.modelstore.store import resolve_model


@pytest.fixture(scope="module")
def hf_dir(model_path: Path, tokenizer, tmp_path_factory) -> Path:
    """The SmolLM2 GGUF written out as an HF checkpoint, split over two safetensors shards."""
    out = tmp_path_factory.mktemp("smollm2-hf")
    w = read_weights(model_path)
    c = w.config
    names = sorted(w.tensors)
    half = len(names) // 2
    save_file({k: w.tensors[k].contiguous() for k in names[:half]}, str(out / "model-00001-of-00002.safetensors"))
    save_file({k: w.tensors[k].contiguous() for k in names[half:]}, str(out / "model-00002-of-00002.safetensors"))
    (out / "config.json").write_text(json.dumps({
        "model_type": "llama", "vocab_size": c.vocab_size, "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size, "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads, "num_key_value_heads": c.num_kv_heads, "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta, "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": True}))
    tokenizer.backend.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": tokenizer.chat_template, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
        "add_bos_token": False}))
    return out


def test_hf_directory_resolves_and_generates_like_the_gguf(hf_dir, model_path, tokenizer):
    resolved = resolve_model(str(hf_dir))
    assert resolved.format == "hf" and resolved.path == hf_dir
    prompt = tokenizer.encode(tokenizer.apply_chat_template([{"role": "user", "content": "Name a large planet."}]),
                              add_special_tokens=False)
    params = SamplingParams(max_tokens=12, temperature=0.0, ignore_eos=True)
    outputs = []
    for path in (model_path, hf_dir):
        engine = LLMEngine(EngineConfig(model_path=str(path), dtype="float32", kv_cache_bytes=16 * 1024**2))
        assert engine.tokenizer.encode("Hello, 世界 12345") == tokenizer.encode("Hello, 世界 12345")
        outputs.append(engine.generate([EngineRequest(request_id="a", prompt_token_ids=prompt, params=params)])["a"])
    assert outputs[0] == outputs[1]


def test_hf_directory_missing_weights_is_a_clear_error(hf_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (broken / name).write_bytes((hf_dir / name).read_bytes())
    from tokenmill.modelstore.store import ModelStoreError

    with pytest.raises(ModelStoreError, match="safetensors"):
        resolve_model(str(broken))
