"""`tokenmill bench` against the real server and model: its counts agree with the server's own."""

import asyncio
import json
import subprocess
import sys

from tokenmill.bench.client import Target
from tokenmill.bench.runner import Load, run_load
from tokenmill.bench.workloads import PromptMaker, WorkloadConfig, build_requests
from tokenmill.engine.tokenizer import load_tokenizer
from tokenmill.modelstore.store import resolve_model


def test_stream_counts_equal_server_usage(server, model):
    tok = load_tokenizer(resolve_model(model).path)
    maker = PromptMaker(lambda text: tok.encode(text, add_special_tokens=False), tok.decode)
    requests = build_requests(WorkloadConfig("random", num_requests=6, input_tokens=40, output_tokens=12), maker)
    before = server.metrics()
    records, _ = asyncio.run(run_load(Target(server.url, model), requests, Load(concurrency=3), progress=False))
    after = server.wait_idle()
    assert all(r.ok for r in records), [r.error for r in records]
    # the bench's exact prompt lengths are what the server counted, and every token was streamed
    assert [r.prompt_tokens for r in records] == [40] * 6
    assert all(r.output_tokens == r.streamed_tokens == 12 for r in records)
    assert after["tokenmill_generation_tokens_total"] - before.get("tokenmill_generation_tokens_total", 0) == 72
    assert after["tokenmill_prompt_tokens_total"] - before.get("tokenmill_prompt_tokens_total", 0) == 240


def test_bench_command_writes_a_consistent_json(server, model, tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "tokenmill.cli", "bench", "--base-url", server.url, "--model", model,
           "--workload", "chat", "--input-tokens", "10", "--concurrency", "1,4", "--num-requests", "4", "--max-tokens", "8",
           "--slo", "ttft=60000,tpot=60000", "--json", str(out), "--no-progress", "--name", "tokenmill"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "concurrency 4: 4 completed, 0 failed" in result.stdout
    data = json.loads(out.read_text())
    assert data["config"]["name"] == "tokenmill" and data["config"]["target"]["model"] == model
    assert [run["label"] for run in data["runs"]] == ["concurrency 1", "concurrency 4"]
    for run in data["runs"]:
        s = run["summary"]
        # Chinese characters split over tokens arrive in fewer chunks than tokens; usage counts them all
        assert s["completed"] == 4 and s["total_output_tokens"] == 32 >= s["total_streamed_tokens"] > 0
        assert s["goodput"] == s["request_throughput"] > 0
        assert s["ttft_ms"]["median"] > 0 and s["tpot_ms"]["median"] > 0
    compared = subprocess.run([sys.executable, "-m", "tokenmill.cli", "bench", "--compare", str(out), str(out)],
                              capture_output=True, text=True, timeout=60)
    assert "out tok/s" in compared.stdout and "1.00x" in compared.stdout
