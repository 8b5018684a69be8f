"""Lay a scheduled step out as tensors, run the model over the paged KV cache, sample."""

from __future__ import annotations

import torch

from tokenmill.engine.cuda_graphs import DecodeGraphs
from tokenmill.engine.sampler import SampleResult, needs_cpu, sample
from tokenmill.engine.sequence import Sequence
from tokenmill.models.attention import AttentionBatch, KVCache, PrefillSpan, decode_slots
from tokenmill.models.llama import LlamaForCausalLM


class ModelRunner:
    def __init__(self, model: LlamaForCausalLM, num_blocks: int, block_size: int, device: torch.device,
                 kv_dtype: torch.dtype, cuda_graphs: bool = True, max_num_seqs: int = 128) -> None:
        cfg = model.config
        self.model = model
        self.block_size = block_size
        self.device = device
        # one block beyond the block manager's: the scratch block padded graph rows write into
        self.kv_cache = KVCache(cfg.num_layers, (num_blocks + 1) * block_size, cfg.num_kv_heads, cfg.head_dim,
                                kv_dtype, device)
        self.graphs: DecodeGraphs | None = None
        if cuda_graphs and device.type == "cuda" and getattr(model, "decode_graphs_safe", False):
            self.graphs = DecodeGraphs(model, self.kv_cache, block_size, num_blocks, min(max_num_seqs, 256), device)

    def slots(self, seq: Sequence, start: int, end: int) -> list[int]:
        """Cache slots of seq's positions [start, end), from its block table."""
        bs = self.block_size
        blocks = seq.block_ids
        return [blocks[p // bs] * bs + p % bs for p in range(start, end)]

    @torch.inference_mode()
    def execute(self, seqs: list[Sequence], num_new_tokens: list[int]) -> tuple[list[Sequence], SampleResult | None]:
        """Compute the scheduled tokens; return the sequences that produced a token, and the draws."""
        decodes = [i for i in range(len(seqs)) if num_new_tokens[i] == 1 and seqs[i].num_computed_tokens + 1 == seqs[i].num_tokens]
        is_decode = set(decodes)
        order = decodes + [i for i in range(len(seqs)) if i not in is_decode]
        dev = self.device
        input_ids: list[int] = []
        positions: list[int] = []
        slot_mapping: list[int] = []
        logits_rows: list[int] = []
        sampled: list[Sequence] = []
        prefills: list[PrefillSpan] = []
        for i in order:
            seq, n = seqs[i], num_new_tokens[i]
            start, end = seq.num_computed_tokens, seq.num_computed_tokens + n
            token_start = len(input_ids)
            input_ids.extend(seq.token_ids(start, end))
            positions.extend(range(start, end))
            slot_mapping.extend(self.slots(seq, start, end))
            if i not in is_decode:
                mask = None
                if start > 0:
                    q_pos = torch.arange(start, end).unsqueeze(1)
                    mask = (torch.arange(end).unsqueeze(0) <= q_pos).to(dev)
                prefills.append(PrefillSpan(token_start, n, torch.tensor(self.slots(seq, 0, end), device=dev), mask))
            if end == seq.num_tokens:  # the whole known sequence is computed: draw the next token
                logits_rows.append(len(input_ids) - 1)
                sampled.append(seq)
        decoding = [seqs[i] for i in decodes]
        logits = None
        if self.graphs is not None and decoding and not prefills:
            logits = self.graphs.run(input_ids, positions, slot_mapping, decoding)
        if logits is None:
            batch = self._attention_batch(slot_mapping, decoding, prefills)
            logits = self.model(torch.tensor(input_ids, device=dev), torch.tensor(positions, device=dev),
                                self.kv_cache, batch, torch.tensor(logits_rows, device=dev, dtype=torch.long))
        for seq, n in zip(seqs, num_new_tokens):
            seq.num_computed_tokens += n
        if not sampled:
            return [], None
        return sampled, sample(logits.cpu() if dev.type != "cpu" and needs_cpu(sampled) else logits, sampled)

    def _attention_batch(self, slot_mapping: list[int], decodes: list[Sequence], prefills: list[PrefillSpan]) -> AttentionBatch:
        dev = self.device
        kv_slots = mask = None
        if decodes:
            width = max(len(s.block_ids) for s in decodes)
            kv_slots, mask = decode_slots([s.block_ids for s in decodes], [s.num_computed_tokens + 1 for s in decodes],
                                          self.block_size, width, pad_block=0)
            kv_slots, mask = kv_slots.to(dev), mask.to(dev)
        return AttentionBatch(torch.tensor(slot_mapping, device=dev), len(decodes), kv_slots, mask, prefills)
