"""Typed, validated run configuration.

A run is described by a preset YAML (``raynas/presets/NAME.yaml`` or a path) plus ``--set a.b=value``
overrides. Everything is checked up front and turned into frozen dataclasses, so a typo fails in the
first second with a message listing the valid keys, not hours later inside a Ray worker.

A resolved config holds the **common** sections (``data``, ``run``, ``resources``), the sections of its
**task** (``model``, ``train``, ``eval`` for ``gan``; ``model``, ``train`` for ``classify``) and the
section of the one **method** it runs (``eagan``, ``damgan``, ...), plus the task's modifier sections
(``regan`` for ``gan``). Method sections are registered by ``raynas.methods`` (this module never imports
it): a preset may carry several methods' sections; the ones not chosen are type-checked and dropped, and
an override of one is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raynas.errors import ConfigError
from raynas.plugins import load_plugins

PRESET_DIR = Path(__file__).parent / "presets"
TASKS = ("gan", "classify")
FIXED = "train"  # the method value of a fixed-network run (train / retrain): no method section


def setting(default: Any, *, choices: tuple | None = None, lo: float | None = None, hi: float | None = None,
            doc: str = "", lo_open: bool = False, hi_open: bool = False) -> Any:
    """A dataclass field with validation metadata (``lo_open``/``hi_open`` exclude the bound itself; a tuple
    may be empty when its default is)."""
    meta = {"choices": choices, "lo": lo, "hi": hi, "doc": doc, "lo_open": lo_open, "hi_open": hi_open,
            "empty_ok": default == ()}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata=meta)


_f = setting  # the short name the section definitions use

MAX_EPOCHS = 1_000_000  # a bound that catches 1e23 (every epoch count must end)
DEVICE_DOC = "auto | cpu | cuda | cuda:N (auto: CUDA when the process has a GPU)"


def check_device_spec(spec: str, where: str = "train.device") -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``: anything else (``tpu``, ``cuda:x``) fails now, not in a trial."""
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", spec):
        raise ConfigError(f"{where}={spec!r} is not a device raynas can use; use auto, cpu, cuda or cuda:N")


# ============================================================================ common sections
@dataclass(frozen=True)
class DataConfig:
    name: str = _f("embedded", choices=("embedded", "fashion-mnist", "mnist", "cifar10", "cifar100", "stl10",
                                        "imagenet", "folder"),
                   doc="folder: your own images under data.root (classifiers: DIR/train/<class>, DIR/test/<class>)")
    root: str | None = _f(None, doc="dataset folder; else RAYNAS_DATA, then system locations (data.name=folder: "
                                    "required, the folder of your images)")
    split: str = _f("train", doc="training split (stl10: train+unlabeled as the papers use)")
    resolution: int = _f(32, lo=8, hi=256)
    channels: int = _f(3, choices=(1, 3))
    loader: str = _f("auto", choices=("auto", "device", "dataloader"),
                     doc="device: whole uint8 dataset on the training device; dataloader: torch DataLoader")
    num_workers: int = _f(2, lo=0, hi=64)
    limit: int = _f(0, lo=0, doc="use only the first N training images (0 = all)")
    fraction: float = _f(1.0, lo=0.0, hi=1.0, lo_open=True,
                         doc="train on a seeded random fraction of the training images (Re-GAN's data ratios)")
    train_portion: float = _f(0.5, lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                              doc="classifier searches: the first portion of the training split trains the weights, "
                                  "the rest is the validation split (DARTS: 0.5); fixed training uses all of it")
    test_limit: int = _f(0, lo=0, doc="classifiers: score only the first N test images (0 = all; quick runs)")


@dataclass(frozen=True)
class RunConfig:
    output_dir: str = _f("runs")
    name: str = _f("", doc="run directory name; empty = PRESET-METHOD-TIMESTAMP")
    max_failures: int = _f(2, lo=0, hi=100, doc="Tune retries of a trial that crashed (a lost node, a killed worker), "
                                                "each from its last checkpoint; a user error is never retried")
    checkpoints_to_keep: int = _f(2, lo=1, hi=1000, doc="checkpoints Tune keeps per trial (the latest)")
    experiment_name: str = _f("tune", doc="Tune's experiment folder inside the run directory (RUN_DIR/NAME)")

    def __post_init__(self) -> None:
        if not str(self.output_dir).strip():  # an empty value must not quietly mean the working directory
            raise ConfigError("run.output_dir is empty; give a folder or a URI such as s3://bucket/raynas")


# Folders a run directory holds besides Tune's experiment: its name must not be one of them.
RUN_FOLDERS = ("results", "plots", "checkpoints", "tensorboard", "cells", "select", "retrain", "search", "raynas")


def check_experiment_name(name: str) -> None:
    """``run.experiment_name`` is one plain folder name inside the run directory, not one of raynas's own."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or "") or name in RUN_FOLDERS:
        raise ConfigError(f"run.experiment_name={name!r}: use a plain folder name (letters, digits, . _ -) other than "
                          f"{', '.join(RUN_FOLDERS)}, e.g. tune")


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float = _f(1.0, lo=0.0)
    gpu: float = _f(0.0, lo=0.0)


# ============================================================================ task gan
@functools.cache
def gan_training(*, gen_batch_size: int = 64, dis_batch_size: int = 64, lr_g: float = 2e-4,
                 lr_d: float = 2e-4) -> type:
    """The adversarial-training fields that fixed training and every GAN search share, with per-section
    defaults: ``class EaganConfig(gan_training(gen_batch_size=40, dis_batch_size=80))``."""
    defaults = {"gen_batch_size": gen_batch_size, "dis_batch_size": dis_batch_size, "lr_g": lr_g, "lr_d": lr_d}

    @dataclass(frozen=True)
    class GanTraining:
        iters_per_epoch: int = _f(0, lo=0, doc="discriminator steps per epoch; 0 = one pass over the data")
        gen_batch_size: int = _f(defaults["gen_batch_size"], lo=1)
        dis_batch_size: int = _f(defaults["dis_batch_size"], lo=1)
        lr_g: float = _f(defaults["lr_g"], lo=0.0, hi=1.0)
        lr_d: float = _f(defaults["lr_d"], lo=0.0, hi=1.0)

    return GanTraining


@dataclass(frozen=True)
class ModelConfig:
    generator: str = _f("sngan", choices=("sngan", "genotype", "stylegan2", "progan"))
    discriminator: str = _f("autogan", choices=("autogan", "genotype", "stylegan2", "progan"))
    g_genotype: str | None = _f(None, doc="genotype JSON path when generator=genotype")
    d_genotype: str | None = _f(None, doc="genotype JSON path when discriminator=genotype")
    latent_dim: int = _f(128, lo=1, hi=4096)
    gf_dim: int = _f(256, lo=4, hi=4096)
    df_dim: int = _f(128, lo=4, hi=4096)
    bottom_width: int = _f(0, lo=0, hi=64, doc="0 = resolution // 8")
    channel_multiplier: int = _f(2, lo=1, hi=32, doc="stylegan2: channels above 32 px are 16384 / resolution × this")
    max_channels: int = _f(512, lo=1, hi=512, doc="stylegan2: cap on feature-map channels (512 = the paper; "
                                                   "smaller only for quick CPU runs)")
    mapping_layers: int = _f(8, lo=1, hi=32, doc="stylegan2: layers of the mapping network")
    progan_channels: int = _f(512, lo=1, hi=4096, doc="progan: feature-map channels of every stage")
    progan_stage_epochs: tuple[int, ...] = _f((), doc="progan: epochs of each stage from 4×4 up, summing to "
                                                       "train.epochs (the authors' CIFAR-10: 2,2,2,8); empty = "
                                                       "no growing")

    def __post_init__(self) -> None:
        if any(int(n) < 1 for n in self.progan_stage_epochs):
            raise ConfigError(f"model.progan_stage_epochs {list(self.progan_stage_epochs)}: every stage needs at "
                              "least 1 epoch")


@dataclass(frozen=True)
class TrainConfig(gan_training()):
    epochs: int = _f(5, lo=1, hi=MAX_EPOCHS)
    beta1: float = _f(0.0, lo=0.0, hi=1.0, hi_open=True, doc="Adam β1 (< 1)")
    beta2: float = _f(0.9, lo=0.0, hi=1.0, hi_open=True, doc="Adam β2 (< 1)")
    n_critic: int = _f(1, lo=1, hi=100)
    ema_decay: float = _f(0.999, lo=0.0, hi=1.0)
    loss: str = _f("hinge", choices=("hinge", "nonsaturating", "wgan-gp"),
                   doc="hinge, nonsaturating (StyleGAN2's logistic loss) or wgan-gp (ProGAN's)")
    gp_lambda: float = _f(10.0, lo=0.0, doc="wgan-gp: gradient-penalty weight")
    r1_gamma: float = _f(0.0, lo=0.0, doc="R1 penalty weight γ on real images (StyleGAN2: 10; 0 = off)")
    r1_every: int = _f(16, lo=1, doc="lazy R1: add it on every N-th D step, weighted by N")
    pl_weight: float = _f(0.0, lo=0.0, doc="path-length regularisation weight (StyleGAN2: 2; 0 = off; stylegan2 G)")
    pl_every: int = _f(4, lo=1, doc="lazy path-length term: on every N-th G update, weighted by N")
    style_mixing: float = _f(0.0, lo=0.0, hi=1.0, doc="probability of mixing two latents (StyleGAN2: 0.9; stylegan2 G)")
    seed: int = _f(0, lo=0)
    device: str = _f("auto", doc=DEVICE_DOC)
    amp: str = _f("auto", choices=("auto", "true", "false"), doc="bf16 autocast; auto = on for CUDA")
    channels_last: str = _f("auto", choices=("auto", "true", "false"))
    checkpoint_every: int = _f(1, lo=1)
    augment: str = _f("none", choices=("none", "diffaugment", "ada", "apa"),
                      doc="what D sees: diffaugment (Zhao et al. 2020), ada (adaptive, Karras et al. 2020) or apa "
                          "(fakes shown as real with adaptive p, Jiang et al. 2021)")
    augment_policy: tuple[str, ...] = _f(("color", "translation", "cutout"), choices=("color", "translation", "cutout"),
                                         doc="augment=diffaugment: its transforms, in order")
    augment_p: float = _f(0.0, lo=0.0, hi=1.0, doc="augment=ada|apa: the starting probability p")
    augment_target: float = _f(0.6, lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                               doc="augment=ada|apa: the r_t = E[sign(D(real))] that p steers toward")
    augment_kimg: float = _f(500.0, lo=0.0, lo_open=True,
                             doc="augment=ada|apa: thousands of real images over which p can move 0 -> 1")
    augment_interval: int = _f(4, lo=1, doc="augment=ada|apa: D steps between adjustments of p")


@dataclass(frozen=True)
class EvalConfig:
    every: int = _f(1, lo=0, doc="evaluate every N epochs (0 = only after the last epoch)")
    protocol: str = _f("search", choices=("search", "paper", "quick"),
                       doc="scores during a run (search rounds, training epochs)")
    final_protocol: str = _f("paper", choices=("search", "paper", "quick"),
                             doc="scores of a finished network: retrains, --then-retrain, ablation cells")
    num_samples: int = _f(0, lo=0, doc="0 = the protocol's sample count")
    extractor: str = _f("inception-v3-compat", choices=("inception-v3-compat", "raynas-fmnist-cnn"))
    inception_weights: str | None = _f(None, doc="local Inception weights file (else RAYNAS_INCEPTION_WEIGHTS)")
    real_split: str = _f("train", doc="the real images IS/FID/KID compare against: any split of data.name "
                                      "(stl10: train+unlabeled, as the NAS-GAN papers use)")
    batch_size: int = _f(100, lo=1)
    metrics: tuple[str, ...] = _f(("is", "fid", "kid"), choices=("is", "fid", "kid"))


# ============================================================================ task classify
@dataclass(frozen=True)
class ClassifyTrainConfig:
    epochs: int = _f(600, lo=1, hi=MAX_EPOCHS)
    batch_size: int = _f(96, lo=1)
    lr: float = _f(0.025, lo=0.0, hi=10.0)
    lr_min: float = _f(0.0, lo=0.0, hi=10.0, doc="cosine end value (DARTS eval 0; DARTS search 0.001)")
    momentum: float = _f(0.9, lo=0.0, hi=1.0)
    weight_decay: float = _f(3e-4, lo=0.0, hi=1.0)
    grad_clip: float = _f(5.0, lo=0.0, doc="global L2 norm; 0 = off")
    schedule: str = _f("cosine", choices=("cosine", "step"),
                       doc="cosine: to lr_min over epochs; step: lr * lr_gamma per epoch (DARTS ImageNet)")
    lr_gamma: float = _f(0.97, lo=0.0, hi=1.0, doc="schedule=step: factor per epoch")
    label_smoothing: float = _f(0.0, lo=0.0, hi=1.0)
    cutout: bool = _f(True)
    cutout_length: int = _f(16, lo=1, hi=1024)
    auxiliary_weight: float = _f(0.4, lo=0.0, doc="weight of the auxiliary head's loss (0 = ignore it)")
    drop_path_prob: float = _f(0.2, lo=0.0, hi=1.0, doc="final value; ramps linearly from 0 over the epochs")
    seed: int = _f(0, lo=0)
    device: str = _f("auto", doc=DEVICE_DOC)
    amp: str = _f("auto", choices=("auto", "true", "false"), doc="bf16 autocast; auto = on for CUDA")
    channels_last: str = _f("auto", choices=("auto", "true", "false"))
    checkpoint_every: int = _f(1, lo=1, doc="epochs between checkpoints")
    eval_batch_size: int = _f(256, lo=1)

    def __post_init__(self) -> None:
        if self.lr_min > self.lr:
            raise ConfigError(f"train.lr_min={self.lr_min} is above train.lr={self.lr}")


@dataclass(frozen=True)
class ClassifyModelConfig:
    genotype: str = _f("darts-v2", doc="a shipped genotype name or a genotype JSON path")
    layers: int = _f(20, lo=1, doc="cells")
    channels: int = _f(36, lo=1, doc="C: initial channels")
    auxiliary: bool = _f(True, doc="auxiliary head after cell 2 * layers // 3")
    reduction_positions: tuple[int, ...] = _f((), doc="0-based cells that reduce; empty = DARTS' rule "
                                                      "(layers // 3 and 2 * layers // 3)")
    stem_multiplier: int = _f(3, lo=1)
    imagenet: bool = _f(False, doc="the ImageNet network (stride-4 stems, ImageNet auxiliary head)")

    def __post_init__(self) -> None:
        bad = [p for p in self.reduction_positions if not 0 <= p < self.layers]
        if bad:
            raise ConfigError(f"model.reduction_positions {list(bad)} lie outside cells 0..{self.layers - 1}")
        if len(set(self.reduction_positions)) != len(self.reduction_positions):
            raise ConfigError(f"model.reduction_positions {list(self.reduction_positions)} repeat a cell")


# ============================================================================ the resolved config
@dataclass(frozen=True)
class RaynasConfig:
    """Base of every resolved config; ``config_class`` adds the task's and the method's sections.

    ``from_dict(RaynasConfig, data)`` builds the class that ``data``'s method and task call for."""

    preset: str = _f("custom")
    method: str = _f(FIXED, doc="the method this run runs (train = a fixed network, no method section)")
    task: str = _f("gan", choices=TASKS)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


TASK_SECTIONS: dict[str, dict[str, type]] = {
    "gan": {"model": ModelConfig, "train": TrainConfig, "eval": EvalConfig},
    "classify": {"model": ClassifyModelConfig, "train": ClassifyTrainConfig},
}


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
_UPGRADES: list[typing.Callable[[dict[str, Any]], None]] = []


def register_section(section: Section) -> Section:
    if section.task not in TASKS:
        raise ValueError(f"unknown task {section.task!r}")
    _SECTIONS[section.name] = section
    _METHOD_SECTION[section.method] = section.name
    config_class.cache_clear()
    return section


def register_upgrade(upgrade: typing.Callable[[dict[str, Any]], None]) -> None:
    """``upgrade(data)`` fills keys an older raynas did not write, in place (saved configs only)."""
    _UPGRADES.append(upgrade)


def method_task(method: str) -> str | None:
    """The task of a registered method (None for ``train`` and unknown names)."""
    load_plugins()
    name = _METHOD_SECTION.get(method)
    return _SECTIONS[name].task if name else None


def registered_methods() -> list[str]:
    load_plugins()
    return sorted(_METHOD_SECTION)


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
    name = "".join(p.capitalize() for p in f"{task}-{method}".replace("_", "-").split("-")) + "RunConfig"
    cls = dataclasses.make_dataclass(name, fields, bases=(RaynasConfig,), frozen=True)
    cls.__module__ = __name__
    globals()[name] = cls  # picklable by reference
    return cls


def sections_of(task: str, method: str) -> dict[str, type]:
    """Every section a ``(task, method)`` run holds, by key (common ones included)."""
    cls = config_class(task, method)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])}


# ============================================================================ conversion
def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples become lists) suitable for YAML/JSON."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where, meta)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if not value and not meta.get("empty_ok"):
            raise ConfigError(f"{where}: the list must not be empty")
        item_meta = {"choices": meta.get("choices"), "lo": meta.get("lo"), "hi": meta.get("hi")}
        return tuple(_coerce(v, args[0], f"{where}[{i}]", item_meta) for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"{where}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {value!r} is not a finite number")
    elif tp is str:
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: {value!r} is not allowed; choose one of {', '.join(map(str, choices))}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        raise ConfigError(f"{where}: {value!r} is below the minimum {lo}"
                          + (" (the minimum itself is excluded)" if meta.get("lo_open") else ""))
    if hi is not None and (value > hi or (meta.get("hi_open") and value == hi)):
        raise ConfigError(f"{where}: {value!r} is above the maximum {hi}"
                          + (" (the maximum itself is excluded)" if meta.get("hi_open") else ""))
    return value


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and bad values.

    ``cls=RaynasConfig`` builds the class of the dict's own task and method (a saved config, a trial's)."""
    if cls is RaynasConfig:
        return _resolve(upgrade_saved_config(data), method=None, overrides=())
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"'{prefix.rstrip('.')}'" if prefix else "the top level"
        matches = [k for k in all_keys() if k.rsplit(".", 1)[-1] == unknown[0]]
        hint = f" (did you mean {' or '.join(matches)}?)" if matches else ""
        raise ConfigError(f"unknown config key {prefix}{unknown[0]!s} in {where}{hint}; valid keys are: "
                          f"{', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        where = f"{prefix}{name}"
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a mapping of {_type_name(tp)} keys, got {value!r}")
            kwargs[name] = from_dict(tp, value, prefix=f"{where}.")
        else:
            kwargs[name] = _coerce(value, tp, where, dict(fields[name].metadata))
    return cls(**kwargs)


def _dotted_keys(cls: type, prefix: str = "") -> list[str]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        out += _dotted_keys(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) else [f"{prefix}{f.name}"]
    return out


def key_metadata(key: str) -> dict[str, Any]:
    """Validation metadata of a dotted key (empty when unknown)."""
    load_plugins()
    section, _, name = key.partition(".")
    classes = [s.cls for s in _SECTIONS.values() if s.name == section]
    classes += [secs[section] for secs in TASK_SECTIONS.values() if section in secs]
    classes += [typing.get_type_hints(RaynasConfig)[section]] if section in ("data", "run", "resources") else []
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.name == name:
                return dict(f.metadata)
    return {}


def all_keys() -> list[str]:
    """Every dotted key of every task and registered section (for suggestions)."""
    load_plugins()
    keys = _dotted_keys(RaynasConfig)
    for sections in TASK_SECTIONS.values():
        for name, cls in sections.items():
            keys += [k for k in _dotted_keys(cls, f"{name}.") if k not in keys]
    for s in _SECTIONS.values():
        keys += _dotted_keys(s.cls, f"{s.name}.")
    return keys


# ============================================================================ presets and overrides
def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset_dict(name_or_path: str) -> dict[str, Any]:
    """Preset by name (``quickstart``) or by path to a YAML file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown preset {name_or_path!r}; available presets: {', '.join(list_presets())} "
                          "(or pass a path to a YAML file)")
    return read_config_file(path, default_preset=path.stem)


def read_config_file(path: Path, default_preset: str | None = None) -> dict[str, Any]:
    """A YAML config (preset or a run's config.yaml) as a dict; unreadable, binary, unparsable or
    Python-tagged files are one ConfigError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text YAML file (it is binary or not UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML (tags such as !!python/... are refused): "
                          f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of config sections")
    if default_preset is not None:
        data.setdefault("preset", default_preset)
    return data


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
    data = _deep_copy(data)
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


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def upgrade_saved_config(data: dict[str, Any] | None) -> dict[str, Any]:
    """A config written by an earlier raynas, with what has changed since filled in as that version ran:
    ``method: gan`` (fixed training) became ``method: train`` and ``task`` was added; each method adds
    the keys it introduced later (``register_upgrade``)."""
    load_plugins()
    data = _deep_copy(data or {})
    if not isinstance(data, dict):
        raise ConfigError("a saved config must be a mapping of config sections")
    if data.get("method") == "gan":
        data["method"] = FIXED
    for upgrade in _UPGRADES:
        upgrade(data)
    return data


# ============================================================================ resolution
def load_config(preset: str, overrides: list[str] | tuple[str, ...] = (), *, method: str | None = None,
                task: str | None = None) -> RaynasConfig:
    """The one entry point: preset + overrides → a validated config of one method.

    ``method`` is what the command runs (``eagan``, ``train``, ...). Without it: the one method whose
    section the overrides set, else the preset's ``method``. ``task`` matters for ``train`` only (the
    preset's task otherwise)."""
    return _resolve(upgrade_saved_config(load_preset_dict(preset)), method=method, overrides=overrides,
                    task=task)


def _preset_task(data: dict[str, Any]) -> str:
    task = method_task(str(data.get("method", FIXED)))
    return task or str(data.get("task", "gan"))


def _resolve(data: dict[str, Any], *, method: str | None, overrides: list[str] | tuple[str, ...] | None,
             task: str | None = None) -> RaynasConfig:
    load_plugins()
    overrides = list(overrides or ())
    named = {keys[0] for keys in (parse_override(o)[0] for o in overrides) if keys}
    if method is None:
        implied = sorted({_SECTIONS[n].method for n in named if n in _SECTIONS and not _SECTIONS[n].modifier})
        if len(implied) > 1:
            raise ConfigError(f"the overrides set sections of several methods ({', '.join(implied)}); a run "
                              "runs one method")
        method = implied[0] if implied else str(data.get("method", FIXED))
    if method != FIXED and method not in _METHOD_SECTION:
        raise ConfigError(f"unknown method {method!r}; methods: {', '.join([FIXED, *registered_methods()])}")
    preset_task = _preset_task(data)
    if method == FIXED:
        run_task = task or preset_task
    else:
        run_task = method_task(method)
        if task is not None and task != run_task:
            raise ConfigError(f"method {method} is a {run_task} method, not {task}")
    if run_task != preset_task:
        preset = data.get("preset", "the preset")
        raise ConfigError(f"preset {preset!r} is a {preset_task} preset, but {_what(method, run_task)} needs a "
                          f"{run_task} preset; pick one of: {', '.join(presets_for(run_task))}")
    data = {**data, "method": method, "task": run_task}
    _check_dataset(data, overrides, run_task)
    cls = config_class(run_task, method)
    keep = {f.name for f in dataclasses.fields(cls)}
    for name in named:
        if name in _SECTIONS and name not in keep:
            s = _SECTIONS[name]
            key = next(o.split("=", 1)[0] for o in overrides if o.split(".", 1)[0] == name)
            if s.modifier:
                raise ConfigError(_modifier_refusal(s, key, method, run_task))
            raise ConfigError(f"--set {key} does not apply to method {method!r} ({run_task} task): it belongs to "
                              f"method {s.method}. Drop the override, or run `raynas search {s.method}`")
    data = apply_overrides(data, overrides)
    for name in list(data):
        if name not in keep and name in _SECTIONS:  # another method's section in a shared preset
            if not isinstance(data[name], dict):
                raise ConfigError(f"{name}: expected a mapping of {_type_name(_SECTIONS[name].cls)} keys")
            from_dict(_SECTIONS[name].cls, data[name], prefix=f"{name}.")  # a typo still fails
            del data[name]
    cfg = from_dict(cls, data)
    _check_splits(cfg)
    check_device_spec(cfg.train.device)
    check_experiment_name(cfg.run.experiment_name)
    return cfg


TASK_DATASETS = {"gan": ("embedded", "fashion-mnist", "mnist", "cifar10", "cifar100", "stl10", "folder"),
                 "classify": ("embedded", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagenet", "folder")}


def _check_dataset(data: dict[str, Any], overrides: list[str], task: str) -> None:
    name = apply_overrides({"data": dict(data.get("data") or {})}, [o for o in overrides if o.startswith("data.name=")])
    value = (name.get("data") or {}).get("name", DataConfig.name)
    if isinstance(value, str) and value in DataConfig.__dataclass_fields__["name"].metadata["choices"] \
            and value not in TASK_DATASETS[task]:
        raise ConfigError(f"data.name: {value!r} is not allowed for a {task} run; choose one of "
                          f"{', '.join(TASK_DATASETS[task])}")


def _what(method: str, task: str) -> str:
    return f"a fixed {task} run" if method == FIXED else f"method {method}"


TASK_LABELS = {"gan": "GAN", "classify": "classifier"}


def _modifier_refusal(s: Section, key: str, method: str, run_task: str) -> str:
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


def presets_for(task: str) -> list[str]:
    out = []
    for name in list_presets():
        with contextlib.suppress(ConfigError):
            if _preset_task(load_preset_dict(name)) == task:
                out.append(name)
    return out


def _check_splits(cfg: RaynasConfig) -> None:
    """Splits depend on the dataset, so they are checked once both are known."""
    from raynas.data.specs import get_spec

    splits = get_spec(cfg.data.name).splits
    checks = [("data.split", cfg.data.split)]
    if hasattr(cfg, "eval") and hasattr(cfg.eval, "real_split"):
        checks.append(("eval.real_split", cfg.eval.real_split))
    for key, value in checks:
        if value not in splits:
            raise ConfigError(f"{key}={value!r} is not a split of {cfg.data.name}; valid: {', '.join(splits)}")


def describe_keys(cls: type | None = None, prefix: str = "") -> list[str]:
    """Every dotted key with its default, for ``raynas config keys`` (every task and method by default)."""
    load_plugins()
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
        for s in sorted(_SECTIONS.values(), key=lambda s: s.name):
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


def close_matches(word: str, options: list[str]) -> str:
    """`` (did you mean X?)`` for a near miss, else empty."""
    match = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {match[0]}?)" if match else ""
