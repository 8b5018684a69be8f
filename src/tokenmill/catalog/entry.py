"""One model of the catalogue: where it comes from, how it runs, what it costs and what it is good at."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenmill.engine.config import EngineConfig
from tokenmill.metering.pricing import Prices

SCENARIOS = ("code", "math", "translation", "chat", "general")


@dataclass(frozen=True, slots=True)
class Upstream:
    """An OpenAI-compatible server that serves this model for us."""

    base_url: str  # e.g. https://api.example.com/v1
    model: str  # the model's name there
    api_key_env: str = ""  # environment variable holding its key ("" for none)


@dataclass(slots=True)
class ModelEntry:
    name: str  # what clients put in "model"
    aliases: tuple[str, ...] = ()
    source: str = ""  # built-in index name, .gguf file or HF directory (self-hosted); "" when upstream
    upstream: Upstream | None = None
    replicas: int = 1
    device: str = "auto"
    dtype: str = "auto"
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    kv_cache_bytes: int = 512 * 1024**2
    block_size: int = 16
    context_length: int = 0  # 0: the model's own
    max_num_seqs: int = 128
    max_num_batched_tokens: int = 512
    threads: int = 0
    prefix_caching: bool = True
    cuda_graphs: bool = True
    prices: Prices = field(default_factory=Prices)
    quality: dict[str, float] = field(default_factory=dict)  # per scenario, 0..1, for routing
    path: str = ""  # the local model file or directory, once source is resolved (pulled if built-in)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a request may use for this model."""
        return (self.name, *self.aliases)

    @property
    def self_hosted(self) -> bool:
        return self.upstream is None

    def engine_config(self) -> EngineConfig:
        """How each engine replica of this (self-hosted, resolved) model runs."""
        if not self.path:
            raise ValueError(f"model {self.name!r} has no local path yet: resolve its source first")
        return EngineConfig(model_path=self.path, model_name=self.name, device=self.device, dtype=self.dtype,
                            quantization=self.quantization, kv_cache_dtype=self.kv_cache_dtype,
                            kv_cache_bytes=self.kv_cache_bytes, block_size=self.block_size,
                            max_num_seqs=self.max_num_seqs, max_num_batched_tokens=self.max_num_batched_tokens,
                            max_model_len=self.context_length, enable_prefix_caching=self.prefix_caching,
                            cuda_graphs=self.cuda_graphs, num_threads=self.threads)
