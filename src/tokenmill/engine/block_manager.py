"""Paged KV blocks with automatic prefix caching.

A block holds block_size tokens of K/V. Full blocks get a hash chained from the parent block's
hash, the block's token ids and the request's cache salt, so two requests share a cached block
only when everything before it is identical and they carry the same salt (tenant). Freed blocks
keep their hash and sit in an LRU queue until they are reused for something else.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from tokenmill.engine.sequence import Sequence


@dataclass(slots=True)
class Block:
    block_id: int
    ref_count: int = 0
    block_hash: bytes | None = None


def chain_hash(parent: bytes | None, token_ids: list[int], salt: str) -> bytes:
    """Hash of a full block given everything before it."""
    h = hashlib.blake2b(digest_size=16)
    h.update(parent or b"root")
    h.update(salt.encode())
    h.update(b"|")
    h.update(",".join(map(str, token_ids)).encode())
    return h.digest()


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True) -> None:
        assert num_blocks > 0 and block_size > 0
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.enable_prefix_caching = enable_prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(num_blocks))  # LRU first
        self.cached: dict[bytes, int] = {}
        self.prefix_queries_tokens = 0
        self.prefix_hit_tokens = 0

    @property
    def num_free_blocks(self) -> int:
        return len(self.free)

    @property
    def usage(self) -> float:
        return 1.0 - len(self.free) / self.num_blocks

    def blocks_needed(self, seq: Sequence, num_new_tokens: int) -> int:
        total = -(-(seq.num_computed_tokens + num_new_tokens) // self.block_size)
        return max(0, total - len(seq.block_ids))

    def can_allocate(self, seq: Sequence, num_new_tokens: int) -> bool:
        return self.blocks_needed(seq, num_new_tokens) <= len(self.free)

    def allocate(self, seq: Sequence, num_new_tokens: int) -> None:
        """Give seq enough blocks to hold num_new_tokens more computed tokens."""
        for _ in range(self.blocks_needed(seq, num_new_tokens)):
            block_id, _ = self.free.popitem(last=False)
            block = self.blocks[block_id]
            if block.block_hash is not None:  # evict its cached content
                if self.cached.get(block.block_hash) == block_id:
                    del self.cached[block.block_hash]
                block.block_hash = None
            block.ref_count = 1
            seq.block_ids.append(block_id)

    def match_prefix(self, seq: Sequence) -> int:
        """Attach cached blocks for seq's leading full blocks; return how many tokens they cover."""
        assert not seq.block_ids and seq.num_computed_tokens == 0
        self._extend_hashes(seq, seq.num_tokens)
        # always leave at least one token to compute, so the step yields logits
        max_blocks = (seq.num_tokens - 1) // self.block_size
        hits = 0
        if self.enable_prefix_caching:
            for block_hash in seq.block_hashes[:max_blocks]:
                block_id = self.cached.get(block_hash)
                if block_id is None:
                    break
                block = self.blocks[block_id]
                if block.ref_count == 0:
                    del self.free[block_id]
                block.ref_count += 1
                seq.block_ids.append(block_id)
                hits += 1
        num_tokens = hits * self.block_size
        seq.num_computed_tokens = num_tokens
        self.prefix_queries_tokens += seq.num_prompt_tokens
        self.prefix_hit_tokens += min(num_tokens, seq.num_prompt_tokens)
        return num_tokens

    def register_full_blocks(self, seq: Sequence) -> None:
        """Publish seq's newly computed full blocks to the prefix cache."""
        if not self.enable_prefix_caching:
            return
        num_full = seq.num_computed_tokens // self.block_size
        self._extend_hashes(seq, num_full * self.block_size)
        for i in range(num_full):
            block = self.blocks[seq.block_ids[i]]
            if block.block_hash is None:
                block.block_hash = seq.block_hashes[i]
                self.cached.setdefault(block.block_hash, block.block_id)

    def _extend_hashes(self, seq: Sequence, num_tokens: int) -> None:
        bs = self.block_size
        for i in range(len(seq.block_hashes), num_tokens // bs):
            parent = seq.block_hashes[i - 1] if i else None
            seq.block_hashes.append(chain_hash(parent, seq.token_ids(i * bs, (i + 1) * bs), seq.cache_salt))

    def free_sequence(self, seq: Sequence) -> None:
        """Release seq's blocks; cached ones stay reusable until evicted (tail blocks go first)."""
        for block_id in reversed(seq.block_ids):
            block = self.blocks[block_id]
            block.ref_count -= 1
            assert block.ref_count >= 0
            if block.ref_count == 0:
                if block.block_hash is None:
                    self.free[block_id] = None
                    self.free.move_to_end(block_id, last=False)  # uncached: reuse first
                else:
                    self.free[block_id] = None
        seq.block_ids = []
        seq.num_computed_tokens = 0
