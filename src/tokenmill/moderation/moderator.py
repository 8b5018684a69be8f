"""The moderation stage's engine room: term lists and the classifier, applied under each tenant's policy.

One Moderator per server. It builds one compiled lexicon per combination of lists a policy names
(rebuilt by reload(), which the admin API calls after the files changed; a file that fails to load
leaves the old lexicons in place), loads the semantic classifier once, and runs the classifier on
a thread of its own so the event loop never waits on it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tokenmill.moderation.config import BUILTIN, ModerationConfig, Policy
from tokenmill.moderation.lexicon import Lexicon, Match, TermList, default_allow, default_lists, strict_lists
from tokenmill.moderation.categories import CATEGORIES
from tokenmill.moderation.verdict import TermHit, Verdict, VerdictBuilder

# the category each shipped term list (moderation/data/terms/*.txt) flags
BUILTIN_CATEGORIES = {"abuse": "harassment", "drugs": "illicit", "extremism": "violence", "fraud": "illicit",
                      "violence": "violence", "weapons": "illicit"}

@dataclass(frozen=True, slots=True)
class Screen:
    """A policy made ready to apply: its compiled lexicon, thresholds and which categories it checks."""

    policy: Policy
    lexicon: Lexicon | None
    categories: dict[str, str]  # term list name -> category
    thresholds: dict[str, float]
    checked: frozenset[str]

    def builder(self) -> VerdictBuilder:
        return VerdictBuilder(self.thresholds, self.checked)

    def hits(self, text: str) -> list[TermHit]:
        return self.term_hits(self.lexicon.find(text)) if self.lexicon is not None else []

    def term_hits(self, matches: Iterable[Match]) -> list[TermHit]:
        """Lexicon matches as verdict hits, each with the category of its list."""
        return [TermHit(m.term, self.categories[m.list_name], m.start, m.end) for m in matches]


class Moderator:
    def __init__(self, config: ModerationConfig, semantic: bool = True) -> None:
        self.config = config
        self.use_semantic = semantic
        self._classifier = None
        self._classifier_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moderation")
        self._screens: dict[str | None, Screen] = {}
        self.reload()

    # -- set-up ---------------------------------------------------------------------------------------

    def reload(self) -> dict[str, int]:
        """Read every term list again and rebuild the lexicons; returns terms per list. Raises (keeping the
        lexicons in use) when a file cannot be read or holds a bad term."""
        loaded: dict[str, list[TermList]] = {}
        categories: dict[str, str] = {}
        for source in self.config.lists.values():
            if source.path is not None:
                parts = [TermList.from_file(source.path, source.name)]
            else:
                parts = default_lists() if source.builtin == BUILTIN else strict_lists()
            for part in parts:
                loaded.setdefault(source.name, []).append(part)
                categories[part.name] = source.category or BUILTIN_CATEGORIES[part.name]
        allow = [*default_allow().terms, *(t for path in self.config.allowlists for t in TermList.from_file(path).terms)]
        from tokenmill.moderation.semantic import DEFAULT_THRESHOLDS, WEIGHTS, load_weights

        trained = load_weights(WEIGHTS).thresholds if self.use_semantic else DEFAULT_THRESHOLDS
        compiled: dict[tuple[str, ...], Lexicon] = {}
        screens: dict[str | None, Screen] = {}
        for tenant, policy in [(None, self.config.default), *self.config.tenants.items()]:
            key = tuple(sorted(policy.lists))
            if key not in compiled:
                compiled[key] = Lexicon([part for name in key for part in loaded[name]], allow)
            screens[tenant] = Screen(policy, compiled[key] if key else None, categories,
                                     {**trained, **policy.thresholds}, frozenset(CATEGORIES) - policy.disabled)
        self._screens = screens
        return {name: sum(len(p.terms) for p in parts) for name, parts in loaded.items()}

    def load(self) -> None:
        """Load the classifier now (the server does this at start, so no request waits for it)."""
        if self.use_semantic:
            self._semantic()

    def _semantic(self):
        with self._classifier_lock:
            if self._classifier is None:
                from tokenmill.moderation.semantic import SemanticClassifier

                self._classifier = SemanticClassifier()
            return self._classifier

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- checks ---------------------------------------------------------------------------------------

    def screen(self, tenant_name: str | None) -> Screen:
        return self._screens.get(tenant_name, self._screens[None])

    def scores(self, texts: list[str]) -> list[dict[str, float]]:
        return self._semantic().score(texts)

    def classifies(self, screen: Screen) -> bool:
        """Whether the classifier applies under this screen's policy (and on this server)."""
        return self.use_semantic and screen.policy.semantic

    def check(self, text: str, screen: Screen) -> Verdict:
        """Terms and, where the policy wants it, the classifier (which reads a long text sentence by sentence)."""
        scores = self.scores([text])[0] if self.classifies(screen) and text.strip() else None
        return self._verdict(text, screen, scores)

    async def check_async(self, text: str, screen: Screen) -> Verdict:
        """check() with the classifier on the moderation thread."""
        scores = (await self.score_async([text]))[0] if self.classifies(screen) and text.strip() else None
        return self._verdict(text, screen, scores)

    @staticmethod
    def _verdict(text: str, screen: Screen, scores: dict[str, float] | None) -> Verdict:
        builder = screen.builder()
        builder.add_matches(screen.hits(text))
        if scores is not None:
            builder.add_scores(scores)
        return builder.verdict()

    def score_async(self, texts: list[str]) -> asyncio.Future:
        return asyncio.get_running_loop().run_in_executor(self._executor, self.scores, texts)
