"""Perplexity of the default model in float32 against each --quantization, on three held-out texts.

Usage: .venv/bin/python scripts/quantization_perplexity.py   (figures recorded in BENCHMARKS.md)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from tokenmill.engine.config import QUANTIZATIONS
from tokenmill.engine.loader import build_model, read_weights
from tokenmill.engine.tokenizer import load_tokenizer
from tokenmill.models.quantize import CALIBRATION_TEXT, SplitRowsLinear
from tokenmill.modelstore.store import resolve_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "models"))
from test_quantize import PASSAGE  # noqa: E402  the test's held-out passage

TEXTS = {"english": PASSAGE.split("秋天")[0], "chinese": "秋天" + PASSAGE.split("秋天")[1],
         "README": (ROOT / "README.md").read_text(encoding="utf-8")[:6000]}


def decode_path_only(module: torch.nn.Module) -> None:
    """Make every SplitRowsLinear under module its decode path (a prefill here is all prompt rows)."""
    for name, child in module.named_children():
        if isinstance(child, SplitRowsLinear):
            setattr(module, name, child.decode)
        else:
            decode_path_only(child)


def main() -> None:
    path = resolve_model("smollm2-135m-instruct").path
    tok = load_tokenizer(path)
    calibration = tok.encode(CALIBRATION_TEXT.read_text(encoding="utf-8"))
    texts = {name: tok.encode(text)[:1024] for name, text in TEXTS.items()}
    for label in (*QUANTIZATIONS, "w4a16 decode"):
        quantization = label.split()[0]
        model = build_model(read_weights(path), torch.device("cpu"), torch.float32, quantization, calibration)
        if label == "w4a16 decode":  # every row through the path decoded tokens take (4-bit weights)
            decode_path_only(model)
        scores = []
        for name, tokens in texts.items():
            with torch.inference_mode():
                logits = model.prefill_alone(tokens, every_position=True)[:-1]
            ppl = torch.nn.functional.cross_entropy(logits, torch.tensor(tokens[1:])).exp().item()
            scores.append(f"{name} {ppl:.2f}")
        print(f"{label if label != 'none' else 'float32':>12}: perplexity " + ", ".join(scores))


if __name__ == "__main__":
    main()
