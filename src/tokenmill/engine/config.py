"""Settings of one engine instance."""

from __future__ import annotations

from dataclasses import dataclass

# CPU only (models/quantize.py): w8a8, int8 weights and activations, for throughput; w4a16, 4-bit weights
# and bf16 activations, for one stream
QUANTIZATIONS = ("none", "w8a8", "w4a16")


@dataclass(slots=True)
class EngineConfig:
    model_path: str
    model_name: str = ""
    device: str = "auto"
    dtype: str = "auto"
    quantization: str = "none"  # one of QUANTIZATIONS
    kv_cache_dtype: str = "auto"  # auto: float16 when computing in float32, else the compute dtype
    kv_cache_bytes: int = 512 * 1024**2
    block_size: int = 16
    max_num_seqs: int = 128
    max_num_batched_tokens: int = 512
    max_model_len: int = 0  # 0: the model's own context length
    enable_prefix_caching: bool = True
    cuda_graphs: bool = True  # on a GPU, replay decode steps as CUDA graphs (False: always eager)
    num_threads: int = 0  # 0: leave PyTorch's default
    seed: int = 0
