"""Load a model's config and weights from a GGUF file or an HF-format directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tokenmill.engine.gguf_file import read_gguf_file
from tokenmill.models.config import ModelConfig
from tokenmill.models.gemma3 import SLIDING, Gemma3ForCausalLM
from tokenmill.models.llama import LlamaForCausalLM

CausalLM = LlamaForCausalLM | Gemma3ForCausalLM
_MODEL_CLASSES: dict[str, type[CausalLM]] = {
    "llama": LlamaForCausalLM, "qwen2": LlamaForCausalLM, "gemma3": Gemma3ForCausalLM,
}
SUPPORTED_ARCHITECTURES = tuple(_MODEL_CLASSES)  # from GGUF
HF_ARCHITECTURES = ("llama", "qwen2")  # from an HF directory

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
# where Gemma's layout differs: four norms per layer, and q/k norms
_GGUF_GEMMA3_LAYER_NAMES = {
    **_GGUF_LAYER_NAMES,
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
}
_GEMMA3_LOCAL_ROPE_THETA = 10000.0  # not in the file; llama.cpp and HF both use this for the sliding layers
_GEMMA3_SLIDING_PATTERN = 6  # every 6th layer attends over everything, the others over the sliding window
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
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    gguf_file = read_gguf_file(path)
    meta = gguf_file.metadata
    arch = meta.get("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelLoadError(f"{path.name}: architecture {arch!r} is not supported; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")

    def key(name: str, default=None):
        return meta.get(f"{arch}.{name}", default)

    num_heads = int(key("attention.head_count"))
    hidden = int(key("embedding_length"))
    num_kv_heads = int(key("attention.head_count_kv", num_heads))
    layer_names = _GGUF_GEMMA3_LAYER_NAMES if arch == "gemma3" else _GGUF_LAYER_NAMES
    tensors: dict[str, torch.Tensor] = {}
    rope_freqs = None
    for t in gguf_file.tensors:
        data = torch.from_numpy(np.array(dequantize(t.data, GGMLQuantizationType(t.ggml_type)), dtype=np.float32))
        if t.name == "rope_freqs.weight":
            rope_freqs = data
            continue
        name = _hf_name(t.name, layer_names)
        if arch == "llama" and name.endswith(("q_proj.weight", "q_proj.bias")):
            data = _unpermute(data, num_heads)
        elif arch == "llama" and name.endswith(("k_proj.weight", "k_proj.bias")):
            data = _unpermute(data, num_kv_heads)
        elif arch == "gemma3" and name.endswith("norm.weight"):
            data = data - 1  # llama.cpp's converter stores Gemma's (1 + w); the model holds HF's w
        tensors[name] = data

    vocab_size = int(key("vocab_size", 0) or tensors["model.embed_tokens.weight"].shape[0])
    scaling = None
    if key("rope.scaling.type") == "linear":
        scaling = {"rope_type": "linear", "factor": float(key("rope.scaling.factor"))}
    num_layers = int(key("block_count"))
    head_dim = int(key("attention.key_length", hidden // num_heads))
    config = ModelConfig(
        architecture=arch,
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=int(key("feed_forward_length")),
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        rms_norm_eps=float(key("attention.layer_norm_rms_epsilon", 1e-6)),
        rope_theta=float(key("rope.freq_base", 10000.0)),
        max_position_embeddings=int(key("context_length", 4096)),
        tie_word_embeddings="lm_head.weight" not in tensors,
        attention_bias="model.layers.0.self_attn.q_proj.bias" in tensors,
        rope_scaling=scaling,
        **(_gemma3_settings(meta, num_layers, hidden // num_heads, head_dim) if arch == "gemma3" else {}),
    )
    return LoadedWeights(config, tensors, rope_freqs)


def _gemma3_settings(meta: dict, num_layers: int, hidden_per_head: int, head_dim: int) -> dict:
    """Gemma 3's extra config from gemma3.* keys, with llama.cpp's defaults for what the file leaves out."""
    window = int(meta.get("gemma3.attention.sliding_window") or 0)
    pattern = meta.get("gemma3.attention.sliding_window_pattern")  # per-layer flags, in newer files
    if not window:
        sliding = [False] * num_layers
    elif isinstance(pattern, list):
        sliding = [bool(p) for p in pattern]
    else:
        sliding = [(i + 1) % _GEMMA3_SLIDING_PATTERN != 0 for i in range(num_layers)]
    softcap = meta.get("gemma3.final_logit_softcapping")
    return {
        "layer_types": tuple(SLIDING if s else "full_attention" for s in sliding),
        "sliding_window": window or None,
        "rope_local_theta": _GEMMA3_LOCAL_ROPE_THETA,
        # the file does not say; 27B (62 layers) scales by hidden / heads, the others by head_dim (as llama.cpp)
        "query_pre_attn_scalar": hidden_per_head if num_layers == 62 else head_dim,
        "final_logit_softcapping": float(softcap) if softcap else None,
    }


def _hf_name(gguf_name: str, layer_names: dict[str, str]) -> str:
    if gguf_name in _GGUF_TOP_NAMES:
        return _GGUF_TOP_NAMES[gguf_name]
    parts = gguf_name.split(".")  # blk.N.attn_q.weight
    if parts[0] != "blk" or parts[2] not in layer_names:
        raise ModelLoadError(f"unexpected tensor {gguf_name!r} in GGUF file")
    return f"model.layers.{parts[1]}.{layer_names[parts[2]]}.{parts[3]}"


def _unpermute(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Undo llama.cpp's interleaved-RoPE permutation of Q/K rows, back to HF's rotate-half layout."""
    shape = w.shape
    return w.reshape(heads, shape[0] // heads // 2, 2, *shape[1:]).transpose(1, 2).reshape(shape)


def read_hf_directory(path: Path) -> LoadedWeights:
    """Read config.json and *.safetensors from an HF-format checkpoint directory."""
    from safetensors.torch import load_file

    cfg = json.loads((path / "config.json").read_text())
    arch = cfg.get("model_type", "llama")
    if arch not in HF_ARCHITECTURES:
        raise ModelLoadError(f"{path}: model_type {arch!r} is not supported from an HF directory; supported: "
                             f"{', '.join(HF_ARCHITECTURES)} (Gemma 3 loads from its GGUF file)")
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


def build_model(weights: LoadedWeights, device: torch.device, dtype: torch.dtype, quantization: str = "none",
                calibration_ids: list[int] | None = None) -> CausalLM:
    """Instantiate the model on device/dtype with these weights, ready for inference; empties weights.tensors.
    Its linear layers are quantized as asked (w8a8 calibrated on calibration_ids)."""
    with torch.device("meta"):
        model = _MODEL_CLASSES[weights.config.architecture](weights.config)
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
    model.prepare(device, weights.rope_freqs, quantization, calibration_ids)
    return model.eval().requires_grad_(False)
