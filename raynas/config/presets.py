"""Presets: the shipped YAML files under ``raynas/presets/`` (or a YAML path), and reading any config file
(a preset, a run's ``config.yaml``) into a plain dict."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import yaml

from raynas.config.registry import preset_task
from raynas.errors import ConfigError

PRESET_DIR = Path(__file__).parent.parent / "presets"


def list_presets() -> list[str]:
    """The shipped presets by name."""
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


def presets_for(task: str) -> list[str]:
    """The shipped presets of one task (for the message that refuses a preset of the other)."""
    out = []
    for name in list_presets():
        with contextlib.suppress(ConfigError):
            if preset_task(load_preset_dict(name)) == task:
                out.append(name)
    return out

