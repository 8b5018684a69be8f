"""The models this server serves: each self-hosted one with its tokenizer, engine replicas and pipeline,
and those that another OpenAI-compatible server answers for us (upstream.py).

Requests name a model or one of its aliases; `resolve` finds it or answers 404 with the names
that exist. Every self-hosted model runs in engine processes of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

from tokenmill.api.errors import APIError
from tokenmill.api.metrics import Metrics
from tokenmill.catalog.entry import ModelEntry
from tokenmill.engine.client import EngineClient
from tokenmill.engine.stand_in import StandInEngine
from tokenmill.engine.tokenizer import Tokenizer, load_tokenizer
from tokenmill.gateway.accounting import Accounting
from tokenmill.gateway.pipeline import Pipeline
from tokenmill.gateway.upstream import UpstreamModel


@dataclass(slots=True)
class ServedModel:
    entry: ModelEntry
    tokenizer: Tokenizer
    engine: EngineClient | StandInEngine
    pipeline: Pipeline

    @property
    def name(self) -> str:
        return self.entry.name

    def card(self, created: int) -> dict:
        """The model as /v1/models lists it."""
        return {"id": self.name, "object": "model", "created": created, "owned_by": "tokenmill",
                "aliases": list(self.entry.aliases), "max_model_len": self.pipeline.max_model_len}


class ServedModels:
    def __init__(self, entries: list[ModelEntry], metrics: Metrics, max_queued: int, accounting: Accounting | None,
                 stand_in_tokens: int = 0) -> None:
        self._all: list[ServedModel | UpstreamModel] = []  # in catalogue order
        for entry in entries:
            if entry.self_hosted:
                config = entry.engine_config()
                engine = (StandInEngine(config, stand_in_tokens) if stand_in_tokens
                          else EngineClient(config, entry.replicas))
                tokenizer = load_tokenizer(entry.path)
                self._all.append(ServedModel(entry, tokenizer, engine, Pipeline(engine, tokenizer, metrics, max_queued,
                                                                                accounting, model_name=entry.name)))
            else:
                self._all.append(UpstreamModel(entry, metrics))
        self._models = [m for m in self._all if isinstance(m, ServedModel)]
        self._upstream = [m for m in self._all if isinstance(m, UpstreamModel)]
        self._by_name = {name: model for model in self._all for name in model.entry.names}

    def __iter__(self) -> Iterator[ServedModel]:
        """The self-hosted models."""
        return iter(self._models)

    def all(self) -> list[ServedModel | UpstreamModel]:
        """Every model, self-hosted and upstream, in catalogue order."""
        return self._all

    def cards(self, created: int) -> list[dict]:
        """Every model, in catalogue order, as /v1/models lists it."""
        return [model.card(created) for model in self.all()]

    def resolve(self, name: str) -> ServedModel | UpstreamModel:
        """The model a request names (by name or alias); 404 naming the models there are."""
        model = self._by_name.get(name)
        if model is None:
            known = ", ".join(f"'{m.name}'" for m in self._all)
            raise APIError(404, f"the model '{name}' does not exist; this server serves {known} (see /v1/models)",
                           param="model", code="model_not_found")
        return model

    @property
    def dead_reason(self) -> str | None:
        """Why a model's engine is down, if one is."""
        for model in self._models:
            if model.engine.dead_reason:
                return f"{model.name}: {model.engine.dead_reason}"
        return None

    async def start(self) -> None:
        """Start every model's engines together (each loads its own weights)."""
        await asyncio.gather(*(model.engine.start() for model in self._models))

    async def stop(self) -> None:
        results = await asyncio.gather(*(model.engine.shutdown() for model in self._models),
                                       *(model.close() for model in self._upstream), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
