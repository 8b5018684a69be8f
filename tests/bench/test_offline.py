"""The offline benchmark runs the real model end to end and reports the figures it claims."""

from __future__ import annotations

import json

import pytest
import torch

from tokenmill.bench.offline import main, measure_bandwidth, memory_roofline


def test_tokenmill_offline_counts_every_output_token(tmp_path):
    out = tmp_path / "offline.json"
    assert main(["--engine", "tokenmill", "--batch", "2", "--input-tokens", "8", "--output-tokens", "4",
                 "--device", "cpu", "--kv-cache-mib", "64", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["output_tokens"] == 2 * 4
    assert record["output_tok_per_s"] > 0 and record["total_tok_per_s"] > record["output_tok_per_s"]
    assert record["config"]["batch"] == 2 and record["env"]["device"] == "cpu" and record["env"]["torch"]
    assert record["roofline"] is None


def test_memory_roofline_arithmetic():
    # 270 MB of bf16 weights at 3.35 TB/s: every decode step streams all weights once
    assert memory_roofline(270_000_000, 3.35e12) == pytest.approx(12_407.4, rel=1e-4)
    assert memory_roofline(1_000, 1e6) == 1_000.0


def test_measure_bandwidth_is_positive():
    assert measure_bandwidth(torch.device("cpu"), nbytes=8 << 20, repeats=2) > 0
