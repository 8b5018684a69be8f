"""Train the semantic moderation classifier, choose its thresholds, and measure it on the held-out sets.

Usage: .venv/bin/python scripts/train_moderation.py [--json FILE] [--no-heldout | --evaluate-only]
Trains on src/tokenmill/moderation/data/moderation_train.jsonl (the labelled set), the routing training
requests (routing/data/scenarios.jsonl, harmless) and a served model's answers to them
(moderation_benign_answers.jsonl, written by scripts/generate_benign_answers.py); every choice (weight
decay and thresholds) is made by 5-fold cross-validation on these. Writes
src/tokenmill/moderation/data/semantic.npz, then scores moderation_heldout.jsonl and
moderation_heldout3.jsonl (never used for a choice) and prints per-category precision, recall and F1,
micro F1, flagged-any F1 and the false-positive rate on benign look-alikes, for all examples, English
and Chinese; then the share of harmless held-out
traffic flagged (the routing held-out requests and the model's answers to them,
moderation_benign_answers_heldout.jsonl); last, the latency of one ~512-token text per call on one
thread. --no-heldout trains without looking at the held-out sets; --evaluate-only measures the shipped
weights without training.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from tokenmill.moderation.semantic import (ANSWERS, ANSWERS_HELDOUT, CATEGORIES, HELDOUT, HELDOUT3, INPUT_SCALE,
                                           TRAINING, WEIGHTS, SemanticClassifier)
from tokenmill.routing.classifier import Embedder

ROUTING = Path(__file__).resolve().parent.parent / "src/tokenmill/routing/data"

HIDDEN = 512
MEMBERS = 3  # an ensemble of this many networks (seeds); their probabilities are averaged
EPOCHS = 60
BATCH = 128
LEARNING_RATE = 3e-3
DROPOUT = 0.5
# Tried by 5-fold cross-validation on the training set while building it: a linear layer (logistic
# regression, L2 1e-6..1e-2) reached micro F1 0.81, hashed word/character n-grams added nothing, this network
# 0.85-0.86; weight decay 1e-4 and 1e-3 were within 0.01 of each other. Add values here to compare them again.
WEIGHT_DECAYS = (1e-4,)
FOLDS = 5
LOOKALIKE_FPR = 0.04  # the thresholds flag at most this share of look-alikes in cross-validation (the goal is 5%)
PLAIN_FPR = 0.004  # ... and at most this share of plain requests and answers (one in 250)
GRID = np.round(np.arange(0.30, 0.96, 0.01), 2)


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plain_requests(path: Path) -> list[dict]:
    """The routing set's requests (ordinary code, math, translation, chat and general questions) as harmless
    examples: a conversation's turns and system prompt joined, as the prompt check reads them."""
    out = []
    for item in load(path):
        text = "\n".join(([item["system"]] if item.get("system") else []) + (item.get("turns") or [item["text"]]))
        out.append({"text": text, "labels": [], "lang": item["lang"], "kind": "benign_plain"})
    return out


def training_set() -> list[dict]:
    """The labelled set, the routing training requests and the model's answers to them (all harmless)."""
    return load(TRAINING) + plain_requests(ROUTING / "scenarios.jsonl") + load(ANSWERS)


def heldout_plain() -> list[dict]:
    """Harmless traffic never trained on: the routing held-out requests and the model's answers to them."""
    return (plain_requests(ROUTING / "scenarios_heldout.jsonl") + plain_requests(ROUTING / "scenarios_heldout2.jsonl")
            + load(ANSWERS_HELDOUT))


def label_matrix(examples: list[dict]) -> np.ndarray:
    return np.asarray([[c in e["labels"] for c in CATEGORIES] for e in examples], dtype=np.float32)


# -- the network: 512 -> HIDDEN (ReLU, dropout) -> 6 independent sigmoids, trained with Adam ------------

def train_member(x: np.ndarray, y: np.ndarray, weight_decay: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n, d = x.shape
    params = [(rng.standard_normal((d, HIDDEN)) * np.sqrt(2 / d)).astype(np.float32), np.zeros(HIDDEN, np.float32),
              (rng.standard_normal((HIDDEN, y.shape[1])) * np.sqrt(1 / HIDDEN)).astype(np.float32),
              np.zeros(y.shape[1], np.float32)]
    moment = [np.zeros_like(p) for p in params]
    square = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(EPOCHS):
        for batch in np.array_split(rng.permutation(n), max(1, n // BATCH)):
            w1, b1, w2, b2 = params
            xb, yb = x[batch], y[batch]
            hidden = xb @ w1 + b1
            keep = (rng.random(hidden.shape, dtype=np.float32) > DROPOUT) / np.float32(1 - DROPOUT)
            active = np.maximum(hidden, 0) * keep
            probs = 0.5 + 0.5 * np.tanh(0.5 * (active @ w2 + b2))
            grad_out = (probs - yb) / len(batch)
            grad_hidden = grad_out @ w2.T * keep * (hidden > 0)
            grads = [xb.T @ grad_hidden + weight_decay * w1, grad_hidden.sum(0),
                     active.T @ grad_out + weight_decay * w2, grad_out.sum(0)]
            step += 1
            for p, g, m, v in zip(params, grads, moment, square):
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                p -= LEARNING_RATE * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
    return params


def train(x: np.ndarray, y: np.ndarray, weight_decay: float) -> list[list[np.ndarray]]:
    return [train_member(x, y, weight_decay, seed) for seed in range(MEMBERS)]


def predict(members: list[list[np.ndarray]], x: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x), len(CATEGORIES)), dtype=np.float64)
    for w1, b1, w2, b2 in members:
        out += 0.5 + 0.5 * np.tanh(0.5 * (np.maximum(x @ w1 + b1, 0) @ w2 + b2))
    return out / len(members)


# -- choices by cross-validation on the training set --------------------------------------------------

def out_of_fold(x: np.ndarray, y: np.ndarray, weight_decay: float) -> np.ndarray:
    order = np.random.default_rng(0).permutation(len(x))
    probs = np.zeros(y.shape, dtype=np.float64)
    for k in range(FOLDS):
        held = order[k::FOLDS]
        fit = np.setdiff1d(order, held)
        probs[held] = predict(train(x[fit], y[fit], weight_decay), x[held])
    return probs


def f1(flags: np.ndarray, truth: np.ndarray) -> float:
    tp = float((flags & truth).sum())
    return 2 * tp / max(2 * tp + float((flags & ~truth).sum()) + float((~flags & truth).sum()), 1.0)


def choose_thresholds(probs: np.ndarray, y: np.ndarray, lookalike: np.ndarray, plain: np.ndarray) -> dict[str, float]:
    """Start from each category's best-F1 threshold; while more than LOOKALIKE_FPR of the look-alikes (or
    PLAIN_FPR of the plain requests and answers) are flagged, raise the one threshold that unflags the most
    of them per point of flagged-any F1 lost."""
    truth = y > 0
    harmful = truth.any(axis=1)

    def cost(limits: np.ndarray) -> tuple[float, float]:
        flagged = (probs >= limits).any(axis=1)
        excess = max(flagged[lookalike].mean() - LOOKALIKE_FPR, 0) + max(flagged[plain].mean() - PLAIN_FPR, 0) * 10
        return f1(flagged, harmful), float(excess)

    limits = np.asarray([max(GRID, key=lambda t: (f1(probs[:, j] >= t, truth[:, j]), -t))
                         for j in range(len(CATEGORIES))])
    score, excess = cost(limits)
    while excess > 0:
        options = []
        for j in range(len(CATEGORIES)):
            for t in GRID[GRID > limits[j]]:  # the smallest raise of this threshold that unflags something
                trial = limits.copy()
                trial[j] = t
                trial_score, trial_excess = cost(trial)
                if trial_excess < excess:
                    options.append(((excess - trial_excess) / max(score - trial_score, 1e-4), trial))
                    break
        if not options:
            break
        limits = max(options, key=lambda o: o[0])[1]
        score, excess = cost(limits)
    return {c: float(t) for c, t in zip(CATEGORIES, limits)}


# -- figures ------------------------------------------------------------------------------------------

def figures(examples: list[dict], probs: np.ndarray, thresholds: dict[str, float]) -> dict:
    truth = label_matrix(examples) > 0
    flags = probs >= np.asarray([thresholds[c] for c in CATEGORIES])

    def block(pick: np.ndarray) -> dict:
        t, f = truth[pick], flags[pick]
        per = {}
        for j, category in enumerate(CATEGORIES):
            tp = int((f[:, j] & t[:, j]).sum())
            fp, fn = int((f[:, j] & ~t[:, j]).sum()), int((~f[:, j] & t[:, j]).sum())
            p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
            per[category] = {"n": int(t[:, j].sum()), "precision": round(p, 4), "recall": round(r, 4),
                             "f1": round(2 * p * r / max(p + r, 1e-9), 4)}
        any_t, any_f = t.any(axis=1), f.any(axis=1)
        tp, fp, fn = int((any_f & any_t).sum()), int((any_f & ~any_t).sum()), int((~any_f & any_t).sum())
        kinds = np.asarray([e["kind"] for e in examples])[pick]
        lookalike = kinds == "benign_lookalike"
        out = {"n": int(pick.sum()), "per_category": per, "micro_f1": round(f1(f, t), 4),
               "flagged_any": {"precision": round(tp / max(tp + fp, 1), 4), "recall": round(tp / max(tp + fn, 1), 4),
                               "f1": round(f1(any_f, any_t), 4)},
               "lookalike_fpr": round(float(any_f[lookalike].mean()), 4) if lookalike.any() else None,
               "lookalikes": int(lookalike.sum()),
               "benign_fpr": round(float(any_f[kinds != "harmful"].mean()), 4)}
        for kind in ("benign_plain", "benign_answer"):
            if (kinds == kind).any():
                out[f"{kind}_fpr"] = round(float(any_f[kinds == kind].mean()), 4)
                out[f"{kind}s"] = int((kinds == kind).sum())
        return out

    langs = np.asarray([e["lang"] for e in examples])
    report = {"all": block(np.ones(len(examples), bool)), "en": block(langs == "en"), "zh": block(langs == "zh")}
    report["errors"] = [{"text": e["text"][:160], "labels": e["labels"],
                         "flagged": [c for c, on in zip(CATEGORIES, row) if on]}
                        for e, row, t in zip(examples, flags, truth) if (row != t).any()]
    return report


def latency(classifier: SemanticClassifier, examples: list[dict], runs: int) -> dict:
    """One text of about 512 tokens per call (~2,000 English or ~750 Chinese characters), on one thread."""
    rng = random.Random(7)
    out = {}
    for lang, size in (("en", 2000), ("zh", 750)):
        pool = [e["text"] for e in examples if e["lang"] == lang and e["kind"] != "harmful"]
        texts = []
        for _ in range(runs):
            rng.shuffle(pool)
            text, i = "", 0
            while len(text) < size:
                text += pool[i] + (" " if lang == "en" else "")
                i += 1
            texts.append(text[:size])
        classifier.score(texts[:3])  # warm-up
        times = []
        for text in texts:
            started = time.perf_counter()
            classifier.score([text])
            times.append((time.perf_counter() - started) * 1000)
        out[lang] = {"chars": size, "runs": runs, "p50_ms": round(float(np.percentile(times, 50)), 2),
                     "p90_ms": round(float(np.percentile(times, 90)), 2),
                     "p99_ms": round(float(np.percentile(times, 99)), 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--latency-runs", type=int, default=300, help="calls per language in the latency test")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-heldout", action="store_true", help="train and write the weights; skip the held-out set")
    mode.add_argument("--evaluate-only", action="store_true", help="measure the shipped weights; do not train")
    args = parser.parse_args()
    training = training_set()
    report: dict = {"training_examples": len(training)}
    if not args.evaluate_only:
        report.update(fit_and_save(training))
    classifier = SemanticClassifier(WEIGHTS, Embedder(threads=1, int8=True), cache_chunks=0)
    report["thresholds"] = classifier.thresholds
    if not args.no_heldout:
        for name, path in (("heldout", HELDOUT), ("heldout3", HELDOUT3)):
            heldout = load(path)
            scores = classifier.score([e["text"] for e in heldout])
            probs = np.asarray([[s[c] for c in CATEGORIES] for s in scores])
            report[f"{name}_examples"] = len(heldout)
            report[name] = figures(heldout, probs, classifier.thresholds)
            print(f"{path.name}:", json.dumps({k: v for k, v in report[name].items() if k != "errors"}, indent=1))
            for error in report[name]["errors"]:
                labels, flagged = ','.join(error['labels']) or '-', ','.join(error['flagged']) or '-'
                print(f"  {labels:>20} -> {flagged:<20} {error['text']!r}")
        plain = heldout_plain()
        scores = classifier.score([e["text"] for e in plain])
        probs = np.asarray([[s[c] for c in CATEGORIES] for s in scores])
        report["heldout_plain"] = figures(plain, probs, classifier.thresholds)
        for lang in ("all", "en", "zh"):
            block = report["heldout_plain"][lang]
            print(f"plain held-out traffic ({lang}): requests flagged {block['benign_plain_fpr']:.2%} of "
                  f"{block['benign_plains']}, answers flagged {block['benign_answer_fpr']:.2%} of {block['benign_answers']}")
        for error in report["heldout_plain"]["errors"]:
            print(f"  {'-':>20} -> {','.join(error['flagged']):<20} {error['text']!r}")
    report["latency"] = latency(classifier, training, args.latency_runs)
    print("latency, one ~512-token text per call:", json.dumps(report["latency"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")


def fit_and_save(training: list[dict]) -> dict:
    """Cross-validate, train on all of the training set, write WEIGHTS; returns the cross-validation figures."""
    x = Embedder(threads=2, int8=True).encode([e["text"] for e in training]) * INPUT_SCALE
    y = label_matrix(training)
    lookalike = np.asarray([e["kind"] == "benign_lookalike" for e in training])
    plain = np.asarray([e["kind"] in ("benign_plain", "benign_answer") for e in training])
    cv = {}
    for weight_decay in WEIGHT_DECAYS:
        probs = out_of_fold(x, y, weight_decay)
        thresholds = choose_thresholds(probs, y, lookalike, plain)
        cv[weight_decay] = (figures(training, probs, thresholds), thresholds)
        summary = cv[weight_decay][0]["all"]
        print(f"cv weight_decay={weight_decay:g}: flagged-any F1 {summary['flagged_any']['f1']}, "
              f"micro F1 {summary['micro_f1']}, look-alike FPR {summary['lookalike_fpr']}", flush=True)
    weight_decay = max(cv, key=lambda w: cv[w][0]["all"]["flagged_any"]["f1"])
    figures_cv, thresholds = cv[weight_decay]
    print(json.dumps({k: v for k, v in figures_cv.items() if k != "errors"}, indent=1))
    members = train(x, y, weight_decay)
    stack = [np.stack([m[i] for m in members]) for i in range(4)]
    np.savez(WEIGHTS, categories=np.asarray(CATEGORIES), w1=stack[0], b1=stack[1], w2=stack[2], b2=stack[3],
             thresholds=np.asarray([thresholds[c] for c in CATEGORIES]))
    print(f"wrote {WEIGHTS} (weight decay {weight_decay:g}); DEFAULT_THRESHOLDS = "
          + json.dumps({c: round(t, 2) for c, t in thresholds.items()}), flush=True)
    return {"weight_decay": weight_decay, "cross_validation": {k: v for k, v in figures_cv.items() if k != "errors"},
            "cross_validation_errors": figures_cv["errors"]}


if __name__ == "__main__":
    main()
