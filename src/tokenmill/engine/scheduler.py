"""Continuous batching: each step is a token budget shared by decodes and prefill chunks.

Running sequences go first, in arrival order (FCFS); waiting ones join while budget, sequence
slots and KV blocks last. When blocks run out, the most recently arrived running sequence is
preempted: its blocks are freed and it is recomputed later (its prefix usually comes back from
the prefix cache).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from tokenmill.engine.block_manager import BlockManager
from tokenmill.engine.sequence import Sequence, SequenceStatus


@dataclass(slots=True)
class SchedulerConfig:
    max_num_seqs: int = 128
    max_num_batched_tokens: int = 512


@dataclass(slots=True)
class ScheduledStep:
    seqs: list[Sequence] = field(default_factory=list)
    num_new_tokens: list[int] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.seqs


class Scheduler:
    def __init__(self, config: SchedulerConfig, block_manager: BlockManager) -> None:
        self.config = config
        self.blocks = block_manager
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> ScheduledStep:
        step = ScheduledStep()
        budget = self.config.max_num_batched_tokens
        # running sequences (decodes and unfinished prefills), oldest first
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            n = min(seq.num_tokens - seq.num_computed_tokens, budget)
            while not self.blocks.can_allocate(seq, n):
                victim = self.running[-1]
                self._preempt(victim)
                step.preempted.append(victim)
                if victim is seq:
                    break
            else:
                self.blocks.allocate(seq, n)
                step.seqs.append(seq)
                step.num_new_tokens.append(n)
                budget -= n
                i += 1
                continue
            break  # seq itself was preempted: it was the last running one
        # waiting sequences join if nothing had to be preempted
        while self.waiting and budget > 0 and not step.preempted and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[0]
            cached = self.blocks.match_prefix(seq)
            if seq.num_cached_tokens < 0:
                seq.num_cached_tokens = min(cached, seq.num_prompt_tokens)
            n = min(seq.num_tokens - seq.num_computed_tokens, budget)
            if not self.blocks.can_allocate(seq, n):
                self.blocks.free_sequence(seq)  # give the matched prefix back; retry next step
                break
            self.blocks.allocate(seq, n)
            self.waiting.popleft()
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            step.seqs.append(seq)
            step.num_new_tokens.append(n)
            budget -= n
        return step

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.blocks.free_sequence(seq)
        seq.status = SequenceStatus.WAITING
        seq.num_preemptions += 1
        self.waiting.appendleft(seq)

    def finish(self, seq: Sequence, reason: str) -> None:
        """Remove seq from whichever queue holds it and free its blocks."""
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
        elif seq.status is SequenceStatus.WAITING and seq in self.waiting:
            self.waiting.remove(seq)
        self.blocks.free_sequence(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason
