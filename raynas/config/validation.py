"""Checks that need more than one field's bounds: the device, the experiment folder, the dataset a task may
use, the splits a dataset has, and why a modifier section (Re-GAN) cannot be set on a run."""

from __future__ import annotations

import re
from typing import Any

from raynas.config.common import BASE_MAX_RESOLUTION, DataConfig
from raynas.config.overrides import apply_overrides
from raynas.config.registry import Section, registered_sections
from raynas.config.run_config import FIXED, RaynasConfig
from raynas.errors import ConfigError

# Folders a run directory holds besides Tune's experiment: its name must not be one of them.
RUN_FOLDERS = ("results", "plots", "checkpoints", "tensorboard", "cells", "select", "retrain", "search", "raynas")


def check_device_spec(spec: str, where: str = "train.device") -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``: anything else (``tpu``, ``cuda:x``) fails now, not in a trial."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", spec):
        raise ConfigError(f"{where}={spec!r} is not a device raynas can use; use auto, cpu, cuda or cuda:N")


def check_experiment_name(name: str) -> None:
    """``run.experiment_name`` is one plain folder name inside the run directory, not one of raynas's own."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or "") or name in RUN_FOLDERS:
        raise ConfigError(f"run.experiment_name={name!r}: use a plain folder name (letters, digits, . _ -) other than "
                          f"{', '.join(RUN_FOLDERS)}, e.g. tune")


TASK_DATASETS = {"gan": ("embedded", "fashion-mnist", "mnist", "cifar10", "cifar100", "stl10", "folder"),
                 "classify": ("embedded", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagenet", "folder")}


def check_dataset(data: dict[str, Any], overrides: list[str], task: str) -> None:
    """A dataset raynas knows but the task cannot use (ImageNet for a GAN, STL-10 for a classifier)."""
    name = apply_overrides({"data": dict(data.get("data") or {})}, [o for o in overrides if o.startswith("data.name=")])
    value = (name.get("data") or {}).get("name", DataConfig.name)
    if isinstance(value, str) and value in DataConfig.__dataclass_fields__["name"].metadata["choices"] \
            and value not in TASK_DATASETS[task]:
        raise ConfigError(f"data.name: {value!r} is not allowed for a {task} run; choose one of "
                          f"{', '.join(TASK_DATASETS[task])}")


def check_resolution_cap(cfg: RaynasConfig) -> None:
    """``data.resolution`` above 256 only for a fixed GAN run (``raynas train``/``retrain``, Re-GAN) whose
    generator and discriminator families are both built for it (a family declares its ``max_resolution``):
    every other network, search and classifier stops at 256. Imports torch only for such a run."""
    r = cfg.data.resolution
    if r <= BASE_MAX_RESOLUTION:
        return
    from raynas.nn.registry import families_up_to, family_max_resolution

    fixed_gan = cfg.task == "gan" and (cfg.method == FIXED or any(
        s.modifier and s.method == cfg.method for s in registered_sections()))
    if not fixed_gan:
        able = ", ".join(families_up_to(r, "generator")) or "none"
        raise ConfigError(f"data.resolution={r}: {run_label(cfg.method, cfg.task)} builds networks up to "
                          f"{BASE_MAX_RESOLUTION} px; only a fixed GAN run (raynas train / retrain) goes higher, "
                          f"with a family built for it (model.generator/discriminator: {able})")
    m = cfg.model
    for role, name in (("generator", m.generator), ("discriminator", m.discriminator)):
        most = family_max_resolution(name, role)
        if r > most:
            able = ", ".join(families_up_to(r, role)) or "none"
            raise ConfigError(f"data.resolution={r}: model.{role}={name} is built up to {most} px; lower "
                              f"data.resolution, or use a {role} family built for {r} px ({able})")


def run_label(method: str, task: str) -> str:
    """How messages name a run: ``method darts`` or ``a fixed gan run``."""
    return f"a fixed {task} run" if method == FIXED else f"method {method}"


TASK_LABELS = {"gan": "GAN", "classify": "classifier"}


def modifier_refusal(s: Section, key: str, method: str, run_task: str) -> str:
    """Why a modifier section (Re-GAN) cannot be set on this run, and what to run instead."""
    title, task = s.title, TASK_LABELS.get(s.task, s.task)
    where = f"raynas train, raynas retrain and raynas ablate {s.method}"
    if run_task != s.task:
        return (f"--set {key} does not apply to a {TASK_LABELS.get(run_task, run_task)} run: {title} applies to "
                f"{task} training only ({where} with a {s.task} preset). Drop the override, or run "
                f"`raynas train --preset quickstart --set {s.name}.enabled=true`")
    return (f"--set {key} does not apply to method {method!r}: {title} applies to fixed {task} training "
            f"({where}), not to {method}'s search. Drop the override, and retrain the found genotype with "
            f"`raynas retrain GENOTYPE --set {s.name}.enabled=true`")


def check_splits(cfg: RaynasConfig) -> None:
    """Splits depend on the dataset, so they are checked once both are known."""
    from raynas.data.specs import get_spec

    splits = get_spec(cfg.data.name).splits
    checks = [("data.split", cfg.data.split)]
    if hasattr(cfg, "eval") and hasattr(cfg.eval, "real_split"):
        checks.append(("eval.real_split", cfg.eval.real_split))
    for key, value in checks:
        if value not in splits:
            raise ConfigError(f"{key}={value!r} is not a split of {cfg.data.name}; valid: {', '.join(splits)}")

