"""The llama family (Llama, SmolLM, Qwen2-style): RMSNorm, RoPE, grouped-query attention, SwiGLU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tokenmill.models.attention import AttentionBatch, KVCache, PrefillSpan, paged_attention
from tokenmill.models.config import ModelConfig
from tokenmill.models.linear import fuse_linears
from tokenmill.models.quantize import RowRoles, prepare_linears
from tokenmill.models.rope import RotaryEmbedding, apply_rotary, inverse_frequencies


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalise in fp32 and scale in the model dtype, as HF does: bf16 sums of squares drift
        return self.weight * F.rms_norm(x.float(), (x.shape[-1],), None, self.eps).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.num_kv_heads = config.num_kv_heads
        self.head_dim = config.head_dim
        self.q_size = config.num_heads * config.head_dim
        self.kv_size = config.num_kv_heads * config.head_dim
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, self.q_size, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, self.kv_size, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, self.kv_size, bias=bias)
        self.o_proj = nn.Linear(self.q_size, config.hidden_size, bias=False)
        self.qkv_proj: nn.Module | None = None  # q, k and v in one matmul, made by fuse()
        self.scale = config.head_dim**-0.5

    def fuse(self) -> None:
        self.qkv_proj = fuse_linears([self.q_proj, self.k_proj, self.v_proj])
        del self.q_proj, self.k_proj, self.v_proj

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, batch: AttentionBatch) -> torch.Tensor:
        assert self.qkv_proj is not None, "call fuse() after loading weights"
        tokens = x.shape[0]
        q, k, v = self.qkv_proj(x).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = apply_rotary(q.reshape(tokens, self.num_heads, self.head_dim), cos, sin)
        k = apply_rotary(k.reshape(tokens, self.num_kv_heads, self.head_dim), cos, sin)
        v = v.reshape(tokens, self.num_kv_heads, self.head_dim)
        out = paged_attention(q, k, v, k_cache, v_cache, batch, self.scale)
        return self.o_proj(out.reshape(tokens, self.q_size))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.gate_up_proj: nn.Module | None = None  # gate and up in one matmul, made by fuse()
        self.intermediate_size = config.intermediate_size

    def fuse(self) -> None:
        self.gate_up_proj = fuse_linears([self.gate_proj, self.up_proj])
        del self.gate_proj, self.up_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.gate_up_proj is not None, "call fuse() after loading weights"
        gate, up = self.gate_up_proj(x).split(self.intermediate_size, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, batch: AttentionBatch) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, k_cache, v_cache, batch)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaBody(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class LlamaForCausalLM(nn.Module):
    """Weights are named as in HF checkpoints, so safetensors load directly."""

    decode_graphs_safe = True  # a decode step never reads a tensor on the host, so it can be a CUDA graph

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaBody(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.rotary: RotaryEmbedding | None = None
        self.row_roles = RowRoles()  # which rows of a step decode (read by w4a16's layers)

    def prepare(self, device: torch.device, rope_freqs: torch.Tensor | None = None, quantization: str = "none",
                calibration_ids: list[int] | None = None) -> None:
        """After loading weights: tie, fuse projections, build RoPE tables, then quantize the linear layers
        (w8a8 calibrated on calibration_ids, or w4a16) or prepack them for the CPU."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        for layer in self.model.layers:
            layer.self_attn.fuse()
            layer.mlp.fuse()
        inv_freq = inverse_frequencies(self.config, rope_freqs)
        self.rotary = RotaryEmbedding(inv_freq, self.config.max_position_embeddings, device)
        prepare_linears(self, device, quantization, self.row_roles, lambda: self.prefill_alone(calibration_ids or []))

    def prefill_alone(self, token_ids: list[int], every_position: bool = False) -> torch.Tensor:
        """Logits after the last of token_ids (or after every one), run as one prefill over a cache of its own."""
        c = self.config
        device, dtype = self.model.embed_tokens.weight.device, self.model.embed_tokens.weight.dtype
        n = len(token_ids)
        slots = torch.arange(n, device=device)
        cache = KVCache(c.num_layers, n, c.num_kv_heads, c.head_dim, dtype, device)
        batch = AttentionBatch(slot_mapping=slots, num_decodes=0, decode_kv_slots=None, decode_mask=None,
                               prefills=[PrefillSpan(0, n, slots, None)])
        ids = torch.tensor(token_ids, device=device)
        return self(ids, slots, cache, batch, slots if every_position else torch.tensor([n - 1], device=device))

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, kv_cache: KVCache,
                batch: AttentionBatch, logits_indices: torch.Tensor) -> torch.Tensor:
        """Run the step's tokens; return logits only for the rows in logits_indices."""
        assert self.rotary is not None, "call prepare() after loading weights"
        self.row_roles.decode_rows = batch.num_decodes
        x = self.model.embed_tokens(input_ids)
        cos, sin = self.rotary.tables(positions, x.dtype)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, kv_cache.k[i], kv_cache.v[i], batch)
        x = self.model.norm(x[logits_indices])
        return self.lm_head(x).float()
