"""Route a request for "auto" (or "auto:best", "auto:cheap"): classify its scenario, rank the models.

The classifier runs in a worker thread (about 2 ms), so the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tokenmill.catalog.entry import ModelEntry
from tokenmill.gateway.models import ServedModel, ServedModels
from tokenmill.gateway.upstream import UpstreamModel
from tokenmill.routing.classifier import Classification, ScenarioClassifier
from tokenmill.routing.policy import DEFAULT_FLOOR, ROUTES, Candidate, Route, choose
from tokenmill.routing.request_text import RequestText, request_text

log = logging.getLogger("tokenmill.routing")

UPSTREAM_CONTEXT = 128_000  # assumed context of an upstream model whose catalogue entry names none
OFFLINE_CONTEXT = 8192  # assumed for a self-hosted model when no engine is running to say
ROUTING_MAX_TOKENS = 256  # completion length assumed for choosing when the request names no max_tokens


class RoutingUnavailable(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class RoutedRequest:
    route: Route
    classification: Classification

    def header(self, model: str, failed: Sequence[str] = ()) -> str:
        """x-tokenmill-route: what was decided and why (and which choices failed before this one)."""
        reason = self.route.reason + (f", fell back from {', '.join(failed)}" if failed else "")
        return (f"scenario={self.route.scenario}; confidence={self.classification.confidence:.2f}; "
                f"model={model}; reason={reason}")


class Router:
    def __init__(self, models: ServedModels, classifier: ScenarioClassifier | None = None,
                 floor: float = DEFAULT_FLOOR) -> None:
        self.models = models
        self.classifier = classifier
        self.floor = floor
        self.unavailable: str | None = None  # why "auto" cannot be served, if it cannot

    @staticmethod
    def handles(model_name: str) -> bool:
        return model_name in ROUTES

    def load(self) -> None:
        """Load the classifier (about a second; called at start-up, off the event loop)."""
        if self.classifier is None:
            try:
                self.classifier = ScenarioClassifier()
                self.classifier.classify(RequestText("warm up"))  # the embedding model loads on first use
            except (OSError, ImportError) as exc:
                self.unavailable = f"the scenario classifier could not be loaded ({exc})"
                log.warning("routing with 'auto' is off: %s", self.unavailable)

    async def route(self, route: str, prompt_tokens: int, max_tokens: int, messages: Sequence[dict] | None = None,
                    prompt: str | None = None, floor: float | None = None) -> RoutedRequest:
        """Classify and rank; floor is the tenant's own quality floor (None: the server's)."""
        if self.classifier is None and self.unavailable is None:
            await asyncio.to_thread(self.load)
        if self.classifier is None:
            raise RoutingUnavailable(f"model '{route}' is not available on this server: {self.unavailable}")
        classification = await asyncio.to_thread(self.classifier.classify, request_text(messages, prompt))
        ranked = choose(route, classification.scenario, self._candidates(), prompt_tokens, max_tokens,
                        self.floor if floor is None else floor)
        return RoutedRequest(ranked, classification)

    def _candidates(self) -> list[Candidate]:
        """The catalogue as it stands now: each engine's real context, load and health."""
        out = []
        for model in self.models.all():
            if isinstance(model, UpstreamModel):
                out.append(Candidate(model.entry, model.entry.context_length or UPSTREAM_CONTEXT))
            else:
                assert isinstance(model, ServedModel)
                out.append(Candidate(model.entry, model.pipeline.max_model_len,
                                     overloaded=model.pipeline.overloaded or bool(model.engine.dead_reason)))
        return out


def catalogue_candidates(entries: Sequence[ModelEntry]) -> list[Candidate]:
    """The catalogue's models as candidates when no server runs (`tokenmill route`, the cost benchmark)."""
    return [Candidate(e, e.context_length or (OFFLINE_CONTEXT if e.self_hosted else UPSTREAM_CONTEXT)) for e in entries]
