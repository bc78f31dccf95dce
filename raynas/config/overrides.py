"""``--set section.key=value`` overrides: parsing one (its value read as YAML) and applying a list of them to a
config dict, which is never changed in place."""

from __future__ import annotations

import contextlib
from typing import Any

import yaml

from raynas.errors import ConfigError


def parse_override(item: str) -> tuple[list[str], Any]:
    """``train.epochs=3`` → (["train", "epochs"], 3); the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r} must look like section.key=value, e.g. train.epochs=3")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = _plain_list(raw) if raw.strip().startswith("[") else raw
    return [k for k in key.strip().split(".") if k], value


def _plain_list(raw: str) -> list[Any]:
    """``[*]`` or ``[*.bias, l1.*]``: a list whose items YAML cannot read bare (``*`` starts an alias) means the
    same as with quotes, ``['*']``; anything else that opens a list but is not one is refused."""
    text = raw.strip()
    if not text.endswith("]") or any(c in text[1:-1] for c in "[]{}"):
        raise ConfigError(f"--set value {raw!r} opens a list but is not one; write it as [a, b] or ['a', 'b']")
    items = []
    for part in (p.strip() for p in text[1:-1].split(",")):
        if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
            part = part[1:-1]
        else:
            with contextlib.suppress(yaml.YAMLError):
                part = yaml.safe_load(part)
        items.append(part)
    return [] if items == [""] else items


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    data = copy_plain(data)
    for item in overrides or ():
        keys, value = parse_override(item)
        if not keys:
            raise ConfigError(f"--set {item!r} names no key")
        node = data
        for k in keys[:-1]:
            nxt = node.setdefault(k, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {k} is not a section")
            node = nxt
        node[keys[-1]] = value
    return data


def copy_plain(d: Any) -> Any:
    """A copy of nested dicts and lists (the leaves are shared): YAML data, trial configs."""
    if isinstance(d, dict):
        return {k: copy_plain(v) for k, v in d.items()}
    if isinstance(d, list):
        return [copy_plain(v) for v in d]
    return d

