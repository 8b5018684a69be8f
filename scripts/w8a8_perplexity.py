"""Perplexity of the default model in float32 against --quantization w8a8, on three held-out texts.

Usage: .venv/bin/python scripts/w8a8_perplexity.py   (figures recorded in BENCHMARKS.md)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from tokenmill.engine.loader import build_model, read_weights
from tokenmill.engine.tokenizer import load_tokenizer
from tokenmill.models.quantize import CALIBRATION_TEXT
from tokenmill.modelstore.store import resolve_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "models"))
from test_quantize import PASSAGE  # noqa: E402  the test's held-out passage

TEXTS = {"english": PASSAGE.split("秋天")[0], "chinese": "秋天" + PASSAGE.split("秋天")[1],
         "README": (ROOT / "README.md").read_text(encoding="utf-8")[:6000]}


def main() -> None:
    path = resolve_model("smollm2-135m-instruct").path
    tok = load_tokenizer(path)
    calibration = tok.encode(CALIBRATION_TEXT.read_text(encoding="utf-8"))
    texts = {name: tok.encode(text)[:1024] for name, text in TEXTS.items()}
    for label, ids in (("float32", None), ("w8a8", calibration)):
        model = build_model(read_weights(path), torch.device("cpu"), torch.float32, ids)
        scores = []
        for name, tokens in texts.items():
            with torch.inference_mode():
                logits = model.prefill_alone(tokens, every_position=True)[:-1]
            ppl = torch.nn.functional.cross_entropy(logits, torch.tensor(tokens[1:])).exp().item()
            scores.append(f"{name} {ppl:.2f}")
        print(f"{label:>8}: perplexity " + ", ".join(scores))


if __name__ == "__main__":
    main()
