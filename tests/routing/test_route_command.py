"""`tokenmill route`: JSON lines in, one JSON line out per input, nothing else on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_route_command_classifies_ranks_and_reports_bad_lines():
    lines = [
        {"messages": [{"role": "user", "content": "Write a SQL query that counts orders per user."}]},
        {"text": "你好呀，今天过得怎么样？"},
        {"foo": 1},
    ]
    stdin = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\nnot json\n"
    done = subprocess.run([sys.executable, "-m", "tokenmill.cli", "route", "--config", str(ROOT / "tokenmill.yaml")],
                          input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == 4
    assert out[0]["scenario"] == "code" and out[0]["model"] == "qwen2.5-coder-1.5b-instruct"
    assert out[1]["scenario"] == "chat" and out[1]["model"] == "smollm2-135m-instruct"
    assert out[1]["ranked"][:2] == ["smollm2-135m-instruct", "qwen2.5-coder-1.5b-instruct"]
    assert abs(sum(out[0]["scores"].values()) - 1) < 1e-3
    assert list(out[0])[:3] == ["scenario", "model", "ms"]  # as the issue writes it: scenario, model, ms
    assert all(isinstance(line["ms"], float) and 0 < line["ms"] < 200 for line in out[:2])  # model load not counted
    assert out[2] == {"error": 'line 3: each line needs "messages", "prompt" or "text"'}
    assert out[3]["error"].startswith("line 4: not a JSON object")


def test_route_without_a_catalogue_gives_scenario_and_ms():
    done = subprocess.run([sys.executable, "-m", "tokenmill.cli", "route"], input='{"prompt": "17*23?"}\n',
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["scenario"] == "math" and out["ms"] > 0 and "model" not in out
