"""The shipped scenario classifier, measured on the held-out set that training never saw."""

from __future__ import annotations

import pytest

from tokenmill.routing.classifier import ScenarioClassifier
from tokenmill.routing.dataset import HELDOUT, example_request, load_examples
from tokenmill.routing.request_text import request_text

# measured with the shipped weights (BENCHMARKS.md): 95.4% overall, 96.9% English, 93.8% Chinese
ACCURACY_ALL = 0.95
ACCURACY_LANG = 0.93


@pytest.fixture(scope="module")
def classifier() -> ScenarioClassifier:
    return ScenarioClassifier()


def test_heldout_accuracy_in_english_and_chinese(classifier):
    examples = load_examples(HELDOUT)
    assert len(examples) >= 400
    predicted = [c.scenario for c in classifier.classify_many([example_request(e) for e in examples])]

    def accuracy(pick) -> float:
        pairs = [(e["label"], p) for e, p in zip(examples, predicted) if pick(e)]
        return sum(a == b for a, b in pairs) / len(pairs)

    assert accuracy(lambda e: True) >= ACCURACY_ALL
    assert accuracy(lambda e: e["lang"] == "en") >= ACCURACY_LANG
    assert accuracy(lambda e: e["lang"] == "zh") >= ACCURACY_LANG


@pytest.mark.parametrize(("messages", "scenario"), [
    ([{"role": "user", "content": "Fix this: TypeError: 'NoneType' object is not subscriptable"}], "code"),
    ([{"role": "user", "content": "把下面这段话翻译成日语：欢迎来到我们的店。"}], "translation"),
    ([{"role": "user", "content": "一个数加上它的三倍等于 24，这个数是多少？"}], "math"),
    ([{"role": "system", "content": "You are a coding assistant."},
      {"role": "user", "content": "Write a bash loop over all .log files."},
      {"role": "assistant", "content": "for f in *.log; do echo $f; done"},
      {"role": "user", "content": "Perfect, thanks a lot! Have a great evening :)"}], "chat"),
])
def test_the_last_turn_decides(classifier, messages, scenario):
    assert classifier.classify(request_text(messages)).scenario == scenario
