"""Offline throughput: our engine or HF transformers generating a fixed batch, no server in between.

Every request has exactly `input_tokens` prompt ids (different per request, so prefix caching shares
nothing) and produces exactly `output_tokens` tokens (ignore_eos, greedy). Wall time covers prefill and
decode of the whole batch, after a small warm-up run. With --roofline it also measures memory bandwidth
and reports the batch-1 decode bound: bandwidth / bytes of weights read per token.

    python -m tokenmill.bench.offline --engine tokenmill|hf --model NAME_OR_PATH --batch 64 \
        --input-tokens 100 --output-tokens 128 [--device auto] [--dtype auto] [--threads N] [--roofline] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from tokenmill.engine.config import QUANTIZATIONS
from tokenmill.engine.device import choose_device
from tokenmill.engine.loader import LoadedWeights, read_weights

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_KV_CACHE_MIB = 1024  # 64 x 228 tokens of SmolLM2-135M need ~340 MiB
DEFAULT_STEP_TOKENS = 512  # the engine's default token budget per step


@dataclass(slots=True)
class OfflineConfig:
    engine: str = "tokenmill"  # tokenmill | hf
    model: str = DEFAULT_MODEL
    batch: int = 64
    input_tokens: int = 100
    output_tokens: int = 128
    device: str = "auto"
    dtype: str = "auto"
    quantization: str = "none"  # tokenmill only: one of QUANTIZATIONS
    threads: int = 0  # 0: PyTorch's default
    kv_cache_mib: int = DEFAULT_KV_CACHE_MIB  # tokenmill only
    max_num_batched_tokens: int = DEFAULT_STEP_TOKENS  # tokenmill only
    enforce_eager: bool = False  # tokenmill on a GPU: no CUDA graphs


@dataclass(slots=True)
class Roofline:
    bandwidth_gb_s: float
    model_bytes: int
    batch1_tok_per_s: float


@dataclass(slots=True)
class OfflineResult:
    config: OfflineConfig
    output_tokens: int
    wall_s: float
    output_tok_per_s: float
    total_tok_per_s: float
    env: dict = field(default_factory=dict)
    roofline: Roofline | None = None


def make_prompts(batch: int, length: int, seed: int = 0) -> list[list[int]]:
    """`batch` distinct prompts of `length` ordinary token ids (200..40000), the same for every engine."""
    rng = random.Random(seed)
    return [[rng.randrange(200, 40000) for _ in range(length)] for _ in range(batch)]


def memory_roofline(model_bytes: int, bandwidth_bytes_per_s: float) -> float:
    """Upper bound on batch-1 decode tok/s: each token reads every weight once from memory."""
    return bandwidth_bytes_per_s / model_bytes


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_bandwidth(device: torch.device | str, nbytes: int | None = None, repeats: int = 5) -> float:
    """Memory bandwidth in bytes/s from the best of `repeats` large copies (read + write counted)."""
    device = torch.device(device)
    nbytes = nbytes or (1 << 30 if device.type == "cuda" else 256 << 20)
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch of dst's pages is not bandwidth
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * nbytes / best


def weight_bytes(weights: LoadedWeights, dtype: torch.dtype) -> int:
    """Bytes of the model's parameters in `dtype`, a tied lm_head counted once."""
    tied = weights.config.tie_word_embeddings
    return sum(t.numel() for name, t in weights.tensors.items()
               if not (tied and name == "lm_head.weight")) * dtype.itemsize


def _environment(device: torch.device, dtype: torch.dtype, threads: int) -> dict:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        cpuinfo = Path("/proc/cpuinfo")
        lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
        name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    return {"device": str(device), "device_name": name, "dtype": str(dtype).removeprefix("torch."),
            "threads": threads or torch.get_num_threads(), "torch": torch.__version__,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _run_tokenmill(cfg: OfflineConfig, path: Path) -> tuple[float, int, torch.device, torch.dtype]:
    from tokenmill.engine.config import EngineConfig
    from tokenmill.engine.engine import LLMEngine
    from tokenmill.engine.messages import EngineRequest
    from tokenmill.engine.params import SamplingParams

    engine = LLMEngine(EngineConfig(model_path=str(path), device=cfg.device, dtype=cfg.dtype, quantization=cfg.quantization,
                                    num_threads=cfg.threads, kv_cache_bytes=cfg.kv_cache_mib << 20,
                                    max_num_seqs=max(128, cfg.batch),
                                    max_num_batched_tokens=cfg.max_num_batched_tokens, cuda_graphs=not cfg.enforce_eager))

    def run(prompts: list[list[int]], max_tokens: int, tag: str) -> tuple[float, int]:
        params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, temperature=0.0)
        requests = [EngineRequest(request_id=f"{tag}-{i}", prompt_token_ids=p, params=params)
                    for i, p in enumerate(prompts)]
        _sync(engine.device)
        started = time.perf_counter()
        outputs = engine.generate(requests)
        _sync(engine.device)
        return time.perf_counter() - started, sum(len(o) for o in outputs.values())

    run(make_prompts(min(cfg.batch, 2), cfg.input_tokens, seed=1), 4, "warmup")
    wall, n = run(make_prompts(cfg.batch, cfg.input_tokens), cfg.output_tokens, "bench")
    return wall, n, engine.device, engine.dtype


def hf_llama(weights: LoadedWeights) -> torch.nn.Module:
    """HF transformers' LlamaForCausalLM on the same dequantized weights (float32, CPU, eval mode)."""
    import transformers

    c = weights.config
    hf_config = transformers.LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads, num_key_value_heads=c.num_kv_heads,
        head_dim=c.head_dim, rms_norm_eps=c.rms_norm_eps, rope_theta=c.rope_theta,
        max_position_embeddings=c.max_position_embeddings, tie_word_embeddings=c.tie_word_embeddings)
    model = transformers.LlamaForCausalLM(hf_config)
    result = model.load_state_dict(weights.tensors, strict=False)
    if result.unexpected_keys or not set(result.missing_keys) <= {"lm_head.weight"}:
        raise ValueError(f"weights do not fit transformers' Llama: {result}")
    model.tie_weights()
    return model.eval()


def _run_hf(cfg: OfflineConfig, path: Path, weights: LoadedWeights) -> tuple[float, int, torch.device, torch.dtype]:
    device, dtype = choose_device(cfg.device, "float32" if cfg.dtype == "auto" else cfg.dtype)
    if cfg.dtype == "auto" and device.type == "cuda":
        dtype = torch.bfloat16
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model = hf_llama(weights).to(device=device, dtype=dtype)

    def run(prompts: list[list[int]], new_tokens: int) -> tuple[float, int]:
        ids = torch.tensor(prompts, device=device)
        _sync(device)
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        _sync(device)
        return time.perf_counter() - started, (out.shape[1] - ids.shape[1]) * ids.shape[0]

    run(make_prompts(min(cfg.batch, 2), cfg.input_tokens, seed=1), 4)
    wall, n = run(make_prompts(cfg.batch, cfg.input_tokens), cfg.output_tokens)
    return wall, n, device, dtype


def run_offline(cfg: OfflineConfig, roofline: bool = False) -> OfflineResult:
    """Warm up, then time one batch through the chosen engine; optionally add the memory roofline."""
    from tokenmill.modelstore.store import resolve_model

    path = resolve_model(cfg.model).path
    weights = read_weights(path) if cfg.engine == "hf" or roofline else None
    model_bytes = 0
    if cfg.engine == "tokenmill":
        wall, n, device, dtype = _run_tokenmill(cfg, path)
    elif cfg.engine == "hf":
        assert weights is not None
        wall, n, device, dtype = _run_hf(cfg, path, weights)
    else:
        raise ValueError(f"unknown engine {cfg.engine!r}; use tokenmill or hf")
    if weights is not None:
        model_bytes = weight_bytes(weights, dtype)
    result = OfflineResult(cfg, n, wall, n / wall, (n + cfg.batch * cfg.input_tokens) / wall,
                           _environment(device, dtype, cfg.threads))
    if roofline:
        bw = measure_bandwidth(device)
        result.roofline = Roofline(bw / 1e9, model_bytes, memory_roofline(model_bytes, bw))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tokenmill.bench.offline", description=__doc__.splitlines()[0])
    p.add_argument("--engine", choices=("tokenmill", "hf"), default="tokenmill")
    p.add_argument("--model", default=DEFAULT_MODEL, help="built-in model name or path to a .gguf file / HF directory")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--input-tokens", type=int, default=100)
    p.add_argument("--output-tokens", type=int, default=128)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16 (hf auto: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--quantization", default="none", choices=QUANTIZATIONS, help="tokenmill: w8a8 or w4a16 (models/quantize.py)")
    p.add_argument("--threads", type=int, default=0, help="PyTorch threads (default: PyTorch's choice)")
    p.add_argument("--kv-cache-mib", type=int, default=DEFAULT_KV_CACHE_MIB, help="tokenmill KV cache size")
    p.add_argument("--max-num-batched-tokens", type=int, default=DEFAULT_STEP_TOKENS,
                   help="tokenmill token budget of one step")
    p.add_argument("--enforce-eager", action="store_true", help="tokenmill on a GPU: run every step eagerly, no CUDA graphs")
    p.add_argument("--roofline", action="store_true", help="also measure bandwidth and the batch-1 decode bound")
    p.add_argument("--json", default=None, help="write every figure and the configuration to this file")
    a = p.parse_args(argv)
    cfg = OfflineConfig(a.engine, a.model, a.batch, a.input_tokens, a.output_tokens, a.device, a.dtype,
                        a.quantization, a.threads, a.kv_cache_mib, a.max_num_batched_tokens, a.enforce_eager)
    r = run_offline(cfg, a.roofline)
    quantized = "" if cfg.quantization == "none" else f" {cfg.quantization}"
    eager = " eager" if cfg.enforce_eager else ""
    print(f"{cfg.engine:>9} {r.env['device_name']} {r.env['dtype']}{quantized}{eager}: batch {cfg.batch} x {cfg.input_tokens} in / "
          f"{cfg.output_tokens} out: {r.output_tok_per_s:9.1f} out tok/s {r.total_tok_per_s:9.1f} total tok/s "
          f"wall {r.wall_s:7.2f} s", flush=True)
    if r.roofline:
        print(f"roofline: bandwidth {r.roofline.bandwidth_gb_s:.1f} GB/s, weights {r.roofline.model_bytes / 1e6:.1f} MB "
              f"-> batch-1 bound {r.roofline.batch1_tok_per_s:.1f} tok/s", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(asdict(r), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
