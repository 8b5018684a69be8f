"""`tokenmill serve`: start the OpenAI-compatible server on one model."""

from __future__ import annotations

import argparse
import os
import sys

from tokenmill.config import ConfigError, ServeSettings
from tokenmill.engine.config import QUANTIZATIONS, EngineConfig
from tokenmill.modelstore.index import DEFAULT_MODEL


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the OpenAI-compatible server")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"built-in model name or path to a .gguf file / HF directory (default {DEFAULT_MODEL})")
    p.add_argument("--served-model-name", default=None, help="the name clients use in 'model' (default: the model's name)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("TOKENMILL_API_KEY"), help="require 'Authorization: Bearer KEY' (env TOKENMILL_API_KEY)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    p.add_argument("--quantization", default="none", choices=QUANTIZATIONS,
                   help="w8a8: int8 weights and activations on the CPU (faster at many streams, perplexity a few "
                        "percent higher; BENCHMARKS.md)")
    p.add_argument("--kv-cache-dtype", default="auto", help="K/V storage: auto (float16 when computing in float32), float32, float16, bfloat16")
    p.add_argument("--kv-cache-memory", default="512MiB", help="KV cache size, e.g. 512MiB or 2GiB")
    p.add_argument("--block-size", type=int, default=16, help="tokens per KV block")
    p.add_argument("--max-num-seqs", type=int, default=128, help="most sequences in one step")
    p.add_argument("--max-num-batched-tokens", type=int, default=512, help="token budget of one step")
    p.add_argument("--max-model-len", type=int, default=0, help="context length cap (default: the model's)")
    p.add_argument("--max-queued-requests", type=int, default=256, help="waiting requests beyond which new ones get 503")
    p.add_argument("--replicas", type=int, default=1, help="engine processes for this model")
    p.add_argument("--threads", type=int, default=0, help="PyTorch threads per engine (default: PyTorch's choice)")
    p.add_argument("--no-prefix-caching", action="store_true", help="turn automatic prefix caching off")
    p.add_argument("--admin-key", default=os.environ.get("TOKENMILL_ADMIN_KEY"),
                   help="guards /admin/ (env TOKENMILL_ADMIN_KEY; default: --api-key)")
    p.add_argument("--database", default=os.environ.get("TOKENMILL_DATABASE_URL"),
                   help="tenants, keys and usage ledger: SQLite or PostgreSQL URL (default: SQLite in TOKENMILL_HOME)")
    p.add_argument("--no-ledger", action="store_true", help="do not write a usage record per request")
    p.add_argument("--redis-url", default=os.environ.get("TOKENMILL_REDIS_URL"),
                   help="share rate-limit and budget counters between API processes through this Redis")
    p.add_argument("--price-input", default="0", help="price per million prompt tokens, in currency units")
    p.add_argument("--price-cached-input", default=None, help="price per million cached prompt tokens (default: --price-input)")
    p.add_argument("--price-output", default="0", help="price per million completion tokens, in currency units")
    p.add_argument("--engine-stand-in", type=int, default=0, metavar="N",
                   help="benchmarking the gateway only: load no model, answer every request at once with N tokens")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_serve)


def parse_bytes(text: str) -> int:
    """'512MiB', '2GiB', '1000000' -> bytes."""
    units = {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "b": 1}
    lower = text.strip().lower()
    for unit, factor in units.items():
        if lower.endswith(unit):
            return int(float(lower[: -len(unit)]) * factor)
    return int(lower)


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    from tokenmill.modelstore.store import resolve_model

    from tokenmill.metering.pricing import Prices

    settings = ServeSettings(EngineConfig(model_path=""), host=args.host, port=args.port, api_key=args.api_key,
                             replicas=args.replicas, max_queued_requests=args.max_queued_requests, log_level=args.log_level,
                             admin_key=args.admin_key, database_url=args.database, ledger=not args.no_ledger,
                             redis_url=args.redis_url,
                             prices=Prices.parse(args.price_input, args.price_cached_input, args.price_output),
                             engine_stand_in_tokens=args.engine_stand_in)
    settings.validate()  # before the model store: refused settings must not pull or load anything
    resolved = resolve_model(args.model)
    settings.engine = EngineConfig(
        model_path=str(resolved.path), model_name=args.served_model_name or resolved.name, device=args.device,
        dtype=args.dtype, quantization=args.quantization, kv_cache_dtype=args.kv_cache_dtype, kv_cache_bytes=parse_bytes(args.kv_cache_memory), block_size=args.block_size,
        max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens,
        max_model_len=args.max_model_len, enable_prefix_caching=not args.no_prefix_caching, num_threads=args.threads)
    return settings


def _serve(args: argparse.Namespace) -> int:
    from tokenmill.modelstore.store import ModelStoreError

    try:
        settings = settings_from_args(args)
    except (ConfigError, ModelStoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from tokenmill.api.app import create_app

    app = create_app(settings)
    print(f"tokenmill: serving '{settings.engine.model_name}' on http://{settings.host}:{settings.port}/v1", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, timeout_graceful_shutdown=5)
    return 0
