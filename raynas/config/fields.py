"""Field machinery: how a config section declares a setting (default, bounds, choices, help text) and how a
plain value (YAML, ``--set``, a Tune trial) becomes that setting's type, or one clear ``ConfigError``."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import field
from typing import Any

from raynas.errors import ConfigError

MAX_EPOCHS = 1_000_000  # a bound that catches 1e23 (every epoch count must end)
DEVICE_DOC = "auto | cpu | cuda | cuda:N (auto: CUDA when the process has a GPU)"


def setting(default: Any, *, choices: tuple | None = None, lo: float | None = None, hi: float | None = None,
            doc: str = "", lo_open: bool = False, hi_open: bool = False) -> Any:
    """A dataclass field with validation metadata (``lo_open``/``hi_open`` exclude the bound itself; a tuple
    may be empty when its default is). Every section field is one: ``epochs: int = setting(5, lo=1)``."""
    meta = {"choices": choices, "lo": lo, "hi": hi, "doc": doc, "lo_open": lo_open, "hi_open": hi_open,
            "empty_ok": default == () or default is None}
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return field(default=default, metadata=meta)


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


def type_name(tp: Any) -> str:
    """How messages name a section class or a field type."""
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def coerce_value(value: Any, tp: Any, where: str, meta: dict) -> Any:
    """``value`` as type ``tp``, checked against the field's ``setting`` metadata; ``where`` is its dotted key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce_value(value, inner[0], where, meta)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if not value and not meta.get("empty_ok"):
            raise ConfigError(f"{where}: the list must not be empty")
        item_meta = {"choices": meta.get("choices"), "lo": meta.get("lo"), "hi": meta.get("hi")}
        return tuple(coerce_value(v, args[0], f"{where}[{i}]", item_meta) for i, v in enumerate(value))
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
