"""LLMEngine: the step loop in-process (EngineCore wraps it in its own process)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tokenmill.engine.block_manager import BlockManager
from tokenmill.engine.config import EngineConfig
from tokenmill.engine.device import choose_device, choose_kv_dtype
from tokenmill.engine.loader import build_model, read_weights
from tokenmill.engine.messages import EngineRequest, EngineStats, Logprob, RequestOutput
from tokenmill.engine.model_runner import ModelRunner
from tokenmill.engine.scheduler import Scheduler, SchedulerConfig
from tokenmill.engine.sequence import Sequence, SequenceStatus
from tokenmill.engine.tokenizer import load_tokenizer
from tokenmill.models.quantize import CALIBRATION_TEXT, check_quantization


class RequestError(ValueError):
    """A request the engine cannot take; the message says why."""


@dataclass(slots=True)
class KVExport:
    """A request's state and K/V, to continue it on another engine instance."""

    request: EngineRequest
    output_token_ids: list[int]
    num_computed_tokens: int
    k: list[torch.Tensor]  # per layer [num_computed_tokens, kv_heads, head_dim], on CPU
    v: list[torch.Tensor]


class LLMEngine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        torch.manual_seed(config.seed)
        self.device, self.dtype = choose_device(config.device, config.dtype)
        self.kv_dtype = choose_kv_dtype(config.kv_cache_dtype, self.dtype)
        check_quantization(config.quantization, self.device)
        path = Path(config.model_path)
        weights = read_weights(path)
        self.model_config = weights.config
        self.tokenizer = load_tokenizer(path)
        calibration = None
        if config.quantization != "none":
            calibration = self.tokenizer.encode(CALIBRATION_TEXT.read_text(encoding="utf-8"))
        self.model = build_model(weights, self.device, self.dtype, config.quantization, calibration)
        del weights
        self.eos_token_ids = set(self.tokenizer.eos_token_ids)
        mc = self.model_config
        bytes_per_block = 2 * mc.num_layers * mc.num_kv_heads * mc.head_dim * config.block_size * self.kv_dtype.itemsize
        self.num_blocks = max(1, config.kv_cache_bytes // bytes_per_block)
        # one request must fit in the cache on its own
        self.max_model_len = min(config.max_model_len or mc.max_position_embeddings, mc.max_position_embeddings,
                                 self.num_blocks * config.block_size)
        self.block_manager = BlockManager(self.num_blocks, config.block_size, config.enable_prefix_caching)
        self.scheduler = Scheduler(SchedulerConfig(config.max_num_seqs, config.max_num_batched_tokens), self.block_manager)
        self.runner = ModelRunner(self.model, self.num_blocks, config.block_size, self.device, self.kv_dtype,
                                  config.cuda_graphs, config.max_num_seqs)
        self.seqs: dict[str, Sequence] = {}
        self.num_preemptions = 0
        self.last_step_s = 0.0

    # requests in and out

    def add_request(self, request: EngineRequest) -> None:
        """Queue a request; raises RequestError if it can never run here."""
        self._check(request)
        generator = None
        if request.params.seed is not None:
            generator = torch.Generator().manual_seed(request.params.seed)
        seq = Sequence(request.request_id, list(request.prompt_token_ids), request.params, request.cache_salt,
                       generator=generator)
        self.seqs[request.request_id] = seq
        self.scheduler.add(seq)

    def _check(self, request: EngineRequest) -> None:
        if request.request_id in self.seqs:
            raise RequestError(f"request id {request.request_id!r} is already running")
        n_prompt = len(request.prompt_token_ids)
        if n_prompt == 0:
            raise RequestError("the prompt is empty")
        if request.params.max_tokens < 1:
            raise RequestError("max_tokens must be at least 1")
        total = n_prompt + request.params.max_tokens
        if total > self.max_model_len:
            raise RequestError(f"this model's maximum context length is {self.max_model_len} tokens, but the request "
                               f"needs {total} ({n_prompt} in the prompt + {request.params.max_tokens} max_tokens)")
        vocab = self.model_config.vocab_size
        if any(t < 0 or t >= vocab for t in request.prompt_token_ids):
            raise RequestError(f"prompt token ids must be in [0, {vocab})")

    def abort(self, request_id: str) -> RequestOutput | None:
        seq = self.seqs.pop(request_id, None)
        if seq is None:
            return None
        self.scheduler.finish(seq, "abort")
        return self._output(seq, [], "abort")

    @property
    def has_work(self) -> bool:
        return self.scheduler.has_work

    def step(self) -> list[RequestOutput]:
        """Schedule one step, run it, and report each request's new tokens."""
        started = time.perf_counter()
        plan = self.scheduler.schedule()
        self.num_preemptions += len(plan.preempted)
        if plan.empty:
            return []
        sampled, result = self.runner.execute(plan.seqs, plan.num_new_tokens)
        for seq in plan.seqs:
            self.block_manager.register_full_blocks(seq)
        outputs = []
        for j, seq in enumerate(sampled):
            token = result.token_ids[j]
            seq.output_token_ids.append(token)
            reason = self._finish_reason(seq, token)
            if reason:
                self.scheduler.finish(seq, reason)
                del self.seqs[seq.request_id]
            lp = result.logprobs[j]
            outputs.append(self._output(seq, [token], reason, None if lp is None else [lp]))
        self.last_step_s = time.perf_counter() - started
        return outputs

    def _finish_reason(self, seq: Sequence, token: int) -> str | None:
        p = seq.params
        if not p.ignore_eos and token in self.eos_token_ids:
            return "stop"
        if token in p.stop_token_ids:
            return "stop"
        if len(seq.output_token_ids) >= p.max_tokens or seq.num_tokens >= self.max_model_len:
            return "length"
        return None

    def _output(self, seq: Sequence, tokens: list[int], reason: str | None,
                logprobs: list[Logprob] | None = None) -> RequestOutput:
        return RequestOutput(seq.request_id, tokens, seq.num_prompt_tokens, max(seq.num_cached_tokens, 0), reason, logprobs)

    def stats(self) -> EngineStats:
        bm = self.block_manager
        return EngineStats(len(self.scheduler.running), len(self.scheduler.waiting), bm.usage, bm.num_blocks,
                           bm.prefix_queries_tokens, bm.prefix_hit_tokens, self.num_preemptions, self.last_step_s)

    def generate(self, requests: list[EngineRequest]) -> dict[str, list[int]]:
        """Run these requests to completion (offline use and tests); returns output ids per request."""
        for r in requests:
            self.add_request(r)
        outputs: dict[str, list[int]] = {r.request_id: [] for r in requests}
        while self.has_work:
            for out in self.step():
                outputs[out.request_id].extend(out.token_ids)
        return outputs

    # prefill/decode disaggregation

    def export_request(self, request_id: str) -> KVExport:
        """Take a running request out of this engine with its computed K/V."""
        seq = self.seqs[request_id]
        assert seq.status is SequenceStatus.RUNNING, "only a running request can be exported"
        n = seq.num_computed_tokens
        slots = torch.tensor(self.runner.slots(seq, 0, n), device=self.device)
        cache = self.runner.kv_cache
        k = [layer[slots].cpu() for layer in cache.k]
        v = [layer[slots].cpu() for layer in cache.v]
        request = EngineRequest(request_id=seq.request_id, prompt_token_ids=seq.prompt_token_ids,
                                params=seq.params, cache_salt=seq.cache_salt)
        exported = KVExport(request, list(seq.output_token_ids), n, k, v)
        self.scheduler.finish(seq, "abort")
        del self.seqs[request_id]
        return exported

    def import_request(self, exported: KVExport) -> None:
        """Continue an exported request here, from its K/V, without recomputing it."""
        self.add_request(exported.request)
        seq = self.seqs[exported.request.request_id]
        self.scheduler.waiting.remove(seq)
        seq.output_token_ids = list(exported.output_token_ids)
        n = exported.num_computed_tokens
        if not self.block_manager.can_allocate(seq, n):
            del self.seqs[seq.request_id]
            raise RequestError("not enough free KV blocks to import this request")
        self.block_manager.allocate(seq, n)
        slots = torch.tensor(self.runner.slots(seq, 0, n), device=self.device)
        for layer, (k, v) in enumerate(zip(exported.k, exported.v)):
            self.runner.kv_cache.k[layer][slots] = k.to(self.device, self.kv_dtype)
            self.runner.kv_cache.v[layer][slots] = v.to(self.device, self.kv_dtype)
        seq.num_computed_tokens = n
        seq.num_cached_tokens = 0
        seq.status = SequenceStatus.RUNNING
        self.scheduler.running.append(seq)
        self.block_manager.register_full_blocks(seq)
