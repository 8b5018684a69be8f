"""The routing policy: the cheapest model good enough, within its context, not overloaded; fallbacks in order."""

from __future__ import annotations

import pytest

from tokenmill.catalog.entry import ModelEntry
from tokenmill.metering.pricing import Prices
from tokenmill.routing.policy import Candidate, NoRoute, choose


def model(name: str, price: str, **quality: float) -> ModelEntry:
    return ModelEntry(name=name, source="x", prices=Prices.parse(price, None, price), quality=quality)


SMALL = model("small", "0.05", chat=0.6, code=0.1, general=0.4)
CODER = model("coder", "0.30", chat=0.4, code=0.8, general=0.5)
BIG = model("big", "2.00", chat=0.9, code=0.9, general=0.9)


def candidates(*overloaded: str, context: int = 4096) -> list[Candidate]:
    return [Candidate(m, context, m.name in overloaded) for m in (SMALL, CODER, BIG)]


def names(route) -> list[str]:
    return [m.name for m in route.ranked]


def test_auto_takes_the_cheapest_model_that_meets_the_floor_for_the_scenario():
    assert names(choose("auto", "chat", candidates(), 100, 100)) == ["small", "big", "coder"]
    code = choose("auto", "code", candidates(), 100, 100)
    assert names(code) == ["coder", "big", "small"]
    assert code.reason == "cheapest with code quality >= 0.5" and code.scenario == "code"
    assert names(choose("auto", "general", candidates(), 100, 100, floor=0.85)) == ["big", "coder", "small"]


def test_when_no_model_meets_the_floor_the_best_comes_first():
    route = choose("auto", "math", candidates(), 10, 10)  # nobody has a math score
    assert route.reason.startswith("no model reaches math quality")
    assert names(route)[0] == "small"  # all 0.0: then the cheapest


def test_best_and_cheap_routes():
    assert names(choose("auto:best", "code", candidates(), 10, 10))[0] == "big"
    assert names(choose("auto:cheap", "code", candidates(), 10, 10))[0] == "small"


def test_overloaded_models_are_kept_as_last_resort():
    route = choose("auto", "code", candidates("coder"), 100, 100)
    assert names(route) == ["big", "small", "coder"]
    assert "skipped overloaded coder" in route.reason
    everyone = choose("auto", "code", candidates("small", "coder", "big"), 100, 100)
    assert names(everyone) == ["coder", "big", "small"] and "every candidate is overloaded" in everyone.reason


def test_models_whose_context_cannot_hold_the_request_are_not_candidates():
    short = [Candidate(SMALL, 512), Candidate(CODER, 8192), Candidate(BIG, 2048)]
    assert names(choose("auto", "chat", short, 900, 200)) == ["big", "coder"]  # small cannot hold it
    with pytest.raises(NoRoute, match="no model can hold 9000 prompt tokens plus 200.*8192"):
        choose("auto", "chat", short, 9000, 200)


def test_an_unknown_route_is_refused():
    with pytest.raises(NoRoute, match="unknown route 'auto:fast'"):
        choose("auto:fast", "chat", candidates(), 1, 1)
