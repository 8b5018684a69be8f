"""`tokenmill serve` refuses unsafe settings at once, before touching the model store."""

from __future__ import annotations

import os
import subprocess
import sys


def serve(*flags: str, home: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TOKENMILL_API_KEY"} | {"TOKENMILL_HOME": home}
    return subprocess.run([sys.executable, "-m", "tokenmill.cli", "serve", *flags], env=env, capture_output=True,
                          text=True, timeout=60)


def test_public_host_without_api_key_is_refused_before_the_model_loads(tmp_path):
    # an empty model store: had it got as far as the model, it would have tried to pull one
    for host in ("0.0.0.0", "::"):
        r = serve("--host", host, "--port", "18999", home=str(tmp_path))
        assert r.returncode != 0
        assert f"refusing to listen on {host} without an API key" in r.stderr
        assert "--api-key" in r.stderr
        assert "serving" not in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_key_can_come_from_the_environment(tmp_path):
    # with the key set, the host is accepted and the next problem (a missing model file) is reported instead
    env = os.environ | {"TOKENMILL_API_KEY": "k", "TOKENMILL_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "tokenmill.cli", "serve", "--host", "0.0.0.0", "--model", str(tmp_path / "none.gguf")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "API key" not in r.stderr and "none.gguf" in r.stderr


def test_bad_flag_values_are_refused_with_the_flag_named(tmp_path):
    r = serve("--max-queued-requests", "-1", "--port", "18999", home=str(tmp_path))
    assert r.returncode != 0 and "--max-queued-requests" in r.stderr
    r = serve("--port", "70000", home=str(tmp_path))
    assert r.returncode != 0 and "--port" in r.stderr


def test_enforce_eager_reaches_the_engine_config():
    from tokenmill.api.serve_command import _model_from_flags
    from tokenmill.cli import _build_parser

    parser = _build_parser()
    default = _model_from_flags(parser.parse_args(["serve"]))
    eager = _model_from_flags(parser.parse_args(["serve", "--enforce-eager"]))
    assert default.cuda_graphs and not eager.cuda_graphs
    eager.path = "model.gguf"
    assert eager.engine_config().cuda_graphs is False
