"""Decode steps padded to CUDA-graph buckets give the tokens the plain steps give.

On the CPU the padded, fixed-shape steps run eagerly (capture off): that checks the padding rows, the
scratch block and the masked context columns. On a GPU the engine captures and replays them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tokenmill.engine.config import EngineConfig
from tokenmill.engine.cuda_graphs import DecodeGraphs
from tokenmill.engine.engine import LLMEngine
from tokenmill.engine.messages import EngineRequest
from tokenmill.engine.params import SamplingParams

PROMPTS = ["The three primary colours are", "中国的首都是", "def add(a, b):\n    return",
           "Once upon a time, in a small village by the sea, there lived an old fisherman who", "Paris is"]


def staggered(tokenizer) -> list[EngineRequest]:
    """Requests that finish at different steps, so the decode batch shrinks through several buckets;
    the longest crosses 2 and 4 blocks of context."""
    return [EngineRequest(request_id=f"r{i}", prompt_token_ids=tokenizer.encode(p),
                          params=SamplingParams(max_tokens=10 + 12 * i, temperature=0.0, ignore_eos=True))
            for i, p in enumerate(PROMPTS)]


def make_engine(model_path: Path, **kw) -> LLMEngine:
    return LLMEngine(EngineConfig(model_path=str(model_path), dtype="float32", kv_cache_bytes=32 * 1024**2,
                                  max_num_batched_tokens=48, **kw))


def test_padded_decode_steps_give_the_same_tokens(model_path, tokenizer):
    engine = make_engine(model_path, device="cpu")
    plain = engine.generate(staggered(tokenizer))
    runner = engine.runner
    assert runner.graphs is None  # graphs are for CUDA only
    runner.graphs = DecodeGraphs(runner.model, runner.kv_cache, runner.block_size, engine.num_blocks,
                                 max_batch=8, device=engine.device, capture=False)
    assert engine.generate(staggered(tokenizer)) == plain
    used = set(runner.graphs.buckets)
    # five decoding rows ran padded to eight, and shorter batches and wider contexts had buckets of their own
    assert {batch for batch, _ in used} == {1, 2, 4, 8} and {width for _, width in used} >= {2, 4}
    # the scratch block is not the block manager's to hand out
    assert engine.num_blocks * engine.config.block_size < runner.kv_cache.k[0].shape[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graphs_give_the_tokens_eager_steps_give(model_path, tokenizer):
    eager = make_engine(model_path, device="cuda", cuda_graphs=False)
    expected = eager.generate(staggered(tokenizer))
    del eager
    graphed = make_engine(model_path, device="cuda")
    assert graphed.generate(staggered(tokenizer)) == expected
    graphs = graphed.runner.graphs
    assert graphs is not None and not graphs.disabled
    assert graphs.buckets and all(b.graph is not None for b in graphs.buckets.values())
