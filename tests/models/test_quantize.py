"""W8A8 and W4A16 quantization: close to the float layer, exact under batching, and the real model still answers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tokenmill.engine.config import EngineConfig
from tokenmill.engine.engine import LLMEngine
from tokenmill.engine.loader import build_model, read_weights
from tokenmill.engine.messages import EngineRequest
from tokenmill.engine.params import SamplingParams
from tokenmill.engine.tokenizer import load_tokenizer
from tokenmill.models.quantize import (CALIBRATION_TEXT, INT4_GROUP, Int4Linear, Int8Linear, RowRoles, SplitRowsLinear,
                                       check_quantization, input_amax)
from tokenmill.modelstore.store import resolve_model

# held out from calibration: perplexity is measured on text the calibration never saw
PASSAGE = (
    "The lighthouse keeper climbed the spiral stairs every evening at dusk. He trimmed the wick, polished the "
    "great lens and wrote the weather in a leather notebook: wind from the south-west, a swell of two metres, "
    "visibility good. Ships passing the headland counted the flashes, three every fifteen seconds, and knew "
    "exactly where they were. When the light was automated in 1987, the notebooks went to the county museum, "
    "where visitors can still read forty years of storms in his small, careful hand. "
    "秋天的早晨，公园里有很多人在散步和打太极拳。湖边的柳树开始变黄，风一吹，叶子就慢慢落到水面上。"
)


@pytest.fixture(scope="module")
def model_path():
    return resolve_model("smollm2-135m-instruct").path


def _float_linear(rows_in: int, rows_out: int, outlier_channels: int = 4) -> tuple[nn.Linear, torch.Tensor]:
    torch.manual_seed(0)
    linear = nn.Linear(rows_in, rows_out)
    x = torch.randn(32, rows_in)
    x[:, :outlier_channels] *= 60  # a few channels far larger than the rest, as in real activations
    return linear, x


def test_int8_linear_is_close_to_the_float_layer_despite_outlier_channels():
    linear, x = _float_linear(256, 128)
    amax = input_amax(linear, lambda: linear(x))[""]
    want = linear(x)
    got = Int8Linear(linear, amax)(x)
    assert got.shape == want.shape
    assert (got - want).norm() / want.norm() < 0.02


def test_int8_linear_rows_do_not_depend_on_the_rest_of_the_batch():
    linear, x = _float_linear(256, 128)
    layer = Int8Linear(linear, x.abs().amax(0))
    whole = layer(x)
    for i in (0, 5, 31):
        assert torch.equal(layer(x[i:i + 1])[0], whole[i])
    assert torch.equal(layer(x[3:20]), whole[3:20])


def _q4_linear(rows_in: int, rows_out: int) -> nn.Linear:
    """A linear layer whose weights are GGUF Q4_1 values: per block of 32 inputs, d * q + m with q in 0..15."""
    torch.manual_seed(0)
    blocks = rows_in // INT4_GROUP
    q = torch.randint(0, 16, (rows_out, blocks, INT4_GROUP))
    q[..., 0], q[..., 1] = 0, 15  # llama.cpp's quantizer maps each block's minimum and maximum to 0 and 15
    d, m = torch.rand(rows_out, blocks, 1) * 0.02, -torch.rand(rows_out, blocks, 1) * 0.1
    linear = nn.Linear(rows_in, rows_out, bias=False)
    linear.weight.data = (q * d + m).view(rows_out, rows_in)
    return linear


def test_int4_linear_gives_q4_weights_back_and_rows_do_not_depend_on_the_batch():
    linear = _q4_linear(256, 96)
    x = torch.randn(24, 256)
    layer = Int4Linear(linear)
    whole = layer(x)
    # only bf16 rounding (of the input and of each group's scale and minimum) separates it from float32
    assert (whole - linear(x)).norm() / linear(x).norm() < 0.005
    for i in (0, 7, 23):
        assert torch.equal(layer(x[i:i + 1])[0], whole[i])
    assert torch.equal(layer(x[5:20]), whole[5:20])


def test_split_rows_send_decode_rows_and_prompt_rows_their_own_ways():
    linear = _q4_linear(256, 96)
    x = torch.randn(10, 256)
    decode, prefill, roles = Int4Linear(linear), Int8Linear(linear, x.abs().amax(0)), RowRoles()
    layer = SplitRowsLinear(decode, prefill, roles)
    roles.decode_rows = 3
    out = layer(x)
    assert torch.equal(out[:3], decode(x[:3])) and torch.equal(out[3:], prefill(x[3:]))
    roles.decode_rows = 0
    assert torch.equal(layer(x), prefill(x))
    roles.decode_rows = 10
    assert torch.equal(layer(x), decode(x))


def test_check_quantization_names_what_is_wrong():
    with pytest.raises(ValueError, match="unknown quantization 'int3'"):
        check_quantization("int3", torch.device("cpu"))
    for name in ("w8a8", "w4a16"):
        with pytest.raises(ValueError, match=f"quantization '{name}' runs on the CPU only"):
            check_quantization(name, torch.device("cuda"))
        check_quantization(name, torch.device("cpu"))


def test_w8a8_model_keeps_perplexity_within_8_percent_of_float32(model_path):
    tok = load_tokenizer(model_path)
    ids = tok.encode(PASSAGE)
    calibration = tok.encode(CALIBRATION_TEXT.read_text(encoding="utf-8"))
    assert len(calibration) > 500
    device = torch.device("cpu")

    def perplexity(model) -> float:
        with torch.inference_mode():
            logits = model.prefill_alone(ids, every_position=True)[:-1]
        return torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:])).exp().item()

    plain = perplexity(build_model(read_weights(model_path), device, torch.float32))
    quantized_model = build_model(read_weights(model_path), device, torch.float32, "w8a8", calibration)
    assert any(isinstance(m, Int8Linear) for m in quantized_model.modules())
    assert not any(isinstance(m, nn.Linear) for m in quantized_model.modules())
    quantized = perplexity(quantized_model)
    assert quantized < plain * 1.08, f"w8a8 perplexity {quantized:.2f} against {plain:.2f} in float32"


@pytest.mark.parametrize("quantization", ["w8a8", "w4a16"])
def test_quantized_engine_answers_and_batching_leaves_greedy_output_unchanged(model_path, quantization):
    engine = LLMEngine(EngineConfig(model_path=str(model_path), device="cpu", dtype="float32",
                                    quantization=quantization, kv_cache_bytes=64 * 1024**2))
    if quantization == "w4a16":
        assert any(isinstance(m, SplitRowsLinear) for m in engine.model.modules())
    tok = engine.tokenizer
    questions = ["What is the capital of France?", "请问中国的首都是哪里？", "Write a haiku about the sea.",
                 "What is 2 + 2?"]
    prompts = [tok.encode(tok.apply_chat_template([{"role": "user", "content": q}]), add_special_tokens=False)
               for q in questions]
    params = SamplingParams(max_tokens=20, temperature=0.0)
    batched = engine.generate([EngineRequest(request_id=str(i), prompt_token_ids=p, params=params)
                               for i, p in enumerate(prompts)])
    alone = {str(i): engine.generate([EngineRequest(request_id=f"a{i}", prompt_token_ids=p, params=params)])[f"a{i}"]
             for i, p in enumerate(prompts)}
    assert batched == alone
    assert "Paris" in tok.decode(batched["0"])
