"""Which model answers a request for "auto": the cheapest one good enough for its scenario.

A model is a candidate when its context holds the prompt plus max_tokens. Among candidates that
are not overloaded, those whose quality score for the scenario meets the floor are ranked by the
request's estimated cost (then by quality); if none meets the floor, the best quality comes first.
`auto:best` ranks by quality, `auto:cheap` by cost alone. The ranking is the fallback order: when a
model fails or is overloaded before any token was sent, the next one is tried.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenmill.catalog.entry import ModelEntry

ROUTES = ("auto", "auto:best", "auto:cheap")
DEFAULT_FLOOR = 0.5  # quality a model needs for a scenario under plain "auto", unless the tenant sets its own


@dataclass(frozen=True, slots=True)
class Candidate:
    entry: ModelEntry
    max_model_len: int
    overloaded: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    scenario: str
    ranked: tuple[ModelEntry, ...]  # first choice, then the fallbacks in order
    reason: str

    @property
    def model(self) -> ModelEntry:
        return self.ranked[0]


class NoRoute(ValueError):
    pass


def estimated_cost_micros(entry: ModelEntry, prompt_tokens: int, max_tokens: int) -> float:
    """What the request would cost on this model at most (all of max_tokens generated)."""
    p = entry.prices
    return (prompt_tokens * p.input_micros_per_m + max_tokens * p.output_micros_per_m) / 1_000_000


def choose(route: str, scenario: str, candidates: list[Candidate], prompt_tokens: int, max_tokens: int,
           floor: float = DEFAULT_FLOOR) -> Route:
    """Rank the models for this request; raises NoRoute when no model's context can hold it."""
    if route not in ROUTES:
        raise NoRoute(f"unknown route {route!r}; use one of {', '.join(ROUTES)}")
    fits = [c for c in candidates if prompt_tokens + max_tokens <= c.max_model_len]
    if not fits:
        longest = max((c.max_model_len for c in candidates), default=0)
        raise NoRoute(f"no model can hold {prompt_tokens} prompt tokens plus {max_tokens} to generate "
                      f"(the longest context here is {longest} tokens)")

    def quality(c: Candidate) -> float:
        return c.entry.quality.get(scenario, 0.0)

    def cost(c: Candidate) -> float:
        return estimated_cost_micros(c.entry, prompt_tokens, max_tokens)

    if route == "auto:best":
        ranked = sorted(fits, key=lambda c: (-quality(c), cost(c)))
        why = f"best quality for {scenario}"
    elif route == "auto:cheap":
        ranked = sorted(fits, key=lambda c: (cost(c), -quality(c)))
        why = "cheapest"
    else:
        good = sorted((c for c in fits if quality(c) >= floor), key=lambda c: (cost(c), -quality(c)))
        rest = sorted((c for c in fits if quality(c) < floor), key=lambda c: (-quality(c), cost(c)))
        ranked = good + rest
        why = (f"cheapest with {scenario} quality >= {floor:g}" if good
               else f"no model reaches {scenario} quality {floor:g}, best available")
    # overloaded models go last, in the same order: used only when every other one fails too
    ranked = [c for c in ranked if not c.overloaded] + [c for c in ranked if c.overloaded]
    if ranked[0].overloaded:
        why += ", every candidate is overloaded"
    elif any(c.overloaded for c in fits):
        why += ", skipped overloaded " + ", ".join(c.entry.name for c in fits if c.overloaded)
    return Route(scenario, tuple(c.entry for c in ranked), why)
