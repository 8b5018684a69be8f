"""CUDA graphs for decode steps.

On a GPU a decode step of a small model is almost all launch overhead: SmolLM2-135M runs about a
thousand small kernels a step, ~20 ms of Python and launches against well under a millisecond of GPU
work (BENCHMARKS.md). A graph captured once per (batch, context) bucket replays them in one launch.

A step is padded up to its bucket: extra rows decode token 0 into a scratch block that no sequence
owns, extra context columns are masked out, and only the real rows' logits are returned. Rows never
mix, so padding leaves every real row's result as it was. Buckets are captured on first use.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from tokenmill.engine.sequence import Sequence
from tokenmill.models.attention import AttentionBatch, KVCache, decode_slots

log = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256)


@dataclass(slots=True)
class DecodeBuffers:
    """The fixed tensors one bucket's graph reads; a step copies its inputs into them."""

    input_ids: torch.Tensor  # [B]
    positions: torch.Tensor  # [B]
    slot_mapping: torch.Tensor  # [B]
    kv_slots: torch.Tensor  # [B, L]
    mask: torch.Tensor  # [B, 1, 1, L]
    logits_rows: torch.Tensor  # [B]: every row


@dataclass(slots=True)
class _Bucket:
    buffers: DecodeBuffers
    graph: torch.cuda.CUDAGraph | None  # None: run the same padded step eagerly (capture off)
    logits: torch.Tensor | None  # the graph's output [B, V]


class DecodeGraphs:
    """Runs decode-only steps of up to max_batch sequences as replays of captured graphs.

    With capture=False the same padded, fixed-shape steps run eagerly: that is how the CPU tests
    check the padding, and the graphs replay exactly those operations.
    """

    def __init__(self, model: torch.nn.Module, kv_cache: KVCache, block_size: int, scratch_block: int,
                 max_batch: int, device: torch.device, capture: bool = True) -> None:
        self.model = model
        self.kv_cache = kv_cache
        self.block_size = block_size
        self.scratch_block = scratch_block
        self.batch_buckets = [b for b in BATCH_BUCKETS if b < max_batch] + [max_batch]
        self.device = device
        self.capture = capture
        self.pool = torch.cuda.graph_pool_handle() if capture else None
        self.buckets: dict[tuple[int, int], _Bucket] = {}
        self.disabled = False

    def run(self, input_ids: list[int], positions: list[int], slot_mapping: list[int],
            decodes: list[Sequence]) -> torch.Tensor | None:
        """Logits [len(decodes), V] of a step that only decodes; None when it must run eagerly."""
        n = len(decodes)
        if self.disabled or n > self.batch_buckets[-1]:
            return None
        batch = next(b for b in self.batch_buckets if b >= n)
        width = max(len(s.block_ids) for s in decodes)
        width = 1 << (width - 1).bit_length()  # context buckets: powers of two of blocks
        bucket = self.buckets.get((batch, width))
        if bucket is None:
            bucket = self._new_bucket(batch, width)
            if bucket is None:
                return None
        self._fill(bucket.buffers, input_ids, positions, slot_mapping, decodes)
        if bucket.graph is None:
            return self._forward(bucket.buffers)[:n]
        bucket.graph.replay()
        assert bucket.logits is not None
        return bucket.logits[:n]

    def _fill(self, buffers: DecodeBuffers, input_ids: list[int], positions: list[int], slot_mapping: list[int],
              decodes: list[Sequence]) -> None:
        batch, width = buffers.kv_slots.shape[0], buffers.kv_slots.shape[1] // self.block_size
        pad = batch - len(decodes)
        # padded rows write token 0's K/V into the scratch block and attend to it alone
        kv_slots, mask = decode_slots([s.block_ids for s in decodes] + [[]] * pad,
                                      [s.num_computed_tokens + 1 for s in decodes] + [1] * pad,
                                      self.block_size, width, pad_block=self.scratch_block)
        buffers.input_ids.copy_(torch.tensor(input_ids + [0] * pad))
        buffers.positions.copy_(torch.tensor(positions + [0] * pad))
        buffers.slot_mapping.copy_(torch.tensor(slot_mapping + [self.scratch_block * self.block_size] * pad))
        buffers.kv_slots.copy_(kv_slots)
        buffers.mask.copy_(mask)

    def _forward(self, buffers: DecodeBuffers) -> torch.Tensor:
        batch = buffers.input_ids.shape[0]
        attention = AttentionBatch(buffers.slot_mapping, batch, buffers.kv_slots, buffers.mask, [])
        return self.model(buffers.input_ids, buffers.positions, self.kv_cache, attention, buffers.logits_rows)

    def _new_bucket(self, batch: int, width: int) -> _Bucket | None:
        dev = self.device
        context = width * self.block_size
        scratch_slot = self.scratch_block * self.block_size
        buffers = DecodeBuffers(  # every row starts as padding, so warm-up and capture touch the scratch block only
            input_ids=torch.zeros(batch, dtype=torch.long, device=dev),
            positions=torch.zeros(batch, dtype=torch.long, device=dev),
            slot_mapping=torch.full((batch,), scratch_slot, dtype=torch.long, device=dev),
            kv_slots=torch.full((batch, context), scratch_slot, dtype=torch.long, device=dev),
            mask=torch.zeros(batch, 1, 1, context, dtype=torch.bool, device=dev),
            logits_rows=torch.arange(batch, device=dev))
        buffers.mask[..., 0] = True
        if not self.capture:
            bucket = _Bucket(buffers, None, None)
        else:
            started = time.perf_counter()
            try:
                bucket = self._capture(buffers)
            except RuntimeError as exc:  # never fail a step over a graph: run eagerly from now on
                log.warning("CUDA graph capture failed for batch %d x %d tokens (%s); decoding eagerly from now on",
                            batch, context, exc)
                self.disabled = True
                return None
            log.debug("captured the decode graph for batch %d x %d tokens in %.0f ms",
                      batch, context, (time.perf_counter() - started) * 1e3)
        self.buckets[(batch, width)] = bucket
        return bucket

    def _capture(self, buffers: DecodeBuffers) -> _Bucket:
        # warm up on a side stream first: lazy set-up (library handles, kernel choice) must not be captured
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            self._forward(buffers)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            logits = self._forward(buffers)
        return _Bucket(buffers, graph, logits)
