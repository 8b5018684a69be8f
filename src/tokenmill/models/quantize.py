"""W8A8 on the CPU: int8 weights and int8 activations multiplied in integers (AVX512-VNNI / AMX).

Weights are quantized once per output channel; activations per token at run time, so a row's
result never depends on the rest of the batch and the integer product is exact: batched output
still equals unbatched output. Activation outliers (a few channels 10-170x the median in
SmolLM2) would swamp a per-token scale, so the layer first divides each input channel by a
SmoothQuant factor s = amax(x)^alpha / amax(w)^(1-alpha), calibrated on a short built-in text,
and multiplies the weight by it: the product is unchanged, the activations quantize well.

Measured (BENCHMARKS.md, scripts/quantization_perplexity.py): SmolLM2-135M-Instruct's perplexity rises
1.8-6.1% over fp32 on held-out English and Chinese text; an int8 matmul at 64 rows runs ~4x an
fp32 one on an AVX512-VNNI CPU.

W4A16, for one stream at a time on the CPU: a decoded token's row goes through weights of 4 bits per
group of 32 inputs (a scale and a minimum per group, the layout of GGUF's Q4_1, so Q4_0/Q4_1 weights
come back as they were, their scales rounded to bf16), multiplied by PyTorch's int4 kernel with the
input rounded to bf16. That kernel reads 4x fewer bytes than fp32 at one row but is slow at many, so
prompt rows (prefill chunks) go through the w8a8 product instead: which path a row takes depends on
its own role, never on the rest of the batch, and a request's first token is the one w8a8 gives.
The tied output layer (Q8_0 in the GGUF) keeps 8 bits per weight for decode rows. A request
recomputed after preemption may differ from its first run (its decoded tokens come back as prompt
rows). w8a8 stays the choice for throughput (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tokenmill.engine.config import QUANTIZATIONS
from tokenmill.models.linear import can_pack, pack_linears

SMOOTH_ALPHA = 0.4  # how much of the activations' range moves into the weights (0.3-0.4 measured best here)
CALIBRATION_TEXT = Path(__file__).with_name("calibration.txt")
_MIN_ROWS = 17  # torch._int_mm wants more than 16 rows on some backends; fewer are padded
INT4_GROUP = 32  # inputs per 4-bit group: Q4_0 / Q4_1's block


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 per output channel and x in int8 per row, after smoothing."""

    def __init__(self, linear: nn.Linear, input_amax: torch.Tensor, alpha: float = SMOOTH_ALPHA) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        weight = linear.weight.detach().float()
        smooth = (input_amax.float().clamp(min=1e-5) ** alpha
                  / weight.abs().amax(0).clamp(min=1e-5) ** (1 - alpha)).clamp(min=1e-5)
        qweight, scale = _int8_rows(weight * smooth)
        # stored [out, in] and used transposed: the layout the int8 GEMM reads fastest here
        self.register_buffer("qweight", qweight)
        self.register_buffer("weight_scale", scale)
        self.register_buffer("inv_smooth", 1.0 / smooth)
        self.bias = None if linear.bias is None else linear.bias.detach().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = int8_product(x.float() * self.inv_smooth, self.qweight.t(), self.weight_scale)
        if self.bias is not None:
            y += self.bias
        return y.to(x.dtype)


def _int8_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """weight [out, in] in int8 with one symmetric scale per output row: (int8 weight, float32 scales)."""
    scale = weight.abs().amax(1).clamp(min=1e-8) / 127
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


def int8_product(x: torch.Tensor, qweight: torch.Tensor, weight_scale: torch.Tensor) -> torch.Tensor:
    """x [M, K] float32 times int8 weights [K, N] with a scale per column [N]: x is quantised to int8 per row
    (symmetric), multiplied in integers (torch._int_mm), and the float32 [M, N] product returned."""
    rows = x.shape[0]
    row_scale = x.abs().amax(1, keepdim=True).clamp_(min=1e-8).div_(127)
    xq = x.div(row_scale).round_().to(torch.int8)
    if rows < _MIN_ROWS:
        xq = torch.cat([xq, xq.new_zeros(_MIN_ROWS - rows, xq.shape[1])])
    return torch._int_mm(xq, qweight)[:rows].float().mul_(row_scale).mul_(weight_scale)


class Int4Linear(nn.Module):
    """y = x W^T + b with W in 4 bits per group of INT4_GROUP inputs (scale and minimum per group), x in bf16."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        weight = linear.weight.detach().float()
        groups = weight.view(self.out_features, -1, INT4_GROUP)
        low = groups.amin(-1)
        scale = ((groups.amax(-1) - low) / 15).clamp(min=1e-10)
        q = torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32)
        # an opaque packed layout: kept as a plain attribute so that state_dict and .to() leave it alone
        self.packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.view(self.out_features, -1), 8)
        # the kernel computes (q - 8) * scale + zero, per [group, output]
        self.scales_and_zeros = torch.stack([scale.t(), (low + 8 * scale).t()], -1).to(torch.bfloat16).contiguous()
        self.bias = None if linear.bias is None else linear.bias.detach().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16).contiguous(), self.packed, INT4_GROUP,
                                                       self.scales_and_zeros)
        return _with_bias(y, self.bias, x.dtype)


@dataclass(slots=True)
class RowRoles:
    """How the rows of the step being run split: the first decode_rows decode, the rest are prompt rows.
    The model sets it at the start of each forward; its SplitRowsLinear layers read it."""

    decode_rows: int = 0


class SplitRowsLinear(nn.Module):
    """One linear layer computed two ways: decode rows through `decode`, prompt rows through `prefill`."""

    def __init__(self, decode: nn.Module, prefill: nn.Module, roles: RowRoles) -> None:
        super().__init__()
        self.decode = decode
        self.prefill = prefill
        self.roles = roles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.roles.decode_rows
        if n >= x.shape[0]:
            return self.decode(x)
        if n == 0:
            return self.prefill(x)
        return torch.cat([self.decode(x[:n]), self.prefill(x[n:])])


class Int8WeightLinear(nn.Module):
    """y = x W^T + b with W in int8 per output channel, x in bf16 (weight-only: no activation quantization)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        qweight, scale = _int8_rows(linear.weight.detach().float())
        self.register_buffer("qweight", qweight)
        self.register_buffer("weight_scale", scale.to(torch.bfloat16))
        self.bias = None if linear.bias is None else linear.bias.detach().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch._weight_int8pack_mm(x.to(torch.bfloat16).contiguous(), self.qweight, self.weight_scale)
        return _with_bias(y, self.bias, x.dtype)


def _with_bias(y: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """A bf16 kernel's output in the model's dtype, plus the layer's (float32) bias if it has one."""
    return y.to(dtype) if bias is None else (y.float() + bias).to(dtype)


def check_quantization(name: str, device: torch.device) -> None:
    if name not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {name!r}; use one of {', '.join(QUANTIZATIONS)}")
    if name != "none" and device.type != "cpu":
        raise ValueError(f"quantization {name!r} runs on the CPU only; drop --quantization or use --device cpu")


def prepare_linears(model: nn.Module, device: torch.device, quantization: str, roles: RowRoles,
                    calibrate: Callable[[], object]) -> None:
    """The last step of loading a model: its linear layers quantized as asked (calibrated by running
    calibrate(); w4a16 splits rows by roles), else prepacked for oneDNN where the CPU has its kernels."""
    if quantization == "w8a8":
        quantize_linears(model, input_amax(model, calibrate))
    elif quantization == "w4a16":
        quantize_linears_w4a16(model, input_amax(model, calibrate), roles)
    elif can_pack(device, model.lm_head.weight.dtype):
        pack_linears(model)


def quantize_linears_w4a16(model: nn.Module, amax: dict[str, torch.Tensor], roles: RowRoles) -> int:
    """Replace every nn.Linear under model (that calibration saw) by a SplitRowsLinear: prompt rows through
    Int8Linear, as w8a8 has them; decode rows through Int4Linear, or Int8WeightLinear for the output layer
    (lm_head, tied to the 8-bit embeddings) and any layer whose inputs do not split into groups."""

    def split(name: str, linear: nn.Linear) -> nn.Module:
        four_bit = linear.in_features % INT4_GROUP == 0 and name != "lm_head"
        decode = Int4Linear(linear) if four_bit else Int8WeightLinear(linear)
        return SplitRowsLinear(decode, Int8Linear(linear, amax[name]), roles)

    return replace_linears(model, amax, split)


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


def quantize_linears(model: nn.Module, amax: dict[str, torch.Tensor]) -> int:
    """Replace every nn.Linear under model (that calibration saw) by an Int8Linear; return how many."""
    return replace_linears(model, amax, lambda name, linear: Int8Linear(linear, amax[name]))


def replace_linears(model: nn.Module, seen: dict[str, torch.Tensor], make: Callable[[str, nn.Linear], nn.Module],
                    prefix: str = "") -> int:
    """Replace every nn.Linear under model whose full name is in seen by make(name, linear); return how many."""
    count = 0
    for name, child in list(model.named_children()):
        full = f"{prefix}{name}"
        if isinstance(child, nn.Linear) and full in seen:
            setattr(model, name, make(full, child))
            count += 1
        else:
            count += replace_linears(child, seen, make, f"{full}.")
    return count
