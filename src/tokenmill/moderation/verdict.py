"""What moderation found in one text: the OpenAI moderation result, plus term matches with offsets."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenmill.moderation.categories import CATEGORIES


@dataclass(frozen=True, slots=True)
class TermHit:
    """A lexicon match: the term as its list writes it, the list's category, and [start, end) in the text."""

    term: str
    category: str
    start: int
    end: int

    def as_dict(self) -> dict:
        return {"term": self.term, "category": self.category, "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class Verdict:
    categories: dict[str, bool]
    scores: dict[str, float]
    matches: tuple[TermHit, ...] = ()
    scored: tuple[str, ...] = ()  # the categories the classifier's scores flag (the rest: term matches only)

    @property
    def flagged(self) -> bool:
        return any(self.categories.values())

    @property
    def flagged_categories(self) -> list[str]:
        return [c for c in CATEGORIES if self.categories.get(c)]

    def refuses(self, action: str) -> bool:
        """Whether a prompt with this verdict is refused: under 'mask' only the classifier refuses (terms are
        masked where they matter, in the output)."""
        return self.flagged if action == "block" else bool(self.scored)

    @property
    def reason(self) -> str:
        """One line for an error message: the categories and, where a term matched, the first term."""
        reason = ", ".join(self.flagged_categories) or "none"
        if self.matches:
            reason += f" (term {self.matches[0].term!r})"
        return reason

    def as_dict(self) -> dict:
        """One entry of /v1/moderations' results[] (and of `tokenmill moderate`'s output)."""
        return {"flagged": self.flagged, "categories": {c: bool(self.categories.get(c)) for c in CATEGORIES},
                "category_scores": {c: round(self.scores.get(c, 0.0), 6) for c in CATEGORIES},
                "matches": [m.as_dict() for m in self.matches]}


def clear_verdict() -> Verdict:
    return Verdict({c: False for c in CATEGORIES}, {c: 0.0 for c in CATEGORIES})


@dataclass(slots=True)
class VerdictBuilder:
    """Folds term hits and semantic scores (maxima over windows) into one verdict."""

    thresholds: dict[str, float]
    checked: frozenset[str]
    scores: dict[str, float] = field(default_factory=lambda: {c: 0.0 for c in CATEGORIES})
    matches: list[TermHit] = field(default_factory=list)
    semantic: bool = False

    def add_scores(self, scores: dict[str, float]) -> None:
        self.semantic = True
        for category in self.checked:
            self.scores[category] = max(self.scores[category], float(scores.get(category, 0.0)))

    def add_matches(self, hits: list[TermHit]) -> None:
        self.matches.extend(h for h in hits if h.category in self.checked)

    def verdict(self) -> Verdict:
        hit = {m.category for m in self.matches}
        scored = tuple(c for c in CATEGORIES if c in self.checked and self.semantic and self.scores[c] >= self.thresholds[c])
        categories = {c: c in scored or (c in self.checked and c in hit) for c in CATEGORIES}
        return Verdict(categories, dict(self.scores), tuple(sorted(self.matches, key=lambda m: m.start)), scored)

    @property
    def scores_flag(self) -> bool:
        return self.semantic and any(self.scores[c] >= self.thresholds[c] for c in self.checked)
