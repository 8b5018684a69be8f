"""Read the catalogue from `tokenmill.yaml`, refusing anything it cannot serve with a message saying what to fix.

```yaml
models:
  - name: smollm2                      # what clients put in "model"
    aliases: [small, default]
    source: smollm2-135m-instruct      # built-in model, .gguf file or HF directory
    replicas: 1
    quantization: w8a8
    kv_cache_memory: 512MiB
    prices: {input: 0.05, cached_input: 0.02, output: 0.10}   # per million tokens
    quality: {chat: 0.4, general: 0.3, code: 0.1, math: 0.1, translation: 0.2}
  - name: gpt-upstream
    upstream: {base_url: "https://api.example.com/v1", model: some-model, api_key_env: EXAMPLE_API_KEY}
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tokenmill.catalog.entry import SCENARIOS, ModelEntry, Upstream
from tokenmill.engine.config import QUANTIZATIONS
from tokenmill.metering.pricing import Prices
from tokenmill.units import parse_bytes

RESERVED_NAMES = re.compile(r"^auto(:.*)?$")  # "auto" and "auto:*" belong to the router
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
_MODEL_KEYS = {"name", "aliases", "source", "upstream", "replicas", "device", "dtype", "quantization",
               "kv_cache_dtype", "kv_cache_memory", "block_size", "context_length", "max_num_seqs", "max_num_batched_tokens", "threads",
               "prefix_caching", "cuda_graphs", "prices", "quality"}
_UPSTREAM_KEYS = {"base_url", "model", "api_key_env"}
_PRICE_KEYS = {"input", "cached_input", "output"}


class CatalogError(ValueError):
    pass


def load_catalog(path: Path | str) -> list[ModelEntry]:
    """The models a YAML file declares, checked; raises CatalogError naming the file, model and key at fault."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"cannot read the config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return parse_catalog(document)
    except CatalogError as exc:
        raise CatalogError(f"{path}: {exc}") from exc


def parse_catalog(document: Any) -> list[ModelEntry]:
    if not isinstance(document, dict) or not isinstance(document.get("models"), list) or not document["models"]:
        raise CatalogError("the config needs a 'models:' list with at least one model")
    unknown = set(document) - {"models", "moderation"}  # moderation: read by moderation/config.py
    if unknown:
        raise CatalogError(f"unknown top-level keys {sorted(unknown)}; the config has 'models:' and 'moderation:'")
    entries = [_entry(item, i) for i, item in enumerate(document["models"])]
    owner: dict[str, str] = {}
    for entry in entries:
        for name in entry.names:
            if name in owner:
                raise CatalogError(f"the name {name!r} is used twice (by models {owner[name]!r} and {entry.name!r}); "
                                   "every name and alias must be unique")
            owner[name] = entry.name
    return entries


def _entry(item: Any, index: int) -> ModelEntry:
    if not isinstance(item, dict):
        raise CatalogError(f"models[{index}] must be a mapping with at least 'name' and 'source' or 'upstream'")
    where = f"model {item.get('name')!r}" if isinstance(item.get("name"), str) else f"models[{index}]"
    unknown = set(item) - _MODEL_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}; known keys are {sorted(_MODEL_KEYS)}")
    name = _name(item.get("name"), f"{where}: name")
    aliases = item.get("aliases", [])
    if not isinstance(aliases, list):
        raise CatalogError(f"{where}: aliases must be a list of names")
    has_source, has_upstream = "source" in item, "upstream" in item
    if has_source == has_upstream:
        raise CatalogError(f"{where}: give exactly one of 'source' (a built-in model, .gguf file or HF directory) "
                           "or 'upstream' (an OpenAI-compatible server)")
    entry = ModelEntry(name=name, aliases=tuple(_name(a, f"{where}: alias") for a in aliases))
    if has_source:
        entry.source = _text(item["source"], f"{where}: source")
    else:
        entry.upstream = _upstream(item["upstream"], where)
    entry.replicas = _int(item, "replicas", entry.replicas, where, minimum=1)
    entry.device = _text(item.get("device", entry.device), f"{where}: device")
    entry.dtype = _text(item.get("dtype", entry.dtype), f"{where}: dtype")
    entry.quantization = _text(item.get("quantization", entry.quantization), f"{where}: quantization")
    if entry.quantization not in QUANTIZATIONS:
        raise CatalogError(f"{where}: quantization {entry.quantization!r} is not one of {', '.join(QUANTIZATIONS)}")
    if "kv_cache_memory" in item:
        try:
            entry.kv_cache_bytes = parse_bytes(str(item["kv_cache_memory"]))
        except ValueError as exc:
            raise CatalogError(f"{where}: kv_cache_memory: {exc}") from None
    entry.kv_cache_dtype = _text(item.get("kv_cache_dtype", entry.kv_cache_dtype), f"{where}: kv_cache_dtype")
    entry.block_size = _int(item, "block_size", entry.block_size, where, minimum=1)
    entry.context_length = _int(item, "context_length", entry.context_length, where, minimum=0)
    entry.max_num_seqs = _int(item, "max_num_seqs", entry.max_num_seqs, where, minimum=1)
    entry.max_num_batched_tokens = _int(item, "max_num_batched_tokens", entry.max_num_batched_tokens, where, minimum=1)
    entry.threads = _int(item, "threads", entry.threads, where, minimum=0)
    entry.prefix_caching = _bool(item, "prefix_caching", entry.prefix_caching, where)
    entry.cuda_graphs = _bool(item, "cuda_graphs", entry.cuda_graphs, where)
    entry.prices = _prices(item.get("prices", {}), where)
    entry.quality = _quality(item.get("quality", {}), where)
    return entry


def _bool(item: dict, key: str, default: bool, where: str) -> bool:
    value = item.get(key, default)
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: {key} must be true or false")
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise CatalogError(f"{what} {value!r} must be a name of letters, digits and ._:/@+- (at most 200)")
    if RESERVED_NAMES.match(value):
        raise CatalogError(f"{what} {value!r} is reserved for routing ('auto', 'auto:best', ...); choose another")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def _int(item: dict, key: str, default: int, where: str, minimum: int) -> int:
    value = item.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CatalogError(f"{where}: {key} must be a whole number of at least {minimum}, got {value!r}")
    return value


def _upstream(value: Any, where: str) -> Upstream:
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: upstream must be a mapping with base_url and model")
    unknown = set(value) - _UPSTREAM_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown upstream keys {sorted(unknown)}; known: {sorted(_UPSTREAM_KEYS)}")
    base_url = _text(value.get("base_url"), f"{where}: upstream.base_url")
    if not base_url.startswith(("http://", "https://")):
        raise CatalogError(f"{where}: upstream.base_url {base_url!r} must start with http:// or https://")
    api_key_env = value.get("api_key_env", "")
    if not isinstance(api_key_env, str):
        raise CatalogError(f"{where}: upstream.api_key_env must be the name of an environment variable")
    return Upstream(base_url.rstrip("/"), _text(value.get("model"), f"{where}: upstream.model"), api_key_env)


def _prices(value: Any, where: str) -> Prices:
    if not isinstance(value, dict) or set(value) - _PRICE_KEYS:
        raise CatalogError(f"{where}: prices must be a mapping of {sorted(_PRICE_KEYS)} (per million tokens)")
    try:
        cached = value.get("cached_input")
        return Prices.parse(str(value.get("input", 0)), None if cached is None else str(cached),
                            str(value.get("output", 0)))
    except ValueError as exc:
        raise CatalogError(f"{where}: prices: {exc}") from None


def _quality(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: quality must map scenarios ({', '.join(SCENARIOS)}) to scores from 0 to 1")
    quality = {}
    for scenario, score in value.items():
        if scenario not in SCENARIOS:
            raise CatalogError(f"{where}: quality names an unknown scenario {scenario!r}; use {', '.join(SCENARIOS)}")
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0 <= score <= 1:
            raise CatalogError(f"{where}: quality.{scenario} must be a number from 0 to 1, got {score!r}")
        quality[scenario] = float(score)
    return quality
