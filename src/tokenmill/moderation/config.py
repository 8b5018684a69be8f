"""What to moderate and how, per tenant: the `moderation:` section of tokenmill.yaml (or a file of its own).

```yaml
moderation:
  lists:                                   # named term lists: one term a line, '#' comments
    global: builtin                        # the lists shipped in moderation/data/terms/
    strict: builtin-strict                 # shipped, opt-in: everyday words that are also harmless ("kill")
    acme-brands: {path: terms/acme.txt, category: harassment}
  allowlists: [terms/allow.txt]            # phrases never matched (the shipped allowlist always applies)
  output_window: 1000                      # characters of output per semantic check
  default:                                 # every tenant's policy unless it has its own
    lists: [global]
    action: block                          # block: refuse / end the stream; mask: replace term matches with ***
    semantic: true
    thresholds: {violence: 0.7}            # per category; categories left out use the trained defaults
    disabled: []                           # categories not checked
  tenants:                                 # by tenant name; keys left out are the default's
    acme: {lists: [global, acme-brands], action: mask}
```

Relative paths are read from the config file's folder. Semantic verdicts always block: there is
no span to mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from tokenmill.moderation.categories import CATEGORIES

BUILTIN = "builtin"
BUILTIN_STRICT = "builtin-strict"  # the shipped opt-in lists of ambiguous everyday words ("kill", "ass")
ACTIONS = ("block", "mask")
DEFAULT_OUTPUT_WINDOW = 1000
_TOP_KEYS = {"lists", "allowlists", "output_window", "default", "tenants"}
_POLICY_KEYS = {"lists", "action", "semantic", "thresholds", "disabled"}
_LIST_KEYS = {"path", "category"}


class ModerationConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ListSource:
    name: str
    path: Path | None  # None: shipped lists
    category: str | None  # the category its matches flag; None: the shipped lists' own
    builtin: str = BUILTIN  # which shipped lists, where path is None: BUILTIN or BUILTIN_STRICT


@dataclass(frozen=True, slots=True)
class Policy:
    lists: tuple[str, ...] = ("global",)
    action: str = "block"
    semantic: bool = True
    thresholds: dict[str, float] = field(default_factory=dict)  # overrides of the classifier's defaults
    disabled: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ModerationConfig:
    lists: dict[str, ListSource] = field(default_factory=lambda: {"global": ListSource("global", None, None)})
    allowlists: tuple[Path, ...] = ()
    output_window: int = DEFAULT_OUTPUT_WINDOW
    default: Policy = Policy()
    tenants: dict[str, Policy] = field(default_factory=dict)

    def policy_for(self, tenant_name: str | None) -> Policy:
        return self.tenants.get(tenant_name or "", self.default)


def load_moderation_config(path: Path | str) -> ModerationConfig:
    """A file holding a `moderation:` section (tokenmill.yaml) or the section's mapping at the top."""
    path = Path(path)
    document = _read(path)
    if isinstance(document, dict) and "models" in document:
        document = document.get("moderation")
        if document is None:
            raise ModerationConfigError(f"{path} has no 'moderation:' section")
    try:
        return parse_moderation(document, path.parent)
    except ModerationConfigError as exc:
        raise ModerationConfigError(f"{path}: {exc}") from exc


def has_moderation_section(path: Path | str) -> bool:
    document = _read(Path(path))
    return isinstance(document, dict) and document.get("moderation") is not None


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModerationConfigError(f"cannot read the moderation config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ModerationConfigError(f"{path} is not valid YAML: {exc}") from exc


def parse_moderation(document: Any, base: Path) -> ModerationConfig:
    if document is None:
        return ModerationConfig()
    if not isinstance(document, dict):
        raise ModerationConfigError("moderation must be a mapping with lists, default and tenants")
    _known(document, _TOP_KEYS, "moderation")
    lists = {"global": ListSource("global", None, None)}
    raw_lists = document.get("lists", {})
    if not isinstance(raw_lists, dict):
        raise ModerationConfigError("moderation.lists must map list names to 'builtin', a path or {path, category}")
    for name, value in raw_lists.items():
        lists[str(name)] = _list_source(str(name), value, base)
    allowlists = document.get("allowlists", [])
    if not isinstance(allowlists, list) or not all(isinstance(p, str) for p in allowlists):
        raise ModerationConfigError("moderation.allowlists must be a list of file paths")
    window = document.get("output_window", DEFAULT_OUTPUT_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or window < 400:
        raise ModerationConfigError(f"moderation.output_window must be a whole number of characters, at least 400, "
                                    f"got {window!r}")
    default = _policy(document.get("default", {}), Policy(), lists, "moderation.default")
    tenants_raw = document.get("tenants", {})
    if not isinstance(tenants_raw, dict):
        raise ModerationConfigError("moderation.tenants must map tenant names to policies")
    tenants = {str(name): _policy(value, default, lists, f"moderation.tenants.{name}")
               for name, value in tenants_raw.items()}
    return ModerationConfig(lists, tuple(_path(p, base) for p in allowlists), window, default, tenants)


def _list_source(name: str, value: Any, base: Path) -> ListSource:
    where = f"moderation.lists.{name}"
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict):
        raise ModerationConfigError(f"{where} must be 'builtin', 'builtin-strict', a file path or {{path, category}}")
    _known(value, _LIST_KEYS, where)
    path = value.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ModerationConfigError(f"{where}.path must be a file path, 'builtin' or 'builtin-strict'")
    category = value.get("category")
    if category is not None and category not in CATEGORIES:
        raise ModerationConfigError(f"{where}.category {category!r} is not one of {', '.join(CATEGORIES)}")
    if path in (BUILTIN, BUILTIN_STRICT):
        return ListSource(name, None, category, path)
    if category is None:
        raise ModerationConfigError(f"{where} needs a category (one of {', '.join(CATEGORIES)}): the one its "
                                    "matches flag")
    return ListSource(name, _path(path, base), category)


def _policy(value: Any, inherit: Policy, lists: dict[str, ListSource], where: str) -> Policy:
    if not isinstance(value, dict):
        raise ModerationConfigError(f"{where} must be a mapping of {sorted(_POLICY_KEYS)}")
    _known(value, _POLICY_KEYS, where)
    policy = inherit
    if "lists" in value:
        names = value["lists"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModerationConfigError(f"{where}.lists must be a list of list names")
        missing = [n for n in names if n not in lists]
        if missing:
            raise ModerationConfigError(f"{where}.lists names {missing}, which moderation.lists does not declare "
                                        f"(declared: {sorted(lists)})")
        policy = replace(policy, lists=tuple(names))
    if "action" in value:
        if value["action"] not in ACTIONS:
            raise ModerationConfigError(f"{where}.action must be one of {', '.join(ACTIONS)}, got {value['action']!r}")
        policy = replace(policy, action=value["action"])
    if "semantic" in value:
        if not isinstance(value["semantic"], bool):
            raise ModerationConfigError(f"{where}.semantic must be true or false")
        policy = replace(policy, semantic=value["semantic"])
    if "thresholds" in value:
        thresholds = value["thresholds"]
        if not isinstance(thresholds, dict):
            raise ModerationConfigError(f"{where}.thresholds must map categories to numbers from 0 to 1")
        for category, threshold in thresholds.items():
            _category(category, f"{where}.thresholds")
            if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 < threshold <= 1:
                raise ModerationConfigError(f"{where}.thresholds.{category} must be a number in (0, 1], "
                                            f"got {threshold!r}")
        policy = replace(policy, thresholds={**policy.thresholds, **{k: float(v) for k, v in thresholds.items()}})
    if "disabled" in value:
        disabled = value["disabled"]
        if not isinstance(disabled, list):
            raise ModerationConfigError(f"{where}.disabled must be a list of categories")
        policy = replace(policy, disabled=frozenset(_category(c, f"{where}.disabled") for c in disabled))
    return policy


def _category(name: Any, where: str) -> str:
    if name not in CATEGORIES:
        raise ModerationConfigError(f"{where}: unknown category {name!r}; the categories are {', '.join(CATEGORIES)}")
    return name


def _known(value: dict, keys: set[str], where: str) -> None:
    unknown = set(value) - keys
    if unknown:
        raise ModerationConfigError(f"{where}: unknown keys {sorted(unknown)}; known keys are {sorted(keys)}")


def _path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path
