"""Resolution: a preset (or a saved config) plus ``--set`` overrides becomes the validated, frozen config of
the one method a run runs. Sections of other methods in a shared preset are type-checked and dropped."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from raynas.config.fields import coerce_value, type_name
from raynas.config.keys import all_keys
from raynas.config.overrides import apply_overrides, parse_override
from raynas.config.presets import load_preset_dict, presets_for
from raynas.config.registry import (
    config_class,
    method_task,
    preset_task,
    registered_methods,
    section_named,
    upgrade_saved_config,
)
from raynas.config.run_config import FIXED, RaynasConfig
from raynas.config.validation import (
    check_dataset,
    check_device_spec,
    check_experiment_name,
    check_resolution_cap,
    check_splits,
    modifier_refusal,
    run_label,
)
from raynas.errors import ConfigError


def load_config(preset: str, overrides: list[str] | tuple[str, ...] = (), *, method: str | None = None,
                task: str | None = None) -> RaynasConfig:
    """The one entry point: preset + overrides → a validated config of one method.

    ``method`` is what the command runs (``eagan``, ``train``, ...). Without it: the one method whose
    section the overrides set, else the preset's ``method``. ``task`` matters for ``train`` only (the
    preset's task otherwise)."""
    return _resolve(upgrade_saved_config(load_preset_dict(preset)), method=method, overrides=overrides,
                    task=task)



def _resolve(data: dict[str, Any], *, method: str | None, overrides: list[str] | tuple[str, ...] | None,
             task: str | None = None) -> RaynasConfig:
    """``data`` (a preset or saved config, already upgraded) plus ``overrides`` as the config of ``method``
    (None: the one method the overrides name, else ``data``'s)."""
    overrides = list(overrides or ())
    named = {keys[0] for keys in (parse_override(o)[0] for o in overrides) if keys}
    if method is None:
        implied = sorted({s.method for s in map(section_named, named) if s is not None and not s.modifier})
        if len(implied) > 1:
            raise ConfigError(f"the overrides set sections of several methods ({', '.join(implied)}); a run "
                              "runs one method")
        method = implied[0] if implied else str(data.get("method", FIXED))
    if method != FIXED and method_task(method) is None:
        raise ConfigError(f"unknown method {method!r}; methods: {', '.join([FIXED, *registered_methods()])}")
    data_task = preset_task(data)
    if method == FIXED:
        run_task = task or data_task
    else:
        run_task = method_task(method)
        if task is not None and task != run_task:
            raise ConfigError(f"method {method} is a {run_task} method, not {task}")
    if run_task != data_task:
        preset = data.get("preset", "the preset")
        raise ConfigError(f"preset {preset!r} is a {data_task} preset, but {run_label(method, run_task)} needs a "
                          f"{run_task} preset; pick one of: {', '.join(presets_for(run_task))}")
    data = {**data, "method": method, "task": run_task}
    check_dataset(data, overrides, run_task)
    cls = config_class(run_task, method)
    keep = {f.name for f in dataclasses.fields(cls)}
    for name in named:
        s = section_named(name)
        if s is not None and name not in keep:
            key = next(o.split("=", 1)[0] for o in overrides if o.split(".", 1)[0] == name)
            if s.modifier:
                raise ConfigError(modifier_refusal(s, key, method, run_task))
            raise ConfigError(f"--set {key} does not apply to method {method!r} ({run_task} task): it belongs to "
                              f"method {s.method}. Drop the override, or run `raynas search {s.method}`")
    data = apply_overrides(data, overrides)
    for name in list(data):
        other = section_named(name)
        if name not in keep and other is not None:  # another method's section in a shared preset
            if not isinstance(data[name], dict):
                raise ConfigError(f"{name}: expected a mapping of {type_name(other.cls)} keys")
            from_dict(other.cls, data[name], prefix=f"{name}.")  # a typo still fails
            del data[name]
    cfg = from_dict(cls, data)
    check_splits(cfg)
    check_resolution_cap(cfg)
    check_device_spec(cfg.train.device)
    check_experiment_name(cfg.run.experiment_name)
    if method != FIXED and cfg.resources.workers > 1:
        raise ConfigError(f"resources.workers={cfg.resources.workers}: data-parallel workers train one fixed network "
                          f"(raynas train / retrain --num-workers N); {run_label(method, run_task)} runs each trial "
                          "on one worker, so leave resources.workers at 1")
    return cfg


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
                raise ConfigError(f"{where}: expected a mapping of {type_name(tp)} keys, got {value!r}")
            kwargs[name] = from_dict(tp, value, prefix=f"{where}.")
        else:
            kwargs[name] = coerce_value(value, tp, where, dict(fields[name].metadata))
    return cls(**kwargs)
