"""The registry of method sections (each method registers its section here; this package never imports
``raynas.methods``), the run-config class each ``(task, method)`` pair gets, and saved-config upgrades."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raynas.config.overrides import copy_plain
from raynas.config.run_config import FIXED, TASK_SECTIONS, TASKS, RaynasConfig
from raynas.errors import ConfigError
from raynas.plugins import load_plugins

PICKLE_MODULE = "raynas.config"  # where pickle looks run-config classes up (the package's __getattr__)


@dataclass(frozen=True)
class Section:
    """A method's config section: the key it lives under, its dataclass, the task it belongs to, and
    whether it modifies every fixed run of that task (Re-GAN) instead of belonging to one method."""

    name: str
    cls: type
    task: str
    method: str
    modifier: bool = False
    title: str = ""  # how messages name the method ("Re-GAN")


_SECTIONS: dict[str, Section] = {}
_METHOD_SECTION: dict[str, str] = {}
_UPGRADES: list[Callable[[dict[str, Any]], None]] = []
_RUN_CLASSES: dict[str, type] = {}  # class name -> the run-config class last built under it


def register_section(section: Section) -> Section:
    if section.task not in TASKS:
        raise ValueError(f"unknown task {section.task!r}")
    _SECTIONS[section.name] = section
    _METHOD_SECTION[section.method] = section.name
    config_class.cache_clear()
    return section


def register_upgrade(upgrade: Callable[[dict[str, Any]], None]) -> None:
    """``upgrade(data)`` fills keys an older raynas did not write, in place (saved configs only)."""
    _UPGRADES.append(upgrade)


def registered_sections() -> list[Section]:
    """Every registered section, in registration order."""
    load_plugins()
    return list(_SECTIONS.values())


def section_named(name: str) -> Section | None:
    """The section registered under the key ``name`` (None when no method registered one)."""
    load_plugins()
    return _SECTIONS.get(name)


def method_task(method: str) -> str | None:
    """The task of a registered method (None for ``train`` and unknown names)."""
    load_plugins()
    name = _METHOD_SECTION.get(method)
    return _SECTIONS[name].task if name else None


def registered_methods() -> list[str]:
    load_plugins()
    return sorted(_METHOD_SECTION)


def preset_task(data: dict[str, Any]) -> str:
    """The task a preset (or saved config) is for: its method's, else its ``task`` key (``gan`` by default)."""
    task = method_task(str(data.get("method", FIXED)))
    return task or str(data.get("task", "gan"))


def run_class_name(task: str, method: str) -> str:
    """``GanEaganRunConfig``, ``ClassifySwdNasRunConfig``: the name of a ``(task, method)`` run's class."""
    return "".join(p.capitalize() for p in f"{task}-{method}".replace("_", "-").split("-")) + "RunConfig"


@functools.cache
def config_class(task: str, method: str) -> type:
    """The frozen dataclass of a ``(task, method)`` run: common + task sections + the method's section +
    the task's modifier sections. One class per pair, so equal configs compare equal."""
    load_plugins()
    if task not in TASK_SECTIONS:
        raise ConfigError(f"task {task!r} has no sections registered; tasks: {', '.join(TASK_SECTIONS)}")
    fields: list[tuple[str, type, Any]] = [(name, cls, field(default_factory=cls))
                                           for name, cls in TASK_SECTIONS[task].items()]
    for s in _SECTIONS.values():
        if s.task == task and (s.method == method or (s.modifier and method == FIXED)):
            fields.append((s.name, s.cls, field(default_factory=s.cls)))
    name = run_class_name(task, method)
    cls = dataclasses.make_dataclass(name, fields, bases=(RaynasConfig,), frozen=True)
    cls.__module__ = PICKLE_MODULE  # pickled by reference as raynas.config.NAME; run_config_class finds it
    _RUN_CLASSES[name] = cls
    return cls


def run_config_class(name: str) -> type | None:
    """The run-config class pickled as ``raynas.config.NAME``: the one built under that name, else (a process
    that unpickles a config before it built one) the class of the registered ``(task, method)`` pair the
    name stands for; None when no pair has that name."""
    load_plugins()
    if name in _RUN_CLASSES:
        return _RUN_CLASSES[name]
    for task in TASK_SECTIONS:
        for method in (FIXED, *(m for m in registered_methods() if method_task(m) == task)):
            if run_class_name(task, method) == name:
                return config_class(task, method)
    return None


def upgrade_saved_config(data: dict[str, Any] | None) -> dict[str, Any]:
    """A config written by an earlier raynas, with what has changed since filled in as that version ran:
    ``method: gan`` (fixed training) became ``method: train`` and ``task`` was added; each method adds
    the keys it introduced later (``register_upgrade``)."""
    load_plugins()
    data = copy_plain(data or {})
    if not isinstance(data, dict):
        raise ConfigError("a saved config must be a mapping of config sections")
    if data.get("method") == "gan":
        data["method"] = FIXED
    for upgrade in _UPGRADES:
        upgrade(data)
    return data
