"""The shape of a decoder-only transformer, independent of the file it came from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ModelConfig:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    attention_bias: bool = False
    rope_scaling: dict[str, float | str] | None = field(default=None)
    # Gemma 3 only; the llama family leaves these at their defaults
    layer_types: tuple[str, ...] = ()  # per layer "sliding_attention" or "full_attention", as HF names them
    sliding_window: int | None = None  # a sliding layer's query at q sees keys at p only when q - p < window
    rope_local_theta: float | None = None  # RoPE base of the sliding layers (rope_theta is the full layers')
    query_pre_attn_scalar: int | None = None  # attention scores are scaled by this ** -0.5, not head_dim ** -0.5
    final_logit_softcapping: float | None = None  # logits = cap * tanh(logits / cap)

    def __post_init__(self) -> None:
        assert self.num_heads % self.num_kv_heads == 0, "query heads must be a multiple of KV heads"
        assert not self.layer_types or len(self.layer_types) == self.num_layers, "one layer type per layer"

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of K and V for one token over all layers, in fp32; scale by dtype size / 4."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * 4
