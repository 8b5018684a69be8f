"""Gemma 3 (text): the llama family's layout with Gemma's changes.

Embeddings are scaled by sqrt(hidden_size); RMSNorm scales by (1 + w) in fp32; queries and keys are
RMS-normed per head before RoPE; each layer also normalizes the attention and MLP outputs before adding
them back; the MLP is GeGLU (tanh GELU); scores are scaled by query_pre_attn_scalar ** -0.5. Most
layers attend over a sliding window with their own RoPE base; every few, one attends over everything.
Weights are named as in HF's Gemma3ForCausalLM, norms zero-centred as HF stores them.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from tokenmill.models.attention import AttentionBatch, KVCache, paged_attention, sliding_window_batch
from tokenmill.models.config import ModelConfig
from tokenmill.models.llama import MLP, Attention, LlamaForCausalLM
from tokenmill.models.quantize import RowRoles, prepare_linears
from tokenmill.models.rope import RotaryEmbedding, apply_rotary, inverse_frequencies

SLIDING = "sliding_attention"


class GemmaRMSNorm(nn.Module):
    """x / rms(x) * (1 + w), all in fp32 as HF does; w near 0 keeps its precision in bf16 weights."""

    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(size))
        self.eps = eps
        self.scale: torch.Tensor | None = None  # 1 + w in fp32, made once by prepare()

    def prepare(self) -> None:
        self.scale = 1.0 + self.weight.detach().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), self.scale, self.eps).to(x.dtype)


class Gemma3Attention(Attention):
    def __init__(self, config: ModelConfig, sliding: bool) -> None:
        super().__init__(config)
        self.q_norm = GemmaRMSNorm(config.head_dim, config.rms_norm_eps)
        self.k_norm = GemmaRMSNorm(config.head_dim, config.rms_norm_eps)
        self.scale = (config.query_pre_attn_scalar or config.head_dim) ** -0.5
        self.sliding = sliding

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, batch: AttentionBatch) -> torch.Tensor:
        assert self.qkv_proj is not None, "call fuse() after loading weights"
        tokens = x.shape[0]
        q, k, v = self.qkv_proj(x).split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = apply_rotary(self.q_norm(q.reshape(tokens, self.num_heads, self.head_dim)), cos, sin)
        k = apply_rotary(self.k_norm(k.reshape(tokens, self.num_kv_heads, self.head_dim)), cos, sin)
        v = v.reshape(tokens, self.num_kv_heads, self.head_dim)
        out = paged_attention(q, k, v, k_cache, v_cache, batch, self.scale)
        return self.o_proj(out.reshape(tokens, self.q_size))


class Gemma3MLP(MLP):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.gate_up_proj is not None, "call fuse() after loading weights"
        gate, up = self.gate_up_proj(x).split(self.intermediate_size, dim=-1)
        return self.down_proj(F.gelu(gate, approximate="tanh") * up)


class Gemma3DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, sliding: bool) -> None:
        super().__init__()
        size, eps = config.hidden_size, config.rms_norm_eps
        self.input_layernorm = GemmaRMSNorm(size, eps)
        self.self_attn = Gemma3Attention(config, sliding)
        self.post_attention_layernorm = GemmaRMSNorm(size, eps)
        self.pre_feedforward_layernorm = GemmaRMSNorm(size, eps)
        self.mlp = Gemma3MLP(config)
        self.post_feedforward_layernorm = GemmaRMSNorm(size, eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, k_cache: torch.Tensor,
                v_cache: torch.Tensor, batch: AttentionBatch) -> torch.Tensor:
        attended = self.self_attn(self.input_layernorm(x), cos, sin, k_cache, v_cache, batch)
        x = x + self.post_attention_layernorm(attended)
        return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))


class Gemma3Body(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        types = config.layer_types or ("full_attention",) * config.num_layers
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Gemma3DecoderLayer(config, t == SLIDING) for t in types)
        self.norm = GemmaRMSNorm(config.hidden_size, config.rms_norm_eps)


class Gemma3ForCausalLM(nn.Module):
    """Same interface as LlamaForCausalLM: the engine runs either."""

    decode_graphs_safe = False  # the sliding-window layers size their gather from positions read on the host

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = Gemma3Body(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.rotary: RotaryEmbedding | None = None  # full-attention layers
        self.rotary_local: RotaryEmbedding | None = None  # sliding-window layers
        self.embed_scale: torch.Tensor | None = None
        self.row_roles = RowRoles()  # which rows of a step decode (read by w4a16's layers)

    def prepare(self, device: torch.device, rope_freqs: torch.Tensor | None = None, quantization: str = "none",
                calibration_ids: list[int] | None = None) -> None:
        """After loading weights: tie, fuse projections, fix the norms' scales, build both RoPE tables, then
        quantize the linear layers (w8a8 calibrated on calibration_ids, or w4a16) or prepack them for the CPU."""
        c = self.config
        if c.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        for layer in self.model.layers:
            layer.self_attn.fuse()
            layer.mlp.fuse()
        for module in self.modules():
            if isinstance(module, GemmaRMSNorm):
                module.prepare()
        # sqrt(hidden_size) rounded to the model dtype first, as HF does
        self.embed_scale = torch.tensor(c.hidden_size**0.5, dtype=self.model.embed_tokens.weight.dtype, device=device)
        self.rotary = RotaryEmbedding(inverse_frequencies(c, rope_freqs), c.max_position_embeddings, device)
        local = replace(c, rope_theta=c.rope_local_theta or c.rope_theta, rope_scaling=None)  # scaling is global-only
        self.rotary_local = RotaryEmbedding(inverse_frequencies(local), c.max_position_embeddings, device)
        prepare_linears(self, device, quantization, self.row_roles, lambda: self.prefill_alone(calibration_ids or []))

    prefill_alone = LlamaForCausalLM.prefill_alone  # the same one-off prefill over a cache of its own

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, kv_cache: KVCache,
                batch: AttentionBatch, logits_indices: torch.Tensor) -> torch.Tensor:
        """Run the step's tokens; return logits only for the rows in logits_indices."""
        assert self.rotary is not None and self.rotary_local is not None, "call prepare() after loading weights"
        c = self.config
        self.row_roles.decode_rows = batch.num_decodes
        x = self.model.embed_tokens(input_ids) * self.embed_scale
        full_rope = self.rotary.tables(positions, x.dtype)
        local_rope = self.rotary_local.tables(positions, x.dtype)
        local_batch = batch if c.sliding_window is None else sliding_window_batch(batch, positions, c.sliding_window)
        for i, layer in enumerate(self.model.layers):
            sliding = layer.self_attn.sliding
            cos, sin = local_rope if sliding else full_rope
            x = layer(x, cos, sin, kv_cache.k[i], kv_cache.v[i], local_batch if sliding else batch)
        x = self.model.norm(x[logits_indices])
        logits = self.lm_head(x).float()
        if c.final_logit_softcapping:
            logits = torch.tanh(logits / c.final_logit_softcapping) * c.final_logit_softcapping
        return logits
