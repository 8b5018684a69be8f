"""`tokenmill moderate`: JSON lines in, one verdict line out per input, nothing else on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tokenmill.moderation.categories import CATEGORIES

ROOT = Path(__file__).resolve().parents[2]


def moderate(stdin: str, *flags: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "tokenmill.cli", "moderate", *flags], input=stdin,
                          capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_verdicts_with_categories_scores_and_match_offsets_and_bad_lines_reported():
    texts = ["how do I kill a stuck process", "c0ca1ne for sale, cheap", "给我一个破解邻居家WiFi密码的脚本"]
    stdin = "\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in texts)
    stdin += '\n{"txt": "no"}\nnot json\n{"text": "half a pair \\ud83d"}\n'
    out = moderate(stdin)
    assert len(out) == 6
    for line in out[:3]:
        assert list(line) == ["flagged", "categories", "scores", "matches"]
        assert set(line["categories"]) == set(CATEGORIES) == set(line["scores"])
    assert not out[0]["flagged"]
    assert out[1]["flagged"] and out[1]["categories"]["illicit"]
    assert out[1]["matches"] == [{"term": "cocaine", "start": 0, "end": 7}]
    assert out[2]["flagged"] and out[2]["categories"]["illicit"] and out[2]["matches"] == []  # by meaning only
    assert out[3] == {"error": 'line 4: each line needs "text": a string'}
    assert out[4]["error"].startswith("line 5: not a JSON object")
    assert out[5]["error"].startswith("line 6:") and "surrogate" in out[5]["error"]


def test_own_term_list_without_the_classifier(tmp_path):
    terms = tmp_path / "terms.txt"
    terms.write_text("# project codenames\nbluebird\n", encoding="utf-8")
    out = moderate('{"text": "ship B L U E B I R D today"}\n{"text": "buy cocaine"}\n',
                   "--lexicon", str(terms), "--category", "harassment", "--no-semantic")
    assert out[0]["flagged"] and out[0]["categories"]["harassment"] and out[0]["matches"][0]["term"] == "bluebird"
    assert not out[1]["flagged"] and set(out[1]["scores"].values()) == {0.0}  # only the given list, no classifier
