"""Typed, validated run configuration.

A run is described by a preset YAML (``raynas/presets/NAME.yaml`` or a path) plus ``--set a.b=value``
overrides. Everything is checked up front and turned into frozen dataclasses, so a typo fails in the
first second with a message listing the valid keys, not hours later inside a Ray worker.

A resolved config holds the **common** sections (``data``, ``run``, ``resources``), the sections of its
**task** (``model``, ``train``, ``eval`` for ``gan``; ``model``, ``train`` for ``classify``) and the
section of the one **method** it runs (``eagan``, ``damgan``, ...), plus the task's modifier sections
(``regan`` for ``gan``). Method sections are registered by ``raynas.methods`` (this package never imports
it): a preset may carry several methods' sections; the ones not chosen are type-checked and dropped, and
an override of one is refused.

The package, one concept a module: ``fields`` (``setting`` and value coercion), ``common`` / ``gan`` /
``classify`` (the sections of every run and of each task), ``search_training`` (the base of differentiable
search sections), ``run_config`` (``RaynasConfig``), ``registry`` (method sections, run classes, saved-config
upgrades), ``overrides``, ``presets``, ``validation``, ``keys`` and ``resolve`` (``load_config``, ``from_dict``).
"""

from __future__ import annotations

from raynas.config.classify import ClassifyModelConfig, ClassifyTrainConfig
from raynas.config.common import DataConfig, ResourcesConfig, RunConfig
from raynas.config.fields import DEVICE_DOC, MAX_EPOCHS, setting, to_dict
from raynas.config.gan import EvalConfig, ModelConfig, TrainConfig, gan_training
from raynas.config.keys import all_keys, describe_keys, key_metadata
from raynas.config.overrides import apply_overrides, parse_override
from raynas.config.presets import PRESET_DIR, list_presets, load_preset_dict, presets_for, read_config_file
from raynas.config.registry import (
    Section,
    config_class,
    method_task,
    register_section,
    register_upgrade,
    registered_methods,
    run_config_class,
    upgrade_saved_config,
)
from raynas.config.resolve import from_dict, load_config
from raynas.config.run_config import FIXED, TASK_SECTIONS, TASKS, RaynasConfig
from raynas.config.search_training import SearchTraining, search_section
from raynas.config.validation import check_device_spec

__all__ = [
    "DEVICE_DOC", "FIXED", "MAX_EPOCHS", "PRESET_DIR", "TASKS", "TASK_SECTIONS", "ClassifyModelConfig",
    "ClassifyTrainConfig", "DataConfig", "EvalConfig", "ModelConfig", "RaynasConfig", "ResourcesConfig",
    "RunConfig", "SearchTraining", "Section", "TrainConfig", "all_keys", "apply_overrides", "check_device_spec",
    "config_class", "describe_keys", "from_dict", "gan_training", "key_metadata", "list_presets", "load_config",
    "load_preset_dict", "method_task", "parse_override", "presets_for", "read_config_file", "register_section",
    "register_upgrade", "registered_methods", "search_section", "setting", "to_dict", "upgrade_saved_config",
]


def __getattr__(name: str) -> type:
    """``raynas.config.GanEaganRunConfig`` and its kind: the class of each ``(task, method)`` run is built on
    demand (``config_class``) and pickled by reference under this package, so pickle finds it here by name,
    in this process or another one (a Ray worker), without the package writing into its own globals."""
    cls = run_config_class(name) if name.endswith("RunConfig") else None
    if cls is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return cls
