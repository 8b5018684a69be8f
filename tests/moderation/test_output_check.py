"""Moderating an output piece by piece (the gateway's moderate-stream stage), with the real lexicon."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tokenmill.moderation.config import parse_moderation
from tokenmill.moderation.moderator import Moderator
from tokenmill.moderation.output import OutputCheck

STORY = ("Once upon a time, in the year 1850, there was a lighthouse keeper named Jameson. He was a brave and "
         "hardworking man who had dedicated his life to the light.")


@pytest.fixture(scope="module")
def moderator(tmp_path_factory) -> Moderator:
    folder: Path = tmp_path_factory.mktemp("lists")
    (folder / "story.txt").write_text("lighthouse keeper\n", encoding="utf-8")
    config = parse_moderation({"lists": {"story": {"path": "story.txt", "category": "illicit"}},
                               "default": {"lists": ["global", "story"]},
                               "tenants": {"masked": {"action": "mask"}}}, folder)
    return Moderator(config, semantic=False)


def _run(check: OutputCheck, pieces: list[str]) -> tuple[str, str | None]:
    """(text released, category that cut it or None), feeding pieces as a generation would."""

    async def go() -> tuple[str, str | None]:
        out = []
        for i, piece in enumerate(pieces):
            screened = await check.release(piece, last=i == len(pieces) - 1)
            out.append(screened.text)
            if screened.blocked is not None:
                return "".join(out), screened.blocked.flagged_categories[0]
        return "".join(out), None

    return asyncio.run(go())


def _split(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 30)))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


def test_a_term_over_several_pieces_cuts_the_output_before_any_of_it(moderator):
    text, category = _run(OutputCheck(moderator, moderator.screen(None)), ["Once upon a time, there was a light",
                                                                          "house kee", "per named Jameson."])
    assert category == "illicit"
    assert text == "Once upon a time, there was a "


def test_how_the_output_is_split_never_changes_the_verdict(moderator):
    rng = random.Random(7)
    whole = _run(OutputCheck(moderator, moderator.screen(None)), [STORY])
    assert whole == (STORY[:STORY.index("lighthouse")], "illicit")
    for _ in range(20):
        text, category = _run(OutputCheck(moderator, moderator.screen(None)), _split(STORY, rng))
        # cut pieces may end the release a little earlier (text still held when the term completed)
        assert category == "illicit" and whole[0].startswith(text)
    masked = _run(OutputCheck(moderator, moderator.screen("masked")), [STORY])
    assert masked == (STORY.replace("lighthouse keeper", "*" * len("lighthouse keeper")), None)
    for _ in range(20):
        assert _run(OutputCheck(moderator, moderator.screen("masked")), _split(STORY, rng)) == masked


def test_clean_output_passes_unchanged(moderator):
    text = "The keeper of the light house was kind. 他每天晚上都点亮灯塔。"
    assert _run(OutputCheck(moderator, moderator.screen(None)), _split(text, random.Random(1))) == (text, None)
