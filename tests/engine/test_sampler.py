"""The sampler's filters and draws, on logits whose right answers are known."""

from __future__ import annotations

import torch

from tokenmill.engine.params import SamplingParams
from tokenmill.engine.sampler import sample
from tokenmill.engine.sequence import Sequence

# probabilities 0.5, 0.25, 0.15, 0.1 over four tokens
LOGITS = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.10]]))


def seq(seed: int | None = 0, prompt: list[int] | None = None, **kw) -> Sequence:
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return Sequence("r", prompt or [9], SamplingParams(**kw), generator=gen)


def draws(n: int, **kw) -> torch.Tensor:
    s = seq(**kw)
    return torch.tensor([sample(LOGITS.clone(), [s]).token_ids[0] for _ in range(n)])


def test_greedy_takes_the_argmax():
    assert sample(LOGITS.clone(), [seq(temperature=0.0)]).token_ids == [0]


def test_temperature_one_draws_from_the_distribution():
    counts = torch.bincount(draws(4000, temperature=1.0), minlength=4).float() / 4000
    assert torch.allclose(counts, torch.tensor([0.5, 0.25, 0.15, 0.10]), atol=0.03)


def test_top_p_keeps_the_smallest_set_reaching_p():
    assert set(draws(500, temperature=1.0, top_p=0.7).tolist()) == {0, 1}  # 0.5 < 0.7 <= 0.75
    assert set(draws(500, temperature=1.0, top_p=0.5).tolist()) == {0}


def test_top_k_and_min_p_cut_the_tail():
    assert set(draws(500, temperature=1.0, top_k=3).tolist()) == {0, 1, 2}
    assert set(draws(500, temperature=1.0, min_p=0.4).tolist()) == {0, 1}  # keeps p >= 0.4 * 0.5


def test_seeded_draws_repeat():
    assert draws(50, temperature=1.0, seed=7).tolist() == draws(50, temperature=1.0, seed=7).tolist()


def test_repetition_penalty_demotes_seen_tokens():
    s = seq(temperature=0.0, prompt=[0], repetition_penalty=3.0)  # token 0 is in the prompt
    assert sample(LOGITS.clone(), [s]).token_ids == [1]


def test_presence_penalty_uses_output_tokens_only():
    s = seq(temperature=0.0, presence_penalty=2.0)
    assert sample(LOGITS.clone(), [s]).token_ids == [0]  # nothing generated yet
    s.output_token_ids = [0]
    assert sample(LOGITS.clone(), [s]).token_ids == [1]


def test_logprobs_are_of_the_raw_distribution():
    s = seq(temperature=0.0, logprobs=2)
    result = sample(LOGITS.clone(), [s])
    lp = result.logprobs[0]
    assert lp.token_id == 0 and abs(lp.logprob - torch.log(torch.tensor(0.5)).item()) < 1e-5
    assert [t for t, _ in lp.top] == [0, 1]
