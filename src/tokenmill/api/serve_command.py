"""`tokenmill serve`: start the OpenAI-compatible server on one model or on a catalogue of them (--config)."""

from __future__ import annotations

import argparse
import os
import sys

from tokenmill.catalog.entry import ModelEntry
from tokenmill.catalog.load import load_catalog
from tokenmill.config import ConfigError, ServeSettings
from tokenmill.engine.config import QUANTIZATIONS
from tokenmill.metering.pricing import Prices
from tokenmill.modelstore.index import DEFAULT_MODEL
from tokenmill.moderation.config import BUILTIN, ModerationConfig, has_moderation_section, load_moderation_config
from tokenmill.units import parse_bytes


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the OpenAI-compatible server")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="serve the models this YAML catalogue declares (see tokenmill.yaml); the model flags below "
                        "then do not apply")
    p.add_argument("--model", default=None, help=f"built-in model name or path to a .gguf file / HF directory (default {DEFAULT_MODEL})")
    p.add_argument("--served-model-name", default=None, help="the name clients use in 'model' (default: the model's name)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("TOKENMILL_API_KEY"), help="require 'Authorization: Bearer KEY' (env TOKENMILL_API_KEY)")
    p.add_argument("--device", default=None, help="auto, cpu or cuda[:N] (default auto)")
    p.add_argument("--dtype", default=None, help="auto, float32, bfloat16 or float16 (default auto)")
    p.add_argument("--quantization", default=None, choices=QUANTIZATIONS,
                   help="CPU only. w8a8: int8 weights and activations (faster at many streams, perplexity a few "
                        "percent higher); w4a16: decoded tokens through 4-bit weights, prompts as w8a8 (faster "
                        "at one stream, slower at many); BENCHMARKS.md")
    p.add_argument("--kv-cache-dtype", default=None, help="K/V storage: auto (float16 when computing in float32), float32, float16, bfloat16")
    p.add_argument("--kv-cache-memory", default=None, help="KV cache size, e.g. 512MiB (default) or 2GiB")
    p.add_argument("--block-size", type=int, default=None, help="tokens per KV block (default 16)")
    p.add_argument("--max-num-seqs", type=int, default=None, help="most sequences in one step (default 128)")
    p.add_argument("--max-num-batched-tokens", type=int, default=None, help="token budget of one step (default 512)")
    p.add_argument("--max-model-len", type=int, default=None, help="context length cap (default: the model's)")
    p.add_argument("--replicas", type=int, default=None, help="engine processes for this model (default 1)")
    p.add_argument("--threads", type=int, default=None, help="PyTorch threads per engine (default: PyTorch's choice)")
    p.add_argument("--no-prefix-caching", action="store_true", default=None, help="turn automatic prefix caching off")
    p.add_argument("--enforce-eager", action="store_true", default=None,
                   help="on a GPU, run every step eagerly instead of replaying decode steps as CUDA graphs")
    p.add_argument("--price-input", default=None, help="price per million prompt tokens, in currency units (default 0)")
    p.add_argument("--price-cached-input", default=None, help="price per million cached prompt tokens (default: --price-input)")
    p.add_argument("--price-output", default=None, help="price per million completion tokens, in currency units (default 0)")
    p.add_argument("--max-queued-requests", type=int, default=256, help="waiting requests beyond which new ones get 503")
    p.add_argument("--admin-key", default=os.environ.get("TOKENMILL_ADMIN_KEY"),
                   help="guards /admin/ (env TOKENMILL_ADMIN_KEY; default: --api-key)")
    p.add_argument("--database", default=os.environ.get("TOKENMILL_DATABASE_URL"),
                   help="tenants, keys and usage ledger: SQLite or PostgreSQL URL (default: SQLite in TOKENMILL_HOME)")
    p.add_argument("--no-ledger", action="store_true", help="do not write a usage record per request")
    p.add_argument("--redis-url", default=os.environ.get("TOKENMILL_REDIS_URL"),
                   help="share rate-limit and budget counters between API processes through this Redis")
    p.add_argument("--moderation", nargs="?", const=BUILTIN, default=None, metavar="FILE",
                   help="moderate prompts and outputs: alone, with the shipped term lists and classifier; with a "
                        "FILE, as its 'moderation:' section says (a --config with such a section turns it on too)")
    p.add_argument("--engine-stand-in", type=int, default=0, metavar="N",
                   help="benchmarking the gateway only: load no model, answer every request at once with N tokens")
    p.add_argument("--log-level", default="info")
    p.set_defaults(handler=_serve)


# flags that describe the one model served without --config
_MODEL_FLAGS = ("model", "served_model_name", "device", "dtype", "quantization", "kv_cache_dtype", "kv_cache_memory",
                "block_size", "max_num_seqs", "max_num_batched_tokens", "max_model_len", "replicas", "threads",
                "no_prefix_caching", "enforce_eager", "price_input", "price_cached_input", "price_output")


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    from tokenmill.modelstore.store import resolve_model

    if args.config:
        given = [f"--{flag.replace('_', '-')}" for flag in _MODEL_FLAGS if getattr(args, flag) is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} cannot be combined with --config: set them per model in "
                              f"{args.config} instead")
        models = load_catalog(args.config)
    else:
        models = [_model_from_flags(args)]
    settings = ServeSettings(models, host=args.host, port=args.port, api_key=args.api_key,
                             max_queued_requests=args.max_queued_requests, log_level=args.log_level,
                             admin_key=args.admin_key, database_url=args.database, ledger=not args.no_ledger,
                             redis_url=args.redis_url, engine_stand_in_tokens=args.engine_stand_in,
                             moderation=_moderation(args))
    settings.validate()  # before the model store: refused settings must not pull or load anything
    for entry in settings.models:
        if entry.self_hosted:
            resolved = resolve_model(entry.source)
            entry.path = str(resolved.path)
            if not args.config and args.served_model_name is None:
                entry.name = resolved.name
    return settings


def _moderation(args: argparse.Namespace) -> ModerationConfig | None:
    """The moderation config --moderation names, or the --config catalogue's 'moderation:' section; None: off."""
    if args.moderation == BUILTIN:
        return ModerationConfig()
    if args.moderation:
        return load_moderation_config(args.moderation)
    if args.config and has_moderation_section(args.config):
        return load_moderation_config(args.config)
    return None


def _model_from_flags(args: argparse.Namespace) -> ModelEntry:
    """The one model the flags describe, with the catalogue's defaults for what they leave out."""
    entry = ModelEntry(name=args.served_model_name or "", source=args.model or DEFAULT_MODEL)
    for flag, attribute in (("device", "device"), ("dtype", "dtype"), ("quantization", "quantization"),
                            ("kv_cache_dtype", "kv_cache_dtype"), ("block_size", "block_size"),
                            ("max_num_seqs", "max_num_seqs"), ("max_num_batched_tokens", "max_num_batched_tokens"),
                            ("max_model_len", "context_length"), ("replicas", "replicas"), ("threads", "threads")):
        if getattr(args, flag) is not None:
            setattr(entry, attribute, getattr(args, flag))
    if args.kv_cache_memory is not None:
        entry.kv_cache_bytes = parse_bytes(args.kv_cache_memory)
    entry.prefix_caching = not args.no_prefix_caching
    entry.cuda_graphs = not args.enforce_eager
    entry.prices = Prices.parse(args.price_input or "0", args.price_cached_input, args.price_output or "0")
    return entry


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
    names = ", ".join(f"'{entry.name}'" for entry in settings.models)
    print(f"tokenmill: serving {names} on http://{settings.host}:{settings.port}/v1", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, timeout_graceful_shutdown=5)
    return 0
