"""Rotary position embeddings (the rotate-half layout used by HF checkpoints)."""

from __future__ import annotations

import math

import torch

from tokenmill.models.config import ModelConfig


def inverse_frequencies(config: ModelConfig, rope_freqs: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pair inverse frequencies with the model's theta and scaling applied."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if rope_freqs is not None:  # GGUF llama3-style: the scaling factors are stored as a tensor
        return (inv_freq / rope_freqs.to(torch.float64)).float()
    scaling = config.rope_scaling or {}
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        inv_freq = inv_freq / float(scaling["factor"])
    elif kind == "llama3":
        inv_freq = _llama3_scaled(inv_freq, scaling)
    elif kind not in (None, "default"):
        raise ValueError(f"unsupported rope scaling type {kind!r}; supported: linear, llama3")
    return inv_freq.float()


def _llama3_scaled(inv_freq: torch.Tensor, scaling: dict) -> torch.Tensor:
    factor = float(scaling["factor"])
    low = float(scaling.get("low_freq_factor", 1.0))
    high = float(scaling.get("high_freq_factor", 4.0))
    old_len = float(scaling["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv_freq
    smooth = (old_len / wavelen - low) / (high - low)
    scaled = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    medium = (wavelen <= old_len / low) & (wavelen >= old_len / high)
    return torch.where(medium, (1 - smooth) * inv_freq / factor + smooth * inv_freq, scaled)


class RotaryEmbedding:
    """Holds a cos/sin table for every position up to the context length."""

    def __init__(self, inv_freq: torch.Tensor, max_positions: int, device: torch.device) -> None:
        positions = torch.arange(max_positions, dtype=torch.float32)
        angles = torch.outer(positions, inv_freq)
        self.cos = torch.cos(angles).to(device)
        self.sin = torch.sin(angles).to(device)

    def tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin for these positions, shaped [T, 1, head_dim] to broadcast over heads."""
        cos = self.cos[positions].to(dtype)
        sin = self.sin[positions].to(dtype)
        return torch.cat((cos, cos), -1).unsqueeze(1), torch.cat((sin, sin), -1).unsqueeze(1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [T, heads, head_dim] by the position tables."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), -1)
    return x * cos + rotated * sin
