"""Typed, validated run configuration.

A run is described by a preset YAML (``raynas/presets/NAME.yaml`` or a path) plus ``--set a.b=value``
overrides. Everything is checked up front and turned into frozen dataclasses, so a typo fails in
the first second with a message listing the valid keys, not hours later inside a Ray worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raynas.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"


def _f(default: Any, *, choices: tuple | None = None, lo: float | None = None,
       hi: float | None = None, doc: str = "") -> Any:
    """A dataclass field with validation metadata."""
    meta = {"choices": choices, "lo": lo, "hi": hi, "doc": doc}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    name: str = _f("embedded", choices=("embedded", "fashion-mnist", "cifar10", "stl10"))
    root: str | None = _f(None, doc="dataset folder; else RAYNAS_DATA, then system locations")
    split: str = _f("train", doc="training split (stl10: train+unlabeled as the papers use)")
    resolution: int = _f(32, lo=8, hi=256)
    channels: int = _f(3, choices=(1, 3))
    loader: str = _f("auto", choices=("auto", "device", "dataloader"),
                     doc="device: whole uint8 dataset on the training device; dataloader: torch DataLoader")
    num_workers: int = _f(2, lo=0, hi=64)
    limit: int = _f(0, lo=0, doc="use only the first N training images (0 = all)")


@dataclass(frozen=True)
class ModelConfig:
    generator: str = _f("sngan", choices=("sngan", "genotype"))
    discriminator: str = _f("autogan", choices=("autogan", "genotype"))
    g_genotype: str | None = _f(None, doc="genotype JSON path when generator=genotype")
    d_genotype: str | None = _f(None, doc="genotype JSON path when discriminator=genotype")
    latent_dim: int = _f(128, lo=1, hi=4096)
    gf_dim: int = _f(256, lo=4, hi=4096)
    df_dim: int = _f(128, lo=4, hi=4096)
    bottom_width: int = _f(0, lo=0, hi=64, doc="0 = resolution // 8")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _f(5, lo=1)
    iters_per_epoch: int = _f(0, lo=0, doc="discriminator steps per epoch; 0 = one pass over the data")
    gen_batch_size: int = _f(64, lo=1)
    dis_batch_size: int = _f(64, lo=1)
    lr_g: float = _f(2e-4, lo=0.0, hi=1.0)
    lr_d: float = _f(2e-4, lo=0.0, hi=1.0)
    beta1: float = _f(0.0, lo=0.0, hi=1.0)
    beta2: float = _f(0.9, lo=0.0, hi=1.0)
    n_critic: int = _f(1, lo=1, hi=100)
    ema_decay: float = _f(0.999, lo=0.0, hi=1.0)
    loss: str = _f("hinge", choices=("hinge",))
    seed: int = _f(0, lo=0)
    device: str = _f("auto", doc="auto | cpu | cuda | cuda:N")
    amp: str = _f("auto", choices=("auto", "true", "false"), doc="bf16 autocast; auto = on for CUDA")
    channels_last: str = _f("auto", choices=("auto", "true", "false"))
    checkpoint_every: int = _f(1, lo=1)


@dataclass(frozen=True)
class EvalConfig:
    every: int = _f(1, lo=0, doc="evaluate every N epochs (0 = only after the last epoch)")
    protocol: str = _f("search", choices=("search", "paper", "quick"))
    num_samples: int = _f(0, lo=0, doc="0 = the protocol's sample count")
    extractor: str = _f("inception-v3-compat", choices=("inception-v3-compat", "raynas-fmnist-cnn"))
    inception_weights: str | None = _f(None, doc="local Inception weights file (else RAYNAS_INCEPTION_WEIGHTS)")
    real_split: str = _f("train", doc="the real images IS/FID/KID compare against: any split of data.name "
                                      "(stl10: train+unlabeled, as the NAS-GAN papers use)")
    batch_size: int = _f(100, lo=1)
    metrics: tuple[str, ...] = _f(("is", "fid", "kid"), choices=("is", "fid", "kid"))


@dataclass(frozen=True)
class RunConfig:
    output_dir: str = _f("runs")
    name: str = _f("", doc="run directory name; empty = PRESET-TIMESTAMP")


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float = _f(1.0, lo=0.0)
    gpu: float = _f(0.0, lo=0.0)


@dataclass(frozen=True)
class EaganConfig:
    population: int = _f(32, lo=4, doc="P: candidates per round (even); keeps P/2, breeds P/2")
    rounds: int = _f(18, lo=1, doc="R: evolution rounds per stage")
    epochs_per_round: int = _f(10, lo=1, doc="E: supernet training epochs per round")
    warmup_epochs: int = _f(50, lo=0, doc="uniformly random subnets per batch before round 0")
    iters_per_epoch: int = _f(0, lo=0, doc="D steps per epoch; 0 = one pass over the data")
    gen_batch_size: int = _f(40, lo=1, doc="search-time G batch (retrain uses train.*)")
    dis_batch_size: int = _f(80, lo=1, doc="search-time D batch")
    lr_g: float = _f(2e-4, lo=0.0, hi=1.0)
    lr_d: float = _f(2e-4, lo=0.0, hi=1.0)
    stages: tuple[str, ...] = _f(("g", "d"), choices=("g", "d", "gd"),
                                 doc="g = stage 1 (search G, fixed D); d = stage 2 (search D); "
                                     "gd alone = the coupled baseline (G and D evolved together, Fig. 6)")
    search_gf_dim: int = _f(64, lo=4, doc="G supernet width while searching (retrain uses model.gf_dim)")
    search_df_dim: int = _f(64, lo=4, doc="D supernet width while searching")
    fixed_d_genotype: str | None = _f(None, doc="stage g's fixed D as an eagan-d genotype JSON (e.g. an earlier "
                                                "run's best_D.json: the paper's EAGAN-GD3); None = AutoGAN D")
    stage_g_n_critic: int = _f(1, lo=1, hi=100, doc="stage g (and the coupled stage gd): D steps per G step")
    stage_d_n_critic: int = _f(1, lo=1, hi=100, doc="stage d: D steps per G step (retrain uses train.n_critic)")
    objectives: tuple[str, ...] = _f(("is", "fid", "params"), choices=("is", "fid", "kid", "params"))
    crossover_prob: float = _f(0.3, lo=0.0, hi=1.0)
    mutation_prob: float = _f(0.5, lo=0.0, hi=1.0)
    weight_resetting: bool = _f(True, doc="stage 2: reset every G copy to the best pair's G after each round")
    select_by: str = _f("fid", choices=("fid", "is"), doc="picks best_G/best_D from the final Pareto front")
    workers: int = _f(2, lo=1, hi=256, doc="parallel Evaluator actors")
    evaluator_gpu: float = _f(0.125, lo=0.0, hi=1.0, doc="GPU fraction per Evaluator when GPUs exist")
    evaluator_cpu: float = _f(1.0, lo=0.0)
    host_gpu: float = _f(0.5, lo=0.0, hi=1.0, doc="GPU for the SupernetHost when GPUs exist")
    host_cpu: float = _f(1.0, lo=0.0)


@dataclass(frozen=True)
class DamganConfig:
    kprime: int = _f(4, lo=1, doc="k' : each edge's ops see the top C/k' maps by up-attention")
    search_gf_dim: int = _f(256, lo=4, doc="C: supernet node width while searching")
    selector: str = _f("da", choices=("da", "darts"), doc="da = down-attention; darts = softmax arch params")
    bilevel: bool = _f(False, doc="darts selector only: alternate arch-param steps on held-out batches")
    arch_lr: float = _f(3e-4, lo=0.0, hi=1.0)
    reduction: int = _f(16, lo=1, doc="attention MLP bottleneck ratio")
    epochs: int = _f(100, lo=1, doc="supernet search epochs (retrain uses train.*)")
    iters_per_epoch: int = _f(0, lo=0, doc="D steps per search epoch; 0 = one pass over the data")
    gen_batch_size: int = _f(64, lo=1)
    dis_batch_size: int = _f(64, lo=1)
    n_critic: int = _f(1, lo=1, hi=100, doc="n_D: D steps per G step while searching")
    lr_g: float = _f(2e-4, lo=0.0, hi=1.0)
    lr_d: float = _f(2e-4, lo=0.0, hi=1.0)
    eval_every: int = _f(10, lo=0, doc="IS/FID of the derived subnet every N search epochs (0 = last only)")


@dataclass(frozen=True)
class RaynasConfig:
    preset: str = _f("custom")
    method: str = _f("gan", choices=("gan", "eagan", "damgan"))
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    eagan: EaganConfig = field(default_factory=EaganConfig)
    damgan: DamganConfig = field(default_factory=DamganConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


# ----------------------------------------------------------------------------- conversion


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
        if not value:
            raise ConfigError(f"{where}: the list must not be empty")
        item_meta = {"choices": meta.get("choices")}
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
    if lo is not None and value < lo:
        raise ConfigError(f"{where}: {value!r} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{where}: {value!r} is above the maximum {hi}")
    return value


def from_dict(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys and bad values."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"'{prefix.rstrip('.')}'" if prefix else "the top level"
        matches = [k for k in _dotted_keys(cls, prefix) if k.rsplit(".", 1)[-1] == unknown[0]]
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
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        out += _dotted_keys(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) else [f"{prefix}{f.name}"]
    return out


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
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"preset {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"preset {path} must be a mapping of config sections")
    data.setdefault("preset", path.stem)
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    """``train.epochs=3`` → (["train", "epochs"], 3); the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r} must look like section.key=value, e.g. train.epochs=3")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return [k for k in key.strip().split(".") if k], value


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
    """A run's saved config from an earlier raynas, with keys added since set to what that version did:
    EAGAN searches used ``train.n_critic`` in both stages before the per-stage keys existed."""
    data = _deep_copy(data or {})
    eagan = data.get("eagan")
    if isinstance(eagan, dict):
        n_critic = (data.get("train") or {}).get("n_critic", 1)
        eagan.setdefault("stage_g_n_critic", n_critic)
        eagan.setdefault("stage_d_n_critic", n_critic)
    return data


def load_config(preset: str, overrides: list[str] | tuple[str, ...] = ()) -> RaynasConfig:
    """The one entry point: preset + overrides → validated ``RaynasConfig``."""
    cfg = from_dict(RaynasConfig, apply_overrides(load_preset_dict(preset), overrides))
    _check_splits(cfg)
    return cfg


def _check_splits(cfg: RaynasConfig) -> None:
    """Splits depend on the dataset, so they are checked once both are known."""
    from raynas.data.specs import DATASETS

    splits = DATASETS[cfg.data.name].splits
    for key, value in (("data.split", cfg.data.split), ("eval.real_split", cfg.eval.real_split)):
        if value not in splits:
            raise ConfigError(f"{key}={value!r} is not a split of {cfg.data.name}; valid: {', '.join(splits)}")


def describe_keys(cls: type = RaynasConfig, prefix: str = "") -> list[str]:
    """Every dotted key with its default, for ``raynas config keys``."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            out += describe_keys(type(default), f"{prefix}{f.name}.")
        else:
            doc = f.metadata.get("doc", "")
            out.append(f"{prefix}{f.name} = {default!r}" + (f"   # {doc}" if doc else ""))
    return out
