"""Load a model's config and weights from a GGUF file or an HF-format directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tokenmill.models.config import ModelConfig
from tokenmill.models.llama import LlamaForCausalLM

SUPPORTED_ARCHITECTURES = ("llama", "qwen2")

_GGUF_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GGUF_TOP_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


class ModelLoadError(Exception):
    pass


@dataclass(slots=True)
class LoadedWeights:
    config: ModelConfig
    tensors: dict[str, torch.Tensor]  # HF names, float32
    rope_freqs: torch.Tensor | None = None


def read_gguf(path: Path) -> LoadedWeights:
    """Read config and dequantized weights from a GGUF file (HF tensor names and layouts)."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(path))
    meta = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("tokenizer.ggml.")}
    arch = meta.get("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelLoadError(f"{path.name}: architecture {arch!r} is not supported; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")

    def key(name: str, default=None):
        return meta.get(f"{arch}.{name}", default)

    num_heads = int(key("attention.head_count"))
    hidden = int(key("embedding_length"))
    num_kv_heads = int(key("attention.head_count_kv", num_heads))
    tensors: dict[str, torch.Tensor] = {}
    rope_freqs = None
    for t in reader.tensors:
        data = torch.from_numpy(np.array(dequantize(t.data, t.tensor_type), dtype=np.float32))
        if t.name == "rope_freqs.weight":
            rope_freqs = data
            continue
        name = _hf_name(t.name)
        if arch == "llama" and name.endswith(("q_proj.weight", "q_proj.bias")):
            data = _unpermute(data, num_heads)
        elif arch == "llama" and name.endswith(("k_proj.weight", "k_proj.bias")):
            data = _unpermute(data, num_kv_heads)
        tensors[name] = data

    vocab_size = int(key("vocab_size", 0) or tensors["model.embed_tokens.weight"].shape[0])
    scaling = None
    if key("rope.scaling.type") == "linear":
        scaling = {"rope_type": "linear", "factor": float(key("rope.scaling.factor"))}
    config = ModelConfig(
        architecture=arch,
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=int(key("feed_forward_length")),
        num_layers=int(key("block_count")),
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=int(key("attention.key_length", hidden // num_heads)),
        rms_norm_eps=float(key("attention.layer_norm_rms_epsilon", 1e-6)),
        rope_theta=float(key("rope.freq_base", 10000.0)),
        max_position_embeddings=int(key("context_length", 4096)),
        tie_word_embeddings="lm_head.weight" not in tensors,
        attention_bias="model.layers.0.self_attn.q_proj.bias" in tensors,
        rope_scaling=scaling,
    )
    return LoadedWeights(config, tensors, rope_freqs)


def _hf_name(gguf_name: str) -> str:
    if gguf_name in _GGUF_TOP_NAMES:
        return _GGUF_TOP_NAMES[gguf_name]
    parts = gguf_name.split(".")  # blk.N.attn_q.weight
    if parts[0] != "blk" or parts[2] not in _GGUF_LAYER_NAMES:
        raise ModelLoadError(f"unexpected tensor {gguf_name!r} in GGUF file")
    return f"model.layers.{parts[1]}.{_GGUF_LAYER_NAMES[parts[2]]}.{parts[3]}"


def _unpermute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Undo llama.cpp's interleaved-RoPE permutation of Q/K rows, back to HF's rotate-half layout."""
    shape = w.shape
    return w.reshape(heads, shape[0] // heads // 2, 2, *shape[1:]).transpose(1, 2).reshape(shape)


def read_hf_directory(path: Path) -> LoadedWeights:
    """Read config.json and *.safetensors from an HF-format checkpoint directory."""
    from safetensors.torch import load_file

    cfg = json.loads((path / "config.json").read_text())
    arch = cfg.get("model_type", "llama")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelLoadError(f"{path}: model_type {arch!r} is not supported; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(path.glob("*.safetensors")):
        tensors.update({k: v.float() for k, v in load_file(str(file)).items()})
    num_heads = cfg["num_attention_heads"]
    config = ModelConfig(
        architecture=arch,
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_layers=cfg["num_hidden_layers"],
        num_heads=num_heads,
        num_kv_heads=cfg.get("num_key_value_heads", num_heads),
        head_dim=cfg.get("head_dim") or cfg["hidden_size"] // num_heads,
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
        rope_theta=cfg.get("rope_theta", 10000.0),
        max_position_embeddings=cfg.get("max_position_embeddings", 4096),
        tie_word_embeddings=cfg.get("tie_word_embeddings", "lm_head.weight" not in tensors),
        attention_bias=cfg.get("attention_bias", arch == "qwen2"),
        rope_scaling=cfg.get("rope_scaling"),
    )
    return LoadedWeights(config, tensors)


def read_weights(path: Path) -> LoadedWeights:
    """Config and float32 weights from a .gguf file or an HF directory."""
    if path.is_dir():
        return read_hf_directory(path)
    if path.suffix == ".gguf":
        return read_gguf(path)
    raise ModelLoadError(f"{path}: expected a .gguf file or an HF-format directory")


def build_model(weights: LoadedWeights, device: torch.device, dtype: torch.dtype,
                calibration_ids: list[int] | None = None) -> LlamaForCausalLM:
    """Instantiate the model on device/dtype with these weights, ready for inference; empties weights.tensors.
    With calibration_ids, its linear layers are quantized to W8A8 calibrated on those tokens."""
    with torch.device("meta"):
        model = LlamaForCausalLM(weights.config)
    tensors = dict(weights.tensors)
    if weights.config.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    missing = set(model.state_dict()) - set(tensors)
    if missing:
        raise ModelLoadError(f"checkpoint lacks tensors: {', '.join(sorted(missing)[:5])}")
    state = {k: v.to(device=device, dtype=dtype) for k, v in tensors.items() if k in model.state_dict()}
    # the model owns the tensors from here: dropping the loader's references lets fusing and
    # packing free each original as they go, so peak memory stays near one copy of the weights
    weights.tensors.clear()
    tensors.clear()
    model.load_state_dict(state, strict=True, assign=True)
    del state
    model.prepare(device, weights.rope_freqs, calibration_ids)
    return model.eval().requires_grad_(False)
