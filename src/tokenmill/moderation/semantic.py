"""The semantic half of moderation: six harm categories scored from a multilingual sentence embedding.

Public API (thread-safe; load once, the encoder takes ~1 s and ~70 MB):

    classifier = SemanticClassifier()                    # data/semantic.npz + its own USE encoder
    classifier.score(texts) -> list[dict[str, float]]    # per text, a probability per category
    classifier.verdicts(texts, thresholds=None) -> list[SemanticVerdict]   # .scores .flagged .flagged_any
    DEFAULT_THRESHOLDS                                   # category -> threshold; a config overrides some
    CATEGORIES = ("violence", "self_harm", "sexual", "hate", "harassment", "illicit")

A text is flagged for a category when its score is at least the category's threshold. Each text is
embedded with the router's Universal Sentence Encoder Multilingual v3, run with int8 products
(`routing.classifier.Embedder(int8=True)`, 512-d), and a small network (an ensemble of 3 one-hidden-layer nets) gives one independent sigmoid
per category. The encoder never truncates and its cost is linear in tokens, so a text longer than
CHUNK_COST (~240 English or ~60 Chinese characters) is scored sentence by sentence in one batch and
the text's score is the maximum: a harmful sentence in a long benign text is not averaged away.
Identical sentences are scored once (a small LRU cache), which helps overlapping stream windows and
chat history that is re-sent every turn. Cost: one ~512-token text (2,000 English or 750 Chinese
characters, ~500 or ~650 encoder tokens) took p50 12.7 / 8.2 ms, p99 16.1 / 12.8 ms on one thread of
the shared 2-core dev machine (scripts/train_moderation.py measures it); the network itself is ~0.5 ms.

Data: trained by scripts/train_moderation.py on data/moderation_train.jsonl, the routing training requests
and a served model's answers to them (data/moderation_benign_answers.jsonl); data/moderation_heldout.jsonl
and the answers to the routing held-out requests are only used to report figures; provenance and
labelling rules in data/MODERATION_PROVENANCE.md.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenmill.moderation.categories import CATEGORIES
from tokenmill.routing.classifier import Embedder

DATA = Path(__file__).with_name("data")
WEIGHTS = DATA / "semantic.npz"
TRAINING = DATA / "moderation_train.jsonl"
HELDOUT = DATA / "moderation_heldout.jsonl"  # never used for training or tuning
HELDOUT3 = DATA / "moderation_heldout3.jsonl"  # a third set, written after round 2 was final (never tuned on)
ANSWERS = DATA / "moderation_benign_answers.jsonl"  # a served model's answers to the routing training requests
ANSWERS_HELDOUT = DATA / "moderation_benign_answers_heldout.jsonl"  # ... to the routing held-out requests

# Chosen by 5-fold cross-validation on the training set only and stored with the weights in semantic.npz
# (scripts/train_moderation.py prints them): each category starts at its best-F1 threshold, then the
# thresholds are raised where that unflags the most benign look-alikes ("kill a process", "max dose
# of paracetamol") or plain requests and answers per point of F1 lost, until at most 4% of the
# look-alikes and 0.4% of the plain texts are flagged.
DEFAULT_THRESHOLDS: dict[str, float] = {"violence": 0.69, "self_harm": 0.65, "sexual": 0.88, "hate": 0.43,
                                        "harassment": 0.36, "illicit": 0.54}

INPUT_SCALE = float(np.sqrt(512))  # the encoder's unit vectors scaled to about unit variance per feature
CHUNK_COST = 240  # per chunk, in "cost" units: 1 per Latin character, 4 per CJK character (~50 encoder tokens)
SHORT_SENTENCE = 60  # a sentence under this cost ("Sure.", "好的。") is scored together with its neighbour
CACHE_CHUNKS = 4096  # overlapping stream windows and repeated chat history re-send the same sentences

_SENTENCE = re.compile(r".*?(?:[.!?。！？；;…\n]+\s*|$)", re.S)  # a sentence with its end and trailing space
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")


def _cost(text: str) -> int:
    return len(text) + 3 * len(_CJK.findall(text))


def chunks(text: str, budget: int = CHUNK_COST) -> list[str]:
    """The pieces a text is scored in: the whole text when it fits `budget`, else its sentences (a
    sentence is packed with a neighbour only when one of them is short, because a harmful sentence
    averaged with a benign one loses most of its score), long sentences cut at spaces."""
    if _cost(text) <= budget:
        return [text.strip() or " "]
    pieces: list[str] = []
    for sentence in _SENTENCE.findall(text):
        while _cost(sentence) > budget:  # a run-on sentence or a paste without punctuation
            cut = max(2, len(sentence) * budget // _cost(sentence))
            while cut > 2 and _cost(sentence[:cut]) > budget:
                cut -= max(1, cut // 10)
            space = sentence.rfind(" ", cut // 2, cut)
            cut = space if space > 0 else cut
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        if sentence.strip():
            pieces.append(sentence)
    out: list[str] = []
    for piece in pieces:
        short = min(_cost(piece), _cost(out[-1]) if out else budget) < SHORT_SENTENCE
        if out and short and _cost(out[-1]) + _cost(piece) <= budget:
            out[-1] += piece
        else:
            out.append(piece)
    return [c.strip() for c in out if c.strip()] or [" "]


@dataclass(frozen=True, slots=True)
class SemanticVerdict:
    scores: dict[str, float]  # category -> probability in [0, 1]
    flagged: dict[str, bool]  # category -> score >= its threshold

    @property
    def flagged_any(self) -> bool:
        return any(self.flagged.values())

    @property
    def categories(self) -> list[str]:
        return [c for c in CATEGORIES if self.flagged[c]]


class SemanticClassifier:
    """Six independent sigmoids over a sentence embedding; see the module docstring."""

    def __init__(self, weights: Path = WEIGHTS, embedder: Embedder | None = None,
                 cache_chunks: int = CACHE_CHUNKS) -> None:
        self.network = load_weights(weights)
        self.thresholds = self.network.thresholds  # the defaults of these weights (DEFAULT_THRESHOLDS when shipped)
        self.embedder = embedder or Embedder(int8=True)
        self.cache_chunks = cache_chunks
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def score(self, texts: list[str]) -> list[dict[str, float]]:
        """Per text, the probability of each category (the maximum over the text's chunks)."""
        pieces = [chunks(text) for text in texts]
        probs = self._chunk_probs([c for p in pieces for c in p])
        out, at = [], 0
        for p in pieces:
            top = probs[at:at + len(p)].max(axis=0)
            at += len(p)
            out.append({c: float(v) for c, v in zip(CATEGORIES, top)})
        return out

    def verdicts(self, texts: list[str], thresholds: dict[str, float] | None = None) -> list[SemanticVerdict]:
        """score() with each category compared to its threshold (`thresholds` overrides the defaults)."""
        limits = {**self.thresholds, **(thresholds or {})}
        unknown = set(limits) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown moderation categories {sorted(unknown)}; use {', '.join(CATEGORIES)}")
        return [SemanticVerdict(s, {c: s[c] >= limits[c] for c in CATEGORIES}) for s in self.score(texts)]

    def _chunk_probs(self, pieces: list[str]) -> np.ndarray:
        with self._cache_lock:
            known = {p: self._cache[p] for p in set(pieces) if p in self._cache}
            for p in known:
                self._cache.move_to_end(p)
        todo = list(dict.fromkeys(p for p in pieces if p not in known))
        if todo:
            new = dict(zip(todo, self.network.probabilities(self.embedder.encode(todo) * INPUT_SCALE)))
            known.update(new)
            with self._cache_lock:
                self._cache.update(new)
                while len(self._cache) > self.cache_chunks:
                    self._cache.popitem(last=False)
        return np.stack([known[p] for p in pieces])


@dataclass(frozen=True, slots=True)
class Network:
    """An ensemble of one-hidden-layer networks: embedding -> ReLU layer -> one sigmoid per category."""

    w1: np.ndarray  # [members, 512, hidden]
    b1: np.ndarray  # [members, hidden]
    w2: np.ndarray  # [members, hidden, categories]
    b2: np.ndarray  # [members, categories]
    thresholds: dict[str, float]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """[texts, categories] probabilities for scaled embeddings x [texts, 512]: the members' mean."""
        hidden = np.maximum(np.matmul(x[None], self.w1) + self.b1[:, None, :], 0)  # [members, texts, hidden]
        logits = np.matmul(hidden, self.w2) + self.b2[:, None, :]
        return (0.5 + 0.5 * np.tanh(0.5 * logits)).mean(axis=0)  # the logistic function, without overflow


def load_weights(path: Path) -> Network:
    """The network stored in a semantic.npz, with its shapes and categories checked."""
    hint = "retrain it with: .venv/bin/python scripts/train_moderation.py"
    if not Path(path).is_file():
        raise FileNotFoundError(f"moderation weights {path} are missing; {hint}")
    try:
        with np.load(path, allow_pickle=False) as saved:
            categories = tuple(str(c) for c in saved["categories"])
            arrays = [saved[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2")]
            thresholds = saved["thresholds"].astype(np.float64)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise ValueError(f"moderation weights {path} are unreadable or incomplete ({exc}); {hint}") from exc
    w1, b1, w2, b2 = arrays
    members, hidden = (w1.shape[0], w1.shape[2]) if w1.ndim == 3 else (0, 0)
    count = len(CATEGORIES)
    shapes_ok = (members > 0 and w1.shape == (members, 512, hidden) and b1.shape == (members, hidden)
                 and w2.shape == (members, hidden, count) and b2.shape == (members, count)
                 and thresholds.shape == (count,))
    if categories != CATEGORIES or not shapes_ok:
        raise ValueError(f"moderation weights {path} hold categories {categories} and w1 {w1.shape}, w2 {w2.shape}; "
                         f"expected {CATEGORIES} and [members, 512, hidden], [members, hidden, {count}]; {hint}")
    return Network(w1, b1, w2, b2, dict(zip(CATEGORIES, thresholds.tolist())))
