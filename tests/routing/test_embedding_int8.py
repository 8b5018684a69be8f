"""The int8 sentence encoder moderation uses: the same vectors as the float32 network, within rounding."""

from __future__ import annotations

import numpy as np
import pytest

from tokenmill.routing.classifier import Embedder

TEXTS = [
    "How do I kill a stuck process on Linux?",
    "把这段话翻译成英文：今天天气很好，我们去公园散步吧。",
    "ok",
    "Write a SQL query that returns the ten most recent orders per customer, with the total of each order, "
    "and explain how the window function works. " * 4,
    "我想学做红烧肉，需要准备哪些材料？火候怎么掌握？" * 6,
    "😀 ！？ ｆｕｌｌ ｗｉｄｔｈ",
]


@pytest.fixture(scope="module")
def encoders() -> tuple[Embedder, Embedder]:
    return Embedder(threads=1), Embedder(threads=1, int8=True)


def test_int8_vectors_match_float32(encoders):
    exact, int8 = encoders
    a, b = exact.encode(TEXTS), int8.encode(TEXTS)
    assert b.shape == (len(TEXTS), 512) and b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosine = (a * b).sum(axis=1)
    assert cosine.min() > 0.999, cosine
    # and the right text's vector: each is nearest to its own float32 vector
    assert (np.argmax(b @ a.T, axis=1) == np.arange(len(TEXTS))).all()


def test_a_batch_gives_each_text_its_own_vector(encoders):
    _, int8 = encoders
    together = int8.encode(TEXTS)
    alone = np.concatenate([int8.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=2e-6)
    assert int8.encode([]).shape == (0, 512)
