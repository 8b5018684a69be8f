"""The moderation section of the config: what it accepts, and errors that name what to fix."""

from pathlib import Path

import pytest

from tokenmill.catalog.load import load_catalog
from tokenmill.moderation.config import (ListSource, ModerationConfigError, Policy, has_moderation_section,
                                         load_moderation_config, parse_moderation)


def test_a_missing_section_means_the_shipped_lists_and_classifier(tmp_path: Path) -> None:
    config = parse_moderation(None, tmp_path)
    assert config.lists == {"global": ListSource("global", None, None)}
    assert config.default == Policy()
    assert config.policy_for("anyone") == config.default


def test_tenants_inherit_what_they_leave_out_of_the_default(tmp_path: Path) -> None:
    config = parse_moderation({
        "lists": {"brands": {"path": "brands.txt", "category": "harassment"}},
        "default": {"action": "block", "thresholds": {"violence": 0.8}, "disabled": ["sexual"]},
        "tenants": {"acme": {"lists": ["global", "brands"], "action": "mask"}},
    }, tmp_path)
    acme = config.policy_for("acme")
    assert acme.lists == ("global", "brands") and acme.action == "mask"
    assert acme.thresholds == {"violence": 0.8} and acme.disabled == frozenset({"sexual"})
    assert config.policy_for("other").lists == ("global",)
    assert config.lists["brands"].path == tmp_path / "brands.txt"  # relative to the config's folder


@pytest.mark.parametrize(("section", "message"), [
    ({"default": {"action": "hide"}}, "moderation.default.action must be one of block, mask"),
    ({"default": {"thresholds": {"violence": 1.5}}}, "moderation.default.thresholds.violence must be a number in (0, 1]"),
    ({"default": {"thresholds": {"gore": 0.5}}}, "unknown category 'gore'"),
    ({"default": {"lists": ["nope"]}}, "moderation.default.lists names ['nope']"),
    ({"lists": {"mine": "mine.txt"}}, "moderation.lists.mine needs a category"),
    ({"lists": {"mine": {"path": "m.txt", "category": "spam"}}}, "category 'spam' is not one of"),
    ({"tenants": {"acme": {"colour": "red"}}}, "moderation.tenants.acme: unknown keys ['colour']"),
    ({"output_window": 10}, "output_window must be a whole number of characters, at least 400"),
    ({"surprise": 1}, "moderation: unknown keys ['surprise']"),
])
def test_bad_sections_are_refused_naming_the_key(tmp_path: Path, section: dict, message: str) -> None:
    with pytest.raises(ModerationConfigError, match=_escape(message)):
        parse_moderation(section, tmp_path)


def test_the_catalogue_file_carries_a_moderation_section(tmp_path: Path) -> None:
    path = tmp_path / "tokenmill.yaml"
    path.write_text("models:\n  - {name: small, source: smollm2-135m-instruct}\n"
                    "moderation:\n  default: {action: mask}\n", encoding="utf-8")
    assert [m.name for m in load_catalog(path)] == ["small"]
    assert has_moderation_section(path)
    assert load_moderation_config(path).default.action == "mask"
    bare = tmp_path / "bare.yaml"
    bare.write_text("models:\n  - {name: small, source: smollm2-135m-instruct}\n", encoding="utf-8")
    assert not has_moderation_section(bare)
    with pytest.raises(ModerationConfigError, match="has no 'moderation:' section"):
        load_moderation_config(bare)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mod.yaml"
    path.write_text("default: {semantic: maybe}\n", encoding="utf-8")
    with pytest.raises(ModerationConfigError, match=f"{path}: moderation.default.semantic must be true or false"):
        load_moderation_config(path)


def _escape(text: str) -> str:
    import re

    return re.escape(text)
