"""W8A8 on the CPU: int8 weights and int8 activations multiplied in integers (AVX512-VNNI / AMX).

Weights are quantized once per output channel; activations per token at run time, so a row's
result never depends on the rest of the batch and the integer product is exact: batched output
still equals unbatched output. Activation outliers (a few channels 10-170x the median in
SmolLM2) would swamp a per-token scale, so the layer first divides each input channel by a
SmoothQuant factor s = amax(x)^alpha / amax(w)^(1-alpha), calibrated on a short built-in text,
and multiplies the weight by it: the product is unchanged, the activations quantize well.

Measured (BENCHMARKS.md, scripts/w8a8_perplexity.py): SmolLM2-135M-Instruct's perplexity rises
1.8-6.1% over fp32 on held-out English and Chinese text; an int8 matmul at 64 rows runs ~4x an
fp32 one on an AVX512-VNNI CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tokenmill.engine.config import QUANTIZATIONS

SMOOTH_ALPHA = 0.4  # how much of the activations' range moves into the weights (0.3-0.4 measured best here)
CALIBRATION_TEXT = Path(__file__).with_name("calibration.txt")
_MIN_ROWS = 17  # torch._int_mm wants more than 16 rows on some backends; fewer are padded


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 per output channel and x in int8 per row, after smoothing."""

    def __init__(self, linear: nn.Linear, input_amax: torch.Tensor, alpha: float = SMOOTH_ALPHA) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        weight = linear.weight.detach().float()
        smooth = (input_amax.float().clamp(min=1e-5) ** alpha
                  / weight.abs().amax(0).clamp(min=1e-5) ** (1 - alpha)).clamp(min=1e-5)
        weight = weight * smooth
        scale = weight.abs().amax(1).clamp(min=1e-8) / 127
        # stored [out, in] and used transposed: the layout the int8 GEMM reads fastest here
        self.register_buffer("qweight", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("weight_scale", scale)
        self.register_buffer("inv_smooth", 1.0 / smooth)
        self.bias = None if linear.bias is None else linear.bias.detach().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = int8_product(x.float() * self.inv_smooth, self.qweight.t(), self.weight_scale)
        if self.bias is not None:
            y += self.bias
        return y.to(x.dtype)


def int8_product(x: torch.Tensor, qweight: torch.Tensor, weight_scale: torch.Tensor) -> torch.Tensor:
    """x [M, K] float32 times int8 weights [K, N] with a scale per column [N]: x is quantised to int8 per row
    (symmetric), multiplied in integers (torch._int_mm), and the float32 [M, N] product returned."""
    rows = x.shape[0]
    row_scale = x.abs().amax(1, keepdim=True).clamp_(min=1e-8).div_(127)
    xq = x.div(row_scale).round_().to(torch.int8)
    if rows < _MIN_ROWS:
        xq = torch.cat([xq, xq.new_zeros(_MIN_ROWS - rows, xq.shape[1])])
    return torch._int_mm(xq, qweight)[:rows].float().mul_(row_scale).mul_(weight_scale)


def check_quantization(name: str, device: torch.device) -> None:
    if name not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {name!r}; use one of {', '.join(QUANTIZATIONS)}")
    if name == "w8a8" and device.type != "cpu":
        raise ValueError("quantization 'w8a8' runs on the CPU only; drop --quantization or use --device cpu")


def input_amax(model: nn.Module, run: Callable[[], object]) -> dict[str, torch.Tensor]:
    """The largest |input| per channel that each nn.Linear under model sees while run() runs."""
    seen: dict[str, torch.Tensor] = {}

    def watch(name: str):
        def hook(_module: nn.Module, args: tuple) -> None:
            x = args[0].detach()
            amax = x.reshape(-1, x.shape[-1]).abs().amax(0).float()
            seen[name] = amax if name not in seen else torch.maximum(seen[name], amax)
        return hook

    handles = [m.register_forward_pre_hook(watch(n)) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    try:
        with torch.inference_mode():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return seen


def quantize_linears(model: nn.Module, amax: dict[str, torch.Tensor], prefix: str = "") -> int:
    """Replace every nn.Linear under model (that calibration saw) by an Int8Linear; return how many."""
    count = 0
    for name, child in list(model.named_children()):
        full = f"{prefix}{name}"
        if isinstance(child, nn.Linear) and full in amax:
            setattr(model, name, Int8Linear(child, amax[full]))
            count += 1
        else:
            count += quantize_linears(child, amax, f"{full}.")
    return count
