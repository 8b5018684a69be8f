"""A real `tokenmill serve` subprocess on the real SmolLM2-135M-Instruct model, shared by the API tests.

Each server costs ~15 s of start-up on a 2-core machine, so the suite starts one for the session
(and test files that need other flags start one small extra server each).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

MODEL = "smollm2-135m-instruct"
MAX_MODEL_LEN = 256
STARTUP_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    """Live processes below pid (the engine replicas, multiprocessing's resource tracker)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier}
        found |= children
        frontier = children
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@dataclass
class Server:
    proc: subprocess.Popen
    base_url: str
    log_path: Path
    children: set[int] = field(default_factory=set)
    stopped: bool = False

    @property
    def url(self) -> str:
        return self.base_url + "/v1"

    @property
    def engine_pids(self) -> list[int]:
        """The engine processes (multiprocessing spawns them; its resource tracker is the other child)."""
        pids = []
        for pid in sorted(self.children):
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(pid)
            except OSError:
                pass
        return pids

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> dict[str, float]:
        """/metrics as {'name{label="v"}': value}; each sample also counts, summed over models, under its
        key without the model label ('tokenmill_prompt_tokens_total', 'tokenmill_requests_total{outcome="stop"}')."""
        text = httpx.get(self.base_url + "/metrics", timeout=30).text
        values: dict[str, float] = {}

        def key(name: str, labels: dict) -> str:
            text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            return f"{name}{{{text}}}" if text else name

        for family in text_string_to_metric_families(text):
            for s in family.samples:
                values[key(s.name, s.labels)] = s.value
                if "model" in s.labels:
                    other = key(s.name, {k: v for k, v in s.labels.items() if k != "model"})
                    values[other] = values.get(other, 0.0) + s.value
        return values

    def wait_idle(self, timeout_s: float = 30.0) -> dict[str, float]:
        """Wait until the engine runs nothing, holds no KV blocks and nothing waits; return the metrics then."""
        deadline = time.monotonic() + timeout_s
        while True:
            m = self.metrics()
            if (m["tokenmill_requests_running"], m["tokenmill_requests_waiting"], m["tokenmill_kv_cache_usage_ratio"]) == (0, 0, 0):
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not go idle within {timeout_s} s: running={m['tokenmill_requests_running']} "
                                     f"waiting={m['tokenmill_requests_waiting']} kv={m['tokenmill_kv_cache_usage_ratio']}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        """Stop the API process with sig, then check that its engine processes went with it."""
        if self.stopped:
            return
        self.stopped = True
        self.children |= descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        deadline = time.monotonic() + 15.0
        while any(alive(p) for p in self.children) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = sorted(p for p in self.children if alive(p))
        for p in orphans:
            os.kill(p, signal.SIGKILL)
        assert not orphans, f"processes {orphans} outlived the server (stopped with signal {sig})"


def start_server(tmp_dir: Path, *flags: str) -> Server:
    """Start `tokenmill serve` on a free port with these extra flags and wait until /health answers."""
    port = free_port()
    log_path = tmp_dir / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if k != "TOKENMILL_API_KEY"}
    # float32 on every CPU, so greedy-equality checks do not depend on whether the CPU has bf16 units
    # (a --config names its models' dtypes itself)
    dtype = [] if "--config" in flags else ["--dtype", "float32"]
    cmd = [sys.executable, "-m", "tokenmill.cli", "serve", "--port", str(port), "--log-level", "warning", *dtype, *flags]
    if "--database" not in flags:  # each server its own ledger, never the user's
        cmd += ["--database", f"sqlite:///{tmp_dir}/tokenmill-{port}.db"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{server.log()[-3000:]}")
        try:
            if httpx.get(server.base_url + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise RuntimeError(f"the server did not answer /health within {STARTUP_TIMEOUT_S} s:\n{server.log()[-3000:]}")
        time.sleep(0.25)
    server.children = descendants(proc.pid)
    if not server.engine_pids and "--engine-stand-in" not in flags:
        server.stop(signal.SIGKILL)  # a failed start must not leave a server running after the tests
        raise AssertionError("the server started no engine process")
    return server


@pytest.fixture(scope="session")
def spawn_server(tmp_path_factory) -> Iterator[Callable[..., Server]]:
    """start_server(*flags) that also stops, at the end of the session, any server a test left running."""
    started: list[Server] = []

    def spawn(*flags: str) -> Server:
        server = start_server(tmp_path_factory.mktemp("serve"), *flags)
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def spawn_catalogue(spawn_server, tmp_path_factory) -> Callable[..., Server]:
    """spawn_catalogue(yaml_text, *flags): a server started with --config on a file holding this catalogue."""

    def spawn(text: str, *flags: str) -> Server:
        config = tmp_path_factory.mktemp("catalogue") / "tokenmill.yaml"
        config.write_text(text, encoding="utf-8")
        return spawn_server("--config", str(config), *flags)

    return spawn


@pytest.fixture(scope="session")
def server(spawn_server) -> Iterator[Server]:
    """The shared server: 64 sequences per step, a small KV cache and a 256-token context."""
    server = spawn_server("--max-num-seqs", "64", "--kv-cache-memory", "256MiB", "--max-model-len", str(MAX_MODEL_LEN))
    yield server
    # the API process dying without any shutdown must still take its engine process with it
    server.stop(signal.SIGKILL)


@pytest.fixture(scope="session")
def base_url(server: Server) -> str:
    return server.base_url


@pytest.fixture(scope="session")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=180)


@pytest.fixture(scope="session")
def model() -> str:
    return MODEL


@pytest.fixture(scope="session")
def max_model_len() -> int:
    """The shared server's context length (--max-model-len)."""
    return MAX_MODEL_LEN


@pytest.fixture(scope="session")
def tokenizer():
    """The tokenizer the server uses, loaded here the same way, to count prompt tokens independently of usage."""
    from tokenmill.engine.tokenizer import load_tokenizer
    from tokenmill.modelstore.store import resolve_model

    return load_tokenizer(resolve_model(MODEL, pull_missing=False).path)


@pytest.fixture(scope="session")
def chat_tokens(tokenizer) -> Callable[[list[dict]], int]:
    """Number of prompt tokens the server should count for these chat messages."""
    def count(messages: list[dict]) -> int:
        return len(tokenizer.encode(tokenizer.apply_chat_template(messages), add_special_tokens=False))

    return count
