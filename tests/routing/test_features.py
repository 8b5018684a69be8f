"""The lexical features read next to the embedding: stable hashed n-grams and cue counts."""

from __future__ import annotations

import numpy as np

from tokenmill.routing.features import CUE_NAMES, cue_vector, ngram_vector, normalise


def test_ngrams_are_normalised_stable_and_fold_digits_and_case():
    v = ngram_vector("SELECT * FROM orders WHERE id = 42", 4096)
    assert v.shape == (4096,) and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    assert np.array_equal(v, ngram_vector("select * from orders where id = 17", 4096))  # digits and case folded
    assert np.array_equal(ngram_vector("", 64), ngram_vector(" \n ", 64))  # whitespace only: the same as empty
    # the same buckets in every process (no Python hash randomisation): pinned
    assert np.flatnonzero(ngram_vector("hi", 64)).tolist() == [21, 23, 38, 48, 49, 52, 57]
    assert normalise("Ｈｅｌｌｏ  World 2026") == "hello world 0000"


def test_cues_see_code_math_translation_and_script():
    cues = dict(zip(CUE_NAMES, cue_vector("```python\ndef total(xs):\n    return sum(xs)\n```", False)))
    assert cues["count_code_fence"] > 0 and cues["count_code_keyword"] > 0 and cues["has_context"] == 0
    cues = dict(zip(CUE_NAMES, cue_vector("把这句话翻译成日语：今日は晴れです", True)))
    assert cues["count_translate_words"] > 0 and cues["ratio_kana"] > 0 and cues["ratio_cjk"] > 0
    assert cues["has_context"] == 1
    cues = dict(zip(CUE_NAMES, cue_vector("17*23?", False)))
    assert cues["count_math_symbols"] > 0 and cues["chars<=12"] == 1
