"""The engine end to end on the real model: batching, prefix cache, preemption, sampling, KV transfer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tokenmill.engine.config import EngineConfig
from tokenmill.engine.engine import LLMEngine, RequestError
from tokenmill.engine.messages import EngineRequest
from tokenmill.engine.params import SamplingParams

PROMPTS = [
    "The three primary colours are",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "中国的首都是",
    "Translate to French: I would like a cup of coffee, please.",
    "List five animals that live in the ocean:\n1.",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
]


def greedy(max_tokens: int = 24, **kw) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True, **kw)


def requests(tokenizer, prompts: list[str], params: SamplingParams, salt: str = "") -> list[EngineRequest]:
    return [EngineRequest(request_id=f"r{i}", prompt_token_ids=tokenizer.encode(p), params=params, cache_salt=salt)
            for i, p in enumerate(prompts)]


def make_engine(model_path: Path, kv_cache_bytes: int, **kw) -> LLMEngine:
    return LLMEngine(EngineConfig(model_path=str(model_path), kv_cache_bytes=kv_cache_bytes, max_num_batched_tokens=64,
                                  dtype="float32", **kw))


@pytest.fixture(scope="module")
def engine(model_path: Path) -> LLMEngine:
    return make_engine(model_path, 128 * 1024**2)


@pytest.fixture(scope="module")
def unbatched(engine: LLMEngine, tokenizer) -> dict[str, list[int]]:
    """Each prompt run alone: the baseline the other tests compare against."""
    out = {}
    for req in requests(tokenizer, PROMPTS, greedy()):
        out.update(engine.generate([req]))
    return out


def test_batched_output_equals_unbatched(engine, tokenizer, unbatched):
    # a 64-token budget forces chunked prefill mixed with decodes in the same steps
    assert engine.generate(requests(tokenizer, PROMPTS, greedy())) == unbatched


def test_prefix_cache_hit_leaves_output_unchanged(engine, tokenizer, unbatched):
    long_prompt = PROMPTS[5] * 3
    first = requests(tokenizer, [long_prompt], greedy())[0]
    cold = engine.generate([first])
    engine.add_request(first)
    outputs = []
    while engine.has_work:
        outputs.extend(engine.step())
    assert outputs[0].num_cached_tokens >= 32, "the repeated prompt should hit the prefix cache"
    assert [t for o in outputs for t in o.token_ids] == cold["r0"]


def test_cache_salt_keeps_tenants_apart(engine, tokenizer):
    prompt = PROMPTS[5] * 3
    engine.generate(requests(tokenizer, [prompt], greedy(4), salt="tenant-a"))
    engine.add_request(requests(tokenizer, [prompt], greedy(4), salt="tenant-b")[0])
    outputs = []
    while engine.has_work:
        outputs.extend(engine.step())
    assert outputs[0].num_cached_tokens == 0


def test_preemption_leaves_output_unchanged(model_path, tokenizer, unbatched):
    # 12 blocks of 16 tokens cannot hold six sequences of ~45 tokens at once
    small = make_engine(model_path, 12 * 368_640)  # a block: 16 tokens x 30 layers x K,V x 3 heads x 64 x fp16
    assert small.num_blocks == 12
    assert small.generate(requests(tokenizer, PROMPTS, greedy())) == unbatched
    assert small.num_preemptions > 0


def test_kv_export_import_continues_on_another_engine(engine, model_path, tokenizer, unbatched):
    other = make_engine(model_path, 32 * 1024**2)
    req = requests(tokenizer, PROMPTS[:1], greedy())[0]
    engine.add_request(req)
    produced: list[int] = []
    while len(produced) < 7:  # prefill here, then a few decode steps
        produced.extend(t for o in engine.step() for t in o.token_ids)
    moved = engine.export_request("r0")
    assert not engine.has_work
    other.import_request(moved)
    while other.has_work:
        produced.extend(t for o in other.step() for t in o.token_ids)
    assert produced == unbatched["r0"]


def test_seed_reproducible_regardless_of_batch(engine, tokenizer):
    params = SamplingParams(max_tokens=16, temperature=1.0, seed=1234, ignore_eos=True)
    alone = engine.generate(requests(tokenizer, PROMPTS[:1], params))["r0"]
    crowd = engine.generate(requests(tokenizer, PROMPTS, params))["r0"]
    other_seed = engine.generate(requests(tokenizer, PROMPTS[:1], SamplingParams(max_tokens=16, seed=99, ignore_eos=True)))["r0"]
    assert alone == crowd
    assert alone != other_seed


def test_top_k_one_is_greedy(engine, tokenizer, unbatched):
    params = SamplingParams(max_tokens=24, temperature=0.8, top_k=1, ignore_eos=True)
    assert engine.generate(requests(tokenizer, PROMPTS[:2], params)) == {k: unbatched[k] for k in ("r0", "r1")}


def test_frequency_penalty_reduces_repetition(engine, tokenizer):
    prompt = ["Repeat after me: la la la la la la la la"]
    plain = engine.generate(requests(tokenizer, prompt, greedy(32)))["r0"]
    penalised = engine.generate(requests(tokenizer, prompt, greedy(32, frequency_penalty=1.5)))["r0"]
    assert len(set(penalised)) > len(set(plain))


def test_stop_token_id_and_eos_end_the_sequence(engine, tokenizer, unbatched):
    stop_at = unbatched["r0"][5]
    out = engine.generate(requests(tokenizer, PROMPTS[:1], greedy(stop_token_ids=[stop_at])))["r0"]
    assert out == unbatched["r0"][: unbatched["r0"].index(stop_at) + 1]
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Say hi."}])
    req = EngineRequest(request_id="eos", prompt_token_ids=tokenizer.encode(chat, add_special_tokens=False),
                        params=SamplingParams(max_tokens=200, temperature=0.0))
    out = engine.generate([req])["eos"]
    assert out[-1] in tokenizer.eos_token_ids and len(out) < 200


def test_logprobs_are_reported(engine, tokenizer):
    engine.add_request(requests(tokenizer, PROMPTS[:1], greedy(3, logprobs=5))[0])
    outs = []
    while engine.has_work:
        outs.extend(engine.step())
    for o in outs:
        (lp,) = o.logprobs
        assert lp.token_id == o.token_ids[0] and len(lp.top) == 5
        assert lp.top[0][0] == lp.token_id and lp.logprob == pytest.approx(lp.top[0][1]) and lp.logprob <= 0


def test_bad_requests_are_refused_with_reasons(engine, tokenizer):
    with pytest.raises(RequestError, match="maximum context length"):
        engine.add_request(EngineRequest(request_id="long", prompt_token_ids=[1] * 9000, params=greedy()))
    with pytest.raises(RequestError, match="empty"):
        engine.add_request(EngineRequest(request_id="empty", prompt_token_ids=[], params=greedy()))
    with pytest.raises(RequestError, match="token ids"):
        engine.add_request(EngineRequest(request_id="oov", prompt_token_ids=[10**6], params=greedy()))
    assert not engine.has_work


def test_abort_frees_blocks(engine, tokenizer):
    free_before = engine.block_manager.num_free_blocks
    engine.add_request(requests(tokenizer, PROMPTS[5:], greedy(64))[0])
    engine.step()
    assert engine.block_manager.num_free_blocks < free_before
    out = engine.abort("r0")
    assert out.finish_reason == "abort" and not engine.has_work
    assert engine.block_manager.num_free_blocks == free_before



def test_bfloat16_on_cpu_gives_the_same_answer(model_path, tokenizer):
    # the dtype a CPU with AMX or AVX512-BF16 picks by default; slow but correct elsewhere
    bf16 = LLMEngine(EngineConfig(model_path=str(model_path), dtype="bfloat16", device="cpu", kv_cache_bytes=16 * 1024**2))
    assert bf16.kv_dtype == torch.bfloat16
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}])
    req = EngineRequest(request_id="fr", prompt_token_ids=tokenizer.encode(chat, add_special_tokens=False),
                        params=SamplingParams(max_tokens=12, temperature=0.0))
    assert "Paris" in tokenizer.decode(bf16.generate([req])["fr"])
