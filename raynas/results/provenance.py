"""What a run records about itself (run.json): when and where it was made, and the versions of python, raynas and
the libraries that change results; and configs turned into the YAML/JSON builtins config.yaml holds."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import socket
from collections.abc import Mapping
from typing import Any

from raynas.version import __version__

# distribution name -> key in run.json; looked up through package metadata so nothing is imported
_VERSIONED = {
    "torch": "torch", "torchvision": "torchvision", "ray": "ray", "pymoo": "pymoo",
    "torch-fidelity": "torch_fidelity", "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow",
}


def package_versions() -> dict[str, str | None]:
    """Versions of python and the libraries that change results; None for any not installed."""
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist, key in _VERSIONED.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = None
    versions["raynas"] = __version__
    return versions


def plain(obj: Any) -> Any:
    """Turn configs (dataclasses, tuples, paths, numpy scalars) into YAML/JSON-safe builtins."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return plain(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        try:
            return obj.item()
        except (ValueError, RuntimeError):
            pass
    return str(obj)


def run_meta_text(name: str, seed: int, preset: str, device: str) -> str:
    """run.json as a new run writes it: its id, seed, preset, creation time, host, device and versions."""
    meta = {
        "run_id": name,
        "seed": int(seed),
        "preset": preset,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "device": str(device),
        "versions": package_versions(),
    }
    return json.dumps(meta, indent=2) + "\n"
