"""Paged blocks and the prefix cache: sharing, salts, LRU reuse and eviction."""

from __future__ import annotations

from tokenmill.engine.block_manager import BlockManager
from tokenmill.engine.params import SamplingParams
from tokenmill.engine.sequence import Sequence


def computed(bm: BlockManager, tokens: list[int], salt: str = "") -> Sequence:
    """A sequence whose tokens were all computed, as after its prefill."""
    s = Sequence("r", tokens, SamplingParams(), cache_salt=salt)
    bm.match_prefix(s)
    n = len(tokens) - s.num_computed_tokens
    bm.allocate(s, n)
    s.num_computed_tokens += n
    bm.register_full_blocks(s)
    return s


def test_identical_prefix_shares_full_blocks_only():
    bm = BlockManager(num_blocks=10, block_size=4)
    a = computed(bm, list(range(10)))  # 2 full blocks + 2 tokens
    b = Sequence("b", list(range(8)) + [99, 98, 97], SamplingParams())
    assert bm.match_prefix(b) == 8
    assert b.block_ids == a.block_ids[:2]


def test_a_prompt_of_whole_blocks_still_computes_its_last_token():
    bm = BlockManager(num_blocks=10, block_size=4)
    computed(bm, list(range(8)))
    again = Sequence("c", list(range(8)), SamplingParams())
    assert bm.match_prefix(again) == 4


def test_salt_separates_tenants():
    bm = BlockManager(num_blocks=10, block_size=4)
    computed(bm, list(range(9)), salt="acme")
    other = Sequence("x", list(range(9)), SamplingParams(), cache_salt="globex")
    assert bm.match_prefix(other) == 0


def test_freed_blocks_stay_cached_until_reused():
    bm = BlockManager(num_blocks=4, block_size=4)
    bm.free_sequence(computed(bm, list(range(9))))  # 3 blocks, 2 of them full and cached
    assert bm.num_free_blocks == 4
    hit = Sequence("h", list(range(9)), SamplingParams())
    assert bm.match_prefix(hit) == 8  # still there after being freed
    bm.free_sequence(hit)
    bm.free_sequence(computed(bm, [50 + i for i in range(16)]))  # needs all four blocks: evicts them
    miss = Sequence("m", list(range(9)), SamplingParams())
    assert bm.match_prefix(miss) == 0


def test_least_recently_freed_blocks_are_evicted_first():
    bm = BlockManager(num_blocks=6, block_size=4)
    old = computed(bm, [1] * 4 + [2])
    new = computed(bm, [3] * 4 + [4])
    bm.free_sequence(old)
    bm.free_sequence(new)
    computed(bm, [9] * 20)  # five blocks: the four uncached ones, then the older cached one
    assert bm.match_prefix(Sequence("n", [3] * 4 + [4], SamplingParams())) == 4
    assert bm.match_prefix(Sequence("o", [1] * 4 + [2], SamplingParams())) == 0
