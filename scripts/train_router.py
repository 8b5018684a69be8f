"""Train the scenario classifier's linear layer and measure it on the held-out set.

Usage: .venv/bin/python scripts/train_router.py [--json FILE]
Reads src/tokenmill/routing/data/scenarios.jsonl (training) and scenarios_heldout.jsonl (never used
for training or tuning), writes src/tokenmill/routing/data/classifier.npz, prints the held-out
accuracy overall, per language, on hard cases, per label, and the confusion matrix.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from tokenmill.catalog.entry import SCENARIOS
from tokenmill.routing.classifier import WEIGHTS, Embedder, feature_matrix
from tokenmill.routing.dataset import HELDOUT, TRAINING, example_request, load_examples

L2 = 1e-5  # weight decay of the softmax regression (1e-5 and 1e-4 were best in 5-fold cross-validation)
EPOCHS = 300


def train(x: np.ndarray, y: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    layer = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=EPOCHS, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(xt), yt) + L2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return layer.weight.detach().numpy(), layer.bias.detach().numpy()


def evaluate(examples: list[dict], predicted: list[str]) -> dict:
    def accuracy(pick) -> dict:
        pairs = [(e["label"], p) for e, p in zip(examples, predicted) if pick(e)]
        return {"n": len(pairs), "accuracy": round(sum(a == b for a, b in pairs) / max(len(pairs), 1), 4)}

    per_label = {}
    for label in SCENARIOS:
        tp = sum(e["label"] == label and p == label for e, p in zip(examples, predicted))
        fp = sum(e["label"] != label and p == label for e, p in zip(examples, predicted))
        fn = sum(e["label"] == label and p != label for e, p in zip(examples, predicted))
        precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        per_label[label] = {"precision": round(precision, 4), "recall": round(recall, 4),
                            "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 4)}
    confusion = {a: {b: sum(e["label"] == a and p == b for e, p in zip(examples, predicted)) for b in SCENARIOS}
                 for a in SCENARIOS}
    return {"all": accuracy(lambda e: True), "en": accuracy(lambda e: e["lang"] == "en"),
            "zh": accuracy(lambda e: e["lang"] == "zh"), "hard": accuracy(lambda e: e.get("hard")),
            "per_label": per_label, "confusion": confusion,
            "errors": [{"text": example_request(e).last[:160], "label": e["label"], "predicted": p}
                       for e, p in zip(examples, predicted) if e["label"] != p]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the held-out figures here")
    args = parser.parse_args()
    training, heldout = load_examples(TRAINING), load_examples(HELDOUT)
    embedder = Embedder(threads=2)
    labels = list(SCENARIOS)
    x = feature_matrix(embedder, [example_request(e) for e in training])
    y = np.asarray([labels.index(e["label"]) for e in training])
    weight, bias = train(x, y, len(labels))
    np.savez(WEIGHTS, weight=weight, bias=bias, labels=np.asarray(labels))

    texts = [example_request(e) for e in heldout]
    started = time.perf_counter()
    xh = feature_matrix(embedder, texts)
    per_text_ms = (time.perf_counter() - started) / len(texts) * 1000
    predicted = [labels[i] for i in (xh @ weight.T + bias).argmax(axis=1)]
    report = evaluate(heldout, predicted)
    report.update(training_examples=len(training), heldout_examples=len(heldout),
                  training_accuracy=round(float(((x @ weight.T + bias).argmax(axis=1) == y).mean()), 4),
                  features_ms_per_request_batched=round(per_text_ms, 3))
    print(json.dumps({k: v for k, v in report.items() if k != "errors"}, indent=1))
    for error in report["errors"][:40]:
        print(f"  {error['label']:>11} -> {error['predicted']:<11} {error['text']!r}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
