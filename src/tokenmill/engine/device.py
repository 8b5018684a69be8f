"""Choose where and in what precision the engine runs."""

from __future__ import annotations

from pathlib import Path

import torch

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (AMX or AVX512-BF16), so bf16 beats fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def choose_kv_dtype(requested: str, compute: torch.dtype) -> torch.dtype:
    """K/V storage: half precision by default, since fp32 K/V doubles the cache for little accuracy."""
    if requested == "auto":
        return torch.float16 if compute == torch.float32 else compute
    if requested not in _DTYPES:
        raise ValueError(f"unknown KV cache dtype {requested!r}; use one of auto, {', '.join(_DTYPES)}")
    return _DTYPES[requested]


def choose_device(device: str = "auto", dtype: str = "auto") -> tuple[torch.device, torch.dtype]:
    """CUDA in bf16 when present; else CPU in bf16 where the CPU supports it, fp32 otherwise."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is visible to PyTorch")
    if dtype == "auto":
        chosen = torch.bfloat16 if dev.type == "cuda" or cpu_has_fast_bf16() else torch.float32
    elif dtype in _DTYPES:
        chosen = _DTYPES[dtype]
    else:
        raise ValueError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(_DTYPES)}")
    return dev, chosen
