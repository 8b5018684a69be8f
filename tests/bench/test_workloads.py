"""Workloads: exact prompt lengths in the model's tokenizer, the usecase shapes, chat in two languages."""

import pytest

from tokenmill.bench.workloads import USECASES, PromptMaker, WorkloadConfig, build_requests, usecase_scale
from tokenmill.engine.tokenizer import load_tokenizer
from tokenmill.modelstore.store import resolve_model


@pytest.fixture(scope="module")
def maker() -> PromptMaker:
    tok = load_tokenizer(resolve_model("smollm2-135m-instruct").path)
    return PromptMaker(lambda text: tok.encode(text, add_special_tokens=False), tok.decode)


def test_random_prompts_have_exact_lengths(maker):
    config = WorkloadConfig("random", num_requests=20, input_tokens=100, output_tokens=32, range_ratio=0.5, seed=3)
    requests = build_requests(config, maker)
    lengths = [r.prompt_tokens for r in requests]
    assert all(r.prompt_tokens == maker.count(r.prompt) for r in requests)
    assert all(50 <= n <= 150 for n in lengths) and len(set(lengths)) > 5
    assert all(16 <= r.max_tokens <= 48 for r in requests)
    assert build_requests(config, maker) == requests  # the same seed makes the same requests


def test_exact_length_without_range(maker):
    requests = build_requests(WorkloadConfig("random", num_requests=10, input_tokens=257), maker)
    assert [r.prompt_tokens for r in requests] == [257] * 10


def test_shared_prefix_requests_share_their_system_prompt(maker):
    config = WorkloadConfig("shared-prefix", num_requests=8, input_tokens=20, num_prefixes=2, prefix_tokens=64)
    requests = build_requests(config, maker)
    heads = {r.prompt[:100] for r in requests}
    assert len(heads) == 2
    assert {r.scenario for r in requests} == {"prefix-0", "prefix-1"}


def test_chat_is_multi_turn_in_english_and_chinese(maker):
    requests = build_requests(WorkloadConfig("chat", num_requests=12, output_tokens=64), maker)
    assert all(r.messages[0]["role"] == "system" and r.messages[-1]["role"] == "user" for r in requests)
    assert any(len(r.messages) > 2 for r in requests)
    chinese = [r for r in requests if r.scenario == "chat-zh"]
    assert len(chinese) == 6 and all(any("\u4e00" <= ch <= "\u9fff" for ch in r.messages[-1]["content"]) for r in chinese)


def test_usecases_have_the_platform_shapes(maker):
    requests = build_requests(WorkloadConfig("usecases", num_requests=30), maker)
    shapes = {name: (lengths, outs) for name, lengths, outs in USECASES}
    for r in requests:
        lengths, (lo, hi) = shapes[r.scenario]
        assert r.prompt_tokens in lengths
        assert lo <= r.max_tokens <= hi
    assert {r.scenario for r in requests} == set(shapes)


def test_usecases_scale_down_to_fit_a_context(maker):
    config = WorkloadConfig("usecases", num_requests=9, scale_to_context=2048)
    scale = usecase_scale(config)
    assert scale == pytest.approx((2048 - 16 - 50) / 6700)
    for r in build_requests(config, maker):
        assert r.prompt_tokens + r.max_tokens <= 2048


def test_without_a_tokenizer_lengths_are_approximate():
    requests = build_requests(WorkloadConfig("random", num_requests=3, input_tokens=130), PromptMaker())
    assert all(r.prompt_tokens == 0 and len(r.prompt.split()) == 100 for r in requests)
