"""Turn a step's logits into next tokens, one row per sequence, each with its own parameters."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tokenmill.engine.messages import Logprob
from tokenmill.engine.sequence import Sequence


@dataclass(slots=True)
class SampleResult:
    token_ids: list[int]
    logprobs: list[Logprob | None]


def needs_cpu(seqs: list[Sequence]) -> bool:
    """Whether drawing for seqs needs more than an argmax: logits on a GPU then go to the CPU first
    (per-request generators live there); plain greedy rows take only their argmax off the GPU."""
    return any(not s.params.greedy or s.params.has_penalties or s.params.logprobs is not None for s in seqs)


def sample(logits: torch.Tensor, seqs: list[Sequence]) -> SampleResult:
    """logits [B, V] float32 for seqs; penalties, temperature, top-k/p, min-p, then a draw."""
    raw_logprobs = torch.log_softmax(logits, dim=-1) if any(s.params.logprobs is not None for s in seqs) else None
    if any(s.params.has_penalties for s in seqs):
        logits = _apply_penalties(logits.clone(), seqs)
    greedy_ids = logits.argmax(dim=-1)
    token_ids = greedy_ids.tolist()
    sampled_rows = [i for i, s in enumerate(seqs) if not s.params.greedy]
    if sampled_rows:
        rows = torch.tensor(sampled_rows)
        probs = _filtered_probs(logits[rows], [seqs[i] for i in sampled_rows])
        for j, i in enumerate(sampled_rows):
            token_ids[i] = _draw(probs[j], seqs[i].generator)
    logprobs: list[Logprob | None] = [None] * len(seqs)
    if raw_logprobs is not None:
        for i, s in enumerate(seqs):
            if s.params.logprobs is None:
                continue
            top = []
            if s.params.logprobs > 0:
                values, ids = raw_logprobs[i].topk(s.params.logprobs)
                top = list(zip(ids.tolist(), values.tolist()))
            logprobs[i] = Logprob(token_ids[i], float(raw_logprobs[i, token_ids[i]]), top)
    return SampleResult(token_ids, logprobs)


def _apply_penalties(logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    for i, s in enumerate(seqs):
        p = s.params
        if not p.has_penalties:
            continue
        if p.repetition_penalty != 1.0:  # over prompt and output, as HF and vLLM do
            seen = torch.tensor(sorted(set(s.all_token_ids)), dtype=torch.long)
            row = logits[i, seen]
            logits[i, seen] = torch.where(row > 0, row / p.repetition_penalty, row * p.repetition_penalty)
        if s.output_token_ids and (p.presence_penalty or p.frequency_penalty):  # over output, as OpenAI does
            counts = torch.bincount(torch.tensor(s.output_token_ids), minlength=logits.shape[1]).to(logits.dtype)
            logits[i] -= counts * p.frequency_penalty + (counts > 0).to(logits.dtype) * p.presence_penalty
    return logits


def _filtered_probs(logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    temps = torch.tensor([s.params.temperature for s in seqs], dtype=logits.dtype).unsqueeze(1)
    logits = logits / temps
    top_ks = [s.params.top_k for s in seqs]
    if any(k > 0 for k in top_ks):
        vocab = logits.shape[1]
        k = torch.tensor([k if k > 0 else vocab for k in top_ks]).clamp(max=vocab)
        sorted_desc = logits.sort(dim=-1, descending=True).values
        threshold = sorted_desc.gather(1, (k - 1).unsqueeze(1))
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    min_ps = torch.tensor([s.params.min_p for s in seqs], dtype=probs.dtype).unsqueeze(1)
    if bool((min_ps > 0).any()):
        probs = probs.masked_fill(probs < min_ps * probs.max(dim=-1, keepdim=True).values, 0.0)
    top_ps = torch.tensor([s.params.top_p for s in seqs], dtype=probs.dtype).unsqueeze(1)
    if bool((top_ps < 1).any()):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass strictly above each token
        sorted_probs = sorted_probs.masked_fill(before >= top_ps, 0.0)  # smallest set reaching top_p; keeps the top token
        probs = torch.zeros_like(probs).scatter_(1, order, sorted_probs)
    return probs / probs.sum(dim=-1, keepdim=True)


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    # exponential race: argmax(p / E) with E ~ Exp(1) draws from p; reproducible per generator
    noise = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return int((probs / noise).argmax())
