"""Lay a scheduled step out as tensors, run the model over the paged KV cache, sample."""

from __future__ import annotations

import torch

from tokenmill.engine.sampler import SampleResult, sample
from tokenmill.engine.sequence import Sequence
from tokenmill.models.attention import AttentionBatch, KVCache, PrefillSpan
from tokenmill.models.llama import LlamaForCausalLM


class ModelRunner:
    def __init__(self, model: LlamaForCausalLM, num_blocks: int, block_size: int,
                 device: torch.device, dtype: torch.dtype) -> None:
        cfg = model.config
        self.model = model
        self.block_size = block_size
        self.device = device
        self.dtype = dtype
        self.kv_cache = KVCache(cfg.num_layers, num_blocks * block_size, cfg.num_kv_heads, cfg.head_dim, dtype, device)

    def _slots(self, seq: Sequence, start: int, end: int) -> list[int]:
        bs = self.block_size
        blocks = seq.block_ids
        return [blocks[p // bs] * bs + p % bs for p in range(start, end)]

    @torch.inference_mode()
    def execute(self, seqs: list[Sequence], num_new_tokens: list[int]) -> tuple[list[Sequence], SampleResult | None]:
        """Compute the scheduled tokens; return the sequences that produced a token, and the draws."""
        order = sorted(range(len(seqs)), key=lambda i: num_new_tokens[i] != 1 or
                       seqs[i].num_computed_tokens + 1 != seqs[i].num_tokens)
        input_ids: list[int] = []
        positions: list[int] = []
        slot_mapping: list[int] = []
        logits_rows: list[int] = []
        sampled: list[Sequence] = []
        decode_slots: list[list[int]] = []
        prefills: list[PrefillSpan] = []
        for i in order:
            seq, n = seqs[i], num_new_tokens[i]
            start, end = seq.num_computed_tokens, seq.num_computed_tokens + n
            token_start = len(input_ids)
            input_ids.extend(seq.token_ids(start, end))
            positions.extend(range(start, end))
            slot_mapping.extend(self._slots(seq, start, end))
            context_slots = self._slots(seq, 0, end)
            if n == 1 and end == seq.num_tokens and not prefills:
                decode_slots.append(context_slots)
            else:
                mask = None
                if start > 0:
                    q_pos = torch.arange(start, end).unsqueeze(1)
                    mask = (torch.arange(end).unsqueeze(0) <= q_pos).to(self.device)
                prefills.append(PrefillSpan(token_start, n, torch.tensor(context_slots, device=self.device), mask))
            if end == seq.num_tokens:  # the whole known sequence is computed: draw the next token
                logits_rows.append(len(input_ids) - 1)
                sampled.append(seq)
        batch = self._attention_batch(slot_mapping, decode_slots, prefills)
        dev = self.device
        logits = self.model(torch.tensor(input_ids, device=dev), torch.tensor(positions, device=dev),
                            self.kv_cache, batch, torch.tensor(logits_rows, device=dev, dtype=torch.long))
        for seq, n in zip(seqs, num_new_tokens):
            seq.num_computed_tokens += n
        if not sampled:
            return [], None
        return sampled, sample(logits.cpu() if dev.type != "cpu" else logits, sampled)

    def _attention_batch(self, slot_mapping: list[int], decode_slots: list[list[int]],
                         prefills: list[PrefillSpan]) -> AttentionBatch:
        dev = self.device
        kv_slots = mask = None
        if decode_slots:
            width = max(map(len, decode_slots))
            kv = torch.zeros(len(decode_slots), width, dtype=torch.long)
            m = torch.zeros(len(decode_slots), width, dtype=torch.bool)
            for row, slots in enumerate(decode_slots):
                kv[row, :len(slots)] = torch.tensor(slots)
                m[row, :len(slots)] = True
            kv_slots, mask = kv.to(dev), m.view(len(decode_slots), 1, 1, width).to(dev)
        return AttentionBatch(torch.tensor(slot_mapping, device=dev), len(decode_slots), kv_slots, mask, prefills)
