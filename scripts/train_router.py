"""Choose, train and measure the scenario classifier's head (embeddings + lexical features -> scenario).

Usage:
  .venv/bin/python scripts/train_router.py --cv [--errors FILE]
      5-fold cross-validation of every candidate setting on the training set only; prints the table
      (and writes the chosen setting's cross-validation errors to FILE, for finding confusions).
  .venv/bin/python scripts/train_router.py [--heldout FILE ...] [--json FILE]
      trains the chosen setting on all of src/tokenmill/routing/data/scenarios.jsonl and writes
      src/tokenmill/routing/data/classifier.npz. Only with --heldout does it read a held-out set: it
      classifies each request there one at a time, as the API does (one thread), and prints accuracy
      overall, per language, on hard cases and per label, the confusion matrix and the decision latency.
      A held-out set is for the final measurement only (see data/PROVENANCE.md): never tune on it.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tokenmill.catalog.entry import SCENARIOS
from tokenmill.routing.classifier import (
    WEIGHTS, Embedder, Head, LexicalSpec, ScenarioClassifier, embedding_matrix, lexical_matrix, save_classifier)
from tokenmill.routing.dataset import TRAINING, example_request, load_examples
from tokenmill.routing.evaluation import accuracy, class_scores, confusion, percentile
from tokenmill.routing.request_text import RequestText

FOLDS = 5
SEED = 20261125
EPOCHS = 300


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    ngram_buckets: int = 0
    ngram_scale: float = 0.0
    cue_scale: float = 0.0
    hidden: int = 0  # 0: a softmax layer; else one hidden ReLU layer of this width
    l2: float = 1e-5  # weight decay (sum of squared weights, times this)


SETTINGS = (  # all measured by 5-fold cross-validation on the training set; the table is in BENCHMARKS.md
    Setting("embeddings only, linear"),
    Setting("embeddings + cues 0.1", cue_scale=0.1),
    Setting("embeddings + n-grams 4096", 4096, 1.0),
    Setting("embeddings + n-grams 2048 + cues 0.1", 2048, 1.0, 0.1),
    Setting("embeddings + n-grams 4096 + cues 0.1", 4096, 1.0, 0.1),
    Setting("embeddings + n-grams 8192 + cues 0.1", 8192, 1.0, 0.1),
    Setting("embeddings + n-grams 4096 x1.4 + cues 0.1", 4096, 1.4, 0.1),
    Setting("embeddings + n-grams 4096 + cues 0.1, l2 3e-5", 4096, 1.0, 0.1, l2=3e-5),
    Setting("embeddings + n-grams 4096 + cues 0.1, hidden 32", 4096, 1.0, 0.1, hidden=32, l2=1e-4),
)
CHOSEN = "embeddings + n-grams 4096 x1.4 + cues 0.1"


def train_head(x: np.ndarray, y: np.ndarray, hidden: int, l2: float) -> Head:
    torch.manual_seed(0)
    sizes = [x.shape[1], hidden, len(SCENARIOS)] if hidden else [x.shape[1], len(SCENARIOS)]
    layers = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
    params = [p for layer in layers for p in layer.parameters()]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=EPOCHS, line_search_fn="strong_wolfe")
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def forward(h: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = torch.relu(h)
        return h

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(forward(xt), yt)
        loss = loss + l2 * sum(layer.weight.pow(2).sum() for layer in layers)
        loss.backward()
        return loss

    opt.step(closure)
    return Head(tuple((layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
                      for layer in layers))


def lexical_spec(setting: Setting, requests: list[RequestText]) -> LexicalSpec:
    """The setting's feature spec, with the cue standardisation taken from these (training) requests."""
    spec = LexicalSpec(setting.ngram_buckets, setting.ngram_scale, setting.cue_scale)
    if not setting.cue_scale:
        return spec
    raw = lexical_matrix(LexicalSpec(cue_scale=1.0), requests)
    return LexicalSpec(setting.ngram_buckets, setting.ngram_scale, setting.cue_scale,
                       raw.mean(axis=0), np.maximum(raw.std(axis=0), 1e-3))


def fit(setting: Setting, emb: np.ndarray, requests: list[RequestText], y: np.ndarray) -> tuple[LexicalSpec, Head]:
    spec = lexical_spec(setting, requests)
    x = np.concatenate([emb, lexical_matrix(spec, requests)], axis=1)
    return spec, train_head(x, y, setting.hidden, setting.l2)


def predict(spec: LexicalSpec, head: Head, emb: np.ndarray, requests: list[RequestText]) -> np.ndarray:
    return head.logits(np.concatenate([emb, lexical_matrix(spec, requests)], axis=1)).argmax(axis=1)


def folds(y: np.ndarray) -> np.ndarray:
    """Fold number of each example: stratified by label, shuffled with a fixed seed."""
    rng = np.random.default_rng(SEED)
    fold = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        fold[rows] = np.arange(len(rows)) % FOLDS
    return fold


def cross_validate(setting: Setting, emb: np.ndarray, requests: list[RequestText], y: np.ndarray) -> np.ndarray:
    """Out-of-fold predictions for every training example."""
    fold, out = folds(y), np.empty_like(y)
    for k in range(FOLDS):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        spec, head = fit(setting, emb[train], [requests[i] for i in train], y[train])
        out[test] = predict(spec, head, emb[test], [requests[i] for i in test])
    return out


def figures(examples: list[dict], predicted: list[str]) -> dict:
    """Accuracy overall, per language and on hard cases; per-label precision/recall/F1; confusion; errors."""
    def subset(pick) -> dict:
        pairs = [(e["label"], p) for e, p in zip(examples, predicted) if pick(e)]
        return {"n": len(pairs), "accuracy": round(accuracy(*zip(*pairs)) if pairs else 0.0, 4)}

    labels = [e["label"] for e in examples]
    return {"all": subset(lambda e: True), "en": subset(lambda e: e["lang"] == "en"),
            "zh": subset(lambda e: e["lang"] == "zh"), "hard": subset(lambda e: e.get("hard")),
            "per_label": {k: {"precision": round(v.precision, 4), "recall": round(v.recall, 4),
                              "f1": round(v.f1, 4), "n": v.support}
                          for k, v in class_scores(labels, predicted).items()},
            "confusion": confusion(labels, predicted),
            "errors": [{"text": example_request(e).last[:200], "context": example_request(e).context[:120],
                        "label": e["label"], "predicted": p, "lang": e["lang"], "hard": e.get("hard", False)}
                       for e, p in zip(examples, predicted) if e["label"] != p]}


def measure(path: Path) -> dict:
    """The shipped classifier on a labelled file, one request at a time on one thread, as the API runs it."""
    examples = load_examples(path)
    classifier = ScenarioClassifier(embedder=Embedder(threads=1))
    classifier.classify(RequestText("warm up", "warm up"))
    predicted, latencies = [], []
    for example in examples:
        request = example_request(example)
        started = time.perf_counter()
        predicted.append(classifier.classify(request).scenario)
        latencies.append((time.perf_counter() - started) * 1000)
    report = figures(examples, predicted)
    report["latency_ms"] = {f"p{q}": round(percentile(latencies, q), 2) for q in (50, 90, 99)}
    report["latency_ms"]["max"] = round(max(latencies), 2)
    return report


def print_figures(title: str, report: dict) -> None:
    print(f"{title}: {report['all']['accuracy']:.1%} of {report['all']['n']}; "
          f"en {report['en']['accuracy']:.1%}, zh {report['zh']['accuracy']:.1%}, "
          f"hard {report['hard']['accuracy']:.1%} of {report['hard']['n']}")
    for label, s in report["per_label"].items():
        print(f"  {label:<12} precision {s['precision']:.3f}  recall {s['recall']:.3f}  f1 {s['f1']:.3f}  n {s['n']}")
    print("  confusion (row: label, column: predicted) " + " ".join(f"{s[:5]:>5}" for s in SCENARIOS))
    for label, row in report["confusion"].items():
        print(f"  {label:<41}" + " ".join(f"{row[s]:>5}" for s in SCENARIOS))
    if "latency_ms" in report:
        print("  decision latency (one request at a time, one thread): "
              + ", ".join(f"{k} {v} ms" for k, v in report["latency_ms"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="cross-validate every candidate setting, train nothing")
    parser.add_argument("--errors", type=Path, default=None, help="with --cv: write the chosen setting's errors here")
    parser.add_argument("--heldout", type=Path, action="append", default=[], help="measure on this held-out file")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    training = load_examples(TRAINING)
    requests = [example_request(e) for e in training]
    y = np.asarray([SCENARIOS.index(e["label"]) for e in training])
    emb = embedding_matrix(Embedder(threads=2), requests)
    chosen = next(s for s in SETTINGS if s.name == CHOSEN)
    report: dict = {"training_examples": len(training), "setting": asdict(chosen)}

    if args.cv:
        rows = []
        for setting in SETTINGS:
            started = time.perf_counter()
            predicted = [SCENARIOS[i] for i in cross_validate(setting, emb, requests, y)]
            cv = figures(training, predicted)
            rows.append({"setting": setting.name, **{k: cv[k]["accuracy"] for k in ("all", "en", "zh", "hard")},
                         "min_recall": min(v["recall"] for v in cv["per_label"].values())})
            print(f"{setting.name:<48} {cv['all']['accuracy']:.2%}  en {cv['en']['accuracy']:.2%}  "
                  f"zh {cv['zh']['accuracy']:.2%}  hard {cv['hard']['accuracy']:.2%}  "
                  f"min recall {rows[-1]['min_recall']:.3f}  ({time.perf_counter() - started:.0f} s)", flush=True)
            if setting is chosen:
                report["cross_validation"] = {k: v for k, v in cv.items() if k != "errors"}
                if args.errors:
                    args.errors.write_text(json.dumps(cv["errors"], indent=1, ensure_ascii=False))
        report["cv_table"] = rows
    else:
        spec, head = fit(chosen, emb, requests, y)
        save_classifier(WEIGHTS, list(SCENARIOS), spec, head)
        report["training_accuracy"] = round(float((predict(spec, head, emb, requests) == y).mean()), 4)
        print(f"trained {chosen.name!r} on {len(training)} examples "
              f"(training accuracy {report['training_accuracy']:.2%}), wrote {WEIGHTS}")
        for path in args.heldout:
            report[path.name] = measure(path)
            print_figures(path.name, report[path.name])
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
