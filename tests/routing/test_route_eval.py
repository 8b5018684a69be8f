"""`tokenmill route eval FILE`: accuracy, per-class precision and recall, confusion, latency, cost and quality."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# prices per million tokens: input free, so a request costs max_tokens * output price (in micro-units)
CATALOGUE = """
models:
  - name: cheap
    upstream: {base_url: "http://127.0.0.1:9/v1", model: cheap}
    prices: {input: 0, output: 1}
    quality: {chat: 0.9, general: 0.6}
  - name: strong
    upstream: {base_url: "http://127.0.0.1:9/v1", model: strong}
    prices: {input: 0, output: 10}
    quality: {code: 0.9, math: 0.9, translation: 0.8, chat: 0.6, general: 0.8}
"""

LINES = [
    {"prompt": "Write a Python function that reverses a linked list.", "label": "code"},
    {"messages": [{"role": "user", "content": "帮我写一个 SQL 查询，统计每个用户的订单数量"}], "label": "code"},
    {"prompt": "Hey! How's your day going?", "label": "chat"},
    {"prompt": "请把这句话翻译成英文：我们明天早上九点开会。", "label": "translation"},
    {"prompt": "Solve for x: 3x + 5 = 20", "label": "math"},
    {"prompt": "Write a bash loop over all .log files.", "label": "math"},  # mislabelled on purpose: counts as wrong
]


def tokenmill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tokenmill.cli", "route", *args],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)


@pytest.fixture()
def files(tmp_path) -> tuple[Path, Path]:
    data, catalogue = tmp_path / "labelled.jsonl", tmp_path / "catalogue.yaml"
    data.write_text("\n".join(json.dumps({**x, "max_tokens": 100}, ensure_ascii=False) for x in LINES) + "\n")
    catalogue.write_text(CATALOGUE)
    return data, catalogue


def test_eval_reports_accuracy_per_class_confusion_latency_cost_and_quality(files):
    data, catalogue = files
    done = tokenmill("eval", str(data), "--config", str(catalogue), "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert (r["requests"], r["correct"], r["accuracy"]) == (6, 5, 0.8333)
    assert r["per_class"]["code"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "requests": 2}
    assert r["per_class"]["math"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "requests": 2}
    assert r["per_class"]["general"]["requests"] == 0
    assert r["confusion"]["math"] == {"code": 1, "math": 1, "translation": 0, "chat": 0, "general": 0}
    assert r["confusion"]["chat"]["chat"] == 1 and r["confusion"]["translation"]["translation"] == 1
    assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["p99"]
    cost = r["cost"]
    # only the chat request goes to the cheap model: 100 micro-units instead of 1000
    assert cost["strongest"] == "strong" and cost["routed_to"] == {"strong": 5, "cheap": 1}
    assert (cost["routed_micros_per_request"], cost["strongest_micros_per_request"]) == (850.0, 1000.0)
    assert cost["savings"] == 0.15
    # by the true labels: routed 0.9+0.9+0.9(cheap, chat)+0.8+0.9+0.9 = 5.3, always strong 5.0
    assert cost["quality_vs_strongest"] == 1.06 and cost["met_floor"] == 6


def test_eval_prints_a_readable_report(files):
    data, catalogue = files
    done = tokenmill("eval", str(data), "--config", str(catalogue))
    assert done.returncode == 0, done.stderr
    assert "6 requests, scenario accuracy 83.3% (5 of 6)" in done.stdout
    assert "math             1.000   0.500  0.667        2" in done.stdout
    assert "p50 " in done.stdout and "p99 " in done.stdout
    assert "850.00 micro-units a request routed, 1000.00 all on strong: 15.0% lower" in done.stdout
    assert "106.0% of always strong" in done.stdout


def test_eval_names_the_bad_line_and_route_without_eval_still_reads_stdin(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "hi", "label": "chat"}\n\n{"prompt": "2+2?", "label": "maths"}\n')
    done = tokenmill("eval", str(data))
    assert done.returncode == 2 and done.stdout == ""
    assert "line 3" in done.stderr and '"label" must be one of code, math, translation, chat, general' in done.stderr
    data.write_text('{"prompt": "hi", "label": "chat"}\nnot json\n')
    assert "line 2: not a JSON object" in tokenmill("eval", str(data)).stderr
    assert "name the labelled file" in tokenmill("eval").stderr
    assert "invalid choice" in tokenmill(str(data)).stderr  # a file without "eval" is refused, not read as stdin
