"""The catalogue file: what it accepts, and the errors that say what to fix."""

from __future__ import annotations

import pytest

from tokenmill.catalog.entry import Upstream
from tokenmill.catalog.load import CatalogError, load_catalog

GOOD = """
models:
  - name: smollm2
    aliases: [small, default]
    source: smollm2-135m-instruct
    replicas: 2
    quantization: w8a8
    kv_cache_memory: 256MiB
    context_length: 1024
    cuda_graphs: false
    prices: {input: 0.05, cached_input: 0.01, output: "0.10"}
    quality: {chat: 0.4, general: 0.3, code: 0.1}
  - name: big-upstream
    upstream: {base_url: "https://api.example.com/v1/", model: some-model, api_key_env: EXAMPLE_KEY}
"""


def write(tmp_path, text: str):
    path = tmp_path / "tokenmill.yaml"
    path.write_text(text)
    return path


def test_a_catalogue_reads_every_field(tmp_path):
    local, upstream = load_catalog(write(tmp_path, GOOD))
    assert local.names == ("smollm2", "small", "default")
    assert local.source == "smollm2-135m-instruct" and local.self_hosted
    assert (local.replicas, local.quantization, local.kv_cache_bytes, local.context_length) == (2, "w8a8", 256 << 20, 1024)
    assert (local.prices.input_micros_per_m, local.prices.cached_input_micros_per_m,
            local.prices.output_micros_per_m) == (50_000, 10_000, 100_000)
    assert local.quality == {"chat": 0.4, "general": 0.3, "code": 0.1}
    assert not local.cuda_graphs and upstream.cuda_graphs  # on by default
    assert upstream.upstream == Upstream("https://api.example.com/v1", "some-model", "EXAMPLE_KEY")
    assert not upstream.self_hosted and upstream.replicas == 1 and upstream.prices.free


@pytest.mark.parametrize(("text", "message"), [
    ("models: []", "'models:' list with at least one model"),
    ("model:\n  - name: a\n    source: x", "'models:' list"),
    ("models:\n  - name: a\n    source: x\nroutes: {}", "unknown top-level keys ['routes']"),
    ("models:\n  - name: a\n    source: x\n    replica: 2", "model 'a': unknown keys ['replica']"),
    ("models:\n  - name: a", "model 'a': give exactly one of 'source'"),
    ("models:\n  - name: a\n    source: x\n    upstream: {base_url: 'http://h/v1', model: m}", "exactly one of"),
    ("models:\n  - name: auto\n    source: x", "reserved for routing"),
    ("models:\n  - name: a\n    aliases: ['auto:cheap']\n    source: x", "reserved for routing"),
    ("models:\n  - name: 'has space'\n    source: x", "must be a name"),
    ("models:\n  - name: a\n    source: x\n  - name: b\n    aliases: [a]\n    source: y", "'a' is used twice"),
    ("models:\n  - name: a\n    source: x\n    quality: {poetry: 0.9}", "unknown scenario 'poetry'"),
    ("models:\n  - name: a\n    source: x\n    quality: {code: 1.5}", "quality.code must be a number from 0 to 1"),
    ("models:\n  - name: a\n    source: x\n    prices: {input: -1}", "prices: input price '-1'"),
    ("models:\n  - name: a\n    source: x\n    prices: {inputs: 1}", "prices must be a mapping"),
    ("models:\n  - name: a\n    source: x\n    kv_cache_memory: lots", "kv_cache_memory: 'lots' is not a size"),
    ("models:\n  - name: a\n    source: x\n    replicas: 0", "replicas must be a whole number of at least 1"),
    ("models:\n  - name: a\n    source: x\n    quantization: int3", "quantization 'int3' is not one of"),
    ("models:\n  - name: a\n    source: x\n    cuda_graphs: 'no'", "model 'a': cuda_graphs must be true or false"),
    ("models:\n  - name: a\n    upstream: {base_url: 'ftp://h', model: m}", "must start with http:// or https://"),
    ("models:\n  - name: a\n    upstream: {base_url: 'http://h/v1'}", "upstream.model must be a non-empty string"),
    ("models: [\n", "is not valid YAML"),
])
def test_a_bad_catalogue_is_refused_naming_the_file_and_what_to_fix(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(CatalogError, match="cannot read the config"):
        load_catalog(tmp_path / "nope.yaml")


def test_the_repositorys_demo_catalogue_loads_and_names_built_in_models():
    from pathlib import Path

    from tokenmill.modelstore.index import INDEX

    entries = load_catalog(Path(__file__).resolve().parents[2] / "tokenmill.yaml")
    assert len(entries) >= 2
    for entry in entries:
        assert entry.source in INDEX, f"{entry.name}: {entry.source} is not a built-in model"
        assert set(entry.quality) == {"code", "math", "translation", "chat", "general"}
        assert not entry.prices.free


def test_the_example_cloud_catalogue_loads_as_upstream_models_with_prices():
    from pathlib import Path

    entries = load_catalog(Path(__file__).resolve().parents[2] / "examples/cloud-catalogue.yaml")
    assert [e.name for e in entries] == ["claude-3-5-sonnet", "gpt-4o", "deepseek-chat", "gpt-4o-mini"]
    for entry in entries:
        assert isinstance(entry.upstream, Upstream) and entry.upstream.api_key_env
        assert not entry.prices.free and "translation" not in entry.quality  # no published score was found
