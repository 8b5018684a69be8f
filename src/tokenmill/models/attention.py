"""Attention over a paged KV cache, for a step that mixes decodes and prefill chunks.

The step's tokens are flattened: first one token per decoding sequence, then the chunks of
sequences being prefilled. Every new token's K and V are written into its cache slot; each
query then attends over the keys gathered from its sequence's blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(slots=True)
class PrefillSpan:
    token_start: int  # where this chunk's tokens start in the flattened step
    num_tokens: int  # chunk length
    kv_slots: torch.Tensor  # [context] cache slots of every position up to the chunk's end
    mask: torch.Tensor | None  # [num_tokens, context] allowed keys; None when plain causal


@dataclass(slots=True)
class AttentionBatch:
    slot_mapping: torch.Tensor  # [T] cache slot of each new token
    num_decodes: int  # the first num_decodes tokens are single-token decodes
    decode_kv_slots: torch.Tensor | None  # [num_decodes, max_context] slots to gather (padded)
    decode_mask: torch.Tensor | None  # [num_decodes, 1, 1, max_context] True where a key is real
    prefills: list[PrefillSpan]


class KVCache:
    """K and V for every layer, as flat slot arrays: slot = block * block_size + offset."""

    def __init__(self, num_layers: int, num_slots: int, num_kv_heads: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        shape = (num_slots, num_kv_heads, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(num_layers)]

    @property
    def bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)


def gather_slots(cache: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """cache[slots] for a slot index tensor of any shape; index_select is ~10x faster than advanced
    indexing here (BENCHMARKS.md: 0.16 ms against 1.9 ms for 64 x 176 slots)."""
    return cache.index_select(0, slots.reshape(-1)).view(*slots.shape, *cache.shape[1:])


def paged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                    v_cache: torch.Tensor, batch: AttentionBatch, scale: float) -> torch.Tensor:
    """q [T, H, D], k/v [T, Hkv, D] for the new tokens; returns [T, H, D]."""
    k_cache.index_copy_(0, batch.slot_mapping, k.to(k_cache.dtype))
    v_cache.index_copy_(0, batch.slot_mapping, v.to(v_cache.dtype))
    out = torch.empty_like(q)
    nd = batch.num_decodes
    if nd:
        keys = gather_slots(k_cache, batch.decode_kv_slots).to(q.dtype).transpose(1, 2)  # [B, Hkv, L, D]
        values = gather_slots(v_cache, batch.decode_kv_slots).to(q.dtype).transpose(1, 2)
        queries = q[:nd].unsqueeze(2)  # [B, H, 1, D]
        attended = F.scaled_dot_product_attention(queries, keys, values, attn_mask=batch.decode_mask,
                                                  scale=scale, enable_gqa=True)
        out[:nd] = attended.squeeze(2)
    for span in batch.prefills:
        end = span.token_start + span.num_tokens
        keys = gather_slots(k_cache, span.kv_slots).to(q.dtype).transpose(0, 1).unsqueeze(0)  # [1, Hkv, L, D]
        values = gather_slots(v_cache, span.kv_slots).to(q.dtype).transpose(0, 1).unsqueeze(0)
        queries = q[span.token_start:end].transpose(0, 1).unsqueeze(0)  # [1, H, n, D]
        attended = F.scaled_dot_product_attention(queries, keys, values, attn_mask=span.mask,
                                                  is_causal=span.mask is None, scale=scale, enable_gqa=True)
        out[span.token_start:end] = attended.squeeze(0).transpose(0, 1)
    return out
