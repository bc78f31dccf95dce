"""Every dotted key (``train.epochs``) of every task and registered method: the listing of
``raynas config keys``, a key's validation metadata, and the keys that "did you mean" suggestions draw on."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from raynas.config.registry import registered_sections
from raynas.config.run_config import TASK_SECTIONS, RaynasConfig


def dotted_keys(cls: type, prefix: str = "") -> list[str]:
    """The dotted keys of a section or a whole config class, nested sections expanded."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        out += dotted_keys(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) else [f"{prefix}{f.name}"]
    return out


def key_metadata(key: str) -> dict[str, Any]:
    """Validation metadata of a dotted key (empty when unknown)."""
    section, _, name = key.partition(".")
    classes = [s.cls for s in registered_sections() if s.name == section]
    classes += [secs[section] for secs in TASK_SECTIONS.values() if section in secs]
    classes += [typing.get_type_hints(RaynasConfig)[section]] if section in ("data", "run", "resources") else []
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.name == name:
                return dict(f.metadata)
    return {}


def all_keys() -> list[str]:
    """Every dotted key of every task and registered section (for suggestions)."""
    keys = dotted_keys(RaynasConfig)
    for sections in TASK_SECTIONS.values():
        for name, cls in sections.items():
            keys += [k for k in dotted_keys(cls, f"{name}.") if k not in keys]
    for s in registered_sections():
        keys += dotted_keys(s.cls, f"{s.name}.")
    return keys


def describe_keys(cls: type | None = None, prefix: str = "") -> list[str]:
    """Every dotted key with its default, for ``raynas config keys`` (every task and method by default)."""
    if cls is None:
        out = describe_keys(RaynasConfig)
        out.append("# every run")
        for f in dataclasses.fields(RaynasConfig):  # the common sections: data, run, resources
            if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
                out += describe_keys(f.default_factory, f"{f.name}.")
        for task, sections in TASK_SECTIONS.items():
            out.append(f"# task {task}")
            for name, section in sections.items():
                out += describe_keys(section, f"{name}.")
        for s in sorted(registered_sections(), key=lambda s: s.name):
            out.append(f"# method {s.method}" + (f" (modifies {s.task} training)" if s.modifier else ""))
            out += describe_keys(s.cls, f"{s.name}.")
        return out
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            continue  # sections are listed by the caller
        doc = f.metadata.get("doc", "")
        out.append(f"{prefix}{f.name} = {default!r}" + (f"   # {doc}" if doc else ""))
    return out
