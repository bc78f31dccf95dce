"""The real-statistics cache: real-image features and FID statistics, computed once per key.

torch-fidelity caches features under ``input2_cache_name`` but keys them by the extractor *name* only,
so a different weights file would silently reuse stale features. Our cache name therefore hashes
everything that changes the numbers: the source (dataset, split, resolution, channels, subset seed, or
a folder's file list), the extractor name, the sha256 of its weights file and the requested sample
count. A JSON sidecar next to torch-fidelity's ``.pt`` files records the full key and the number of
real images, so a cache hit never has to load the dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.metrics.extractors import ResolvedExtractor

CACHE_ENV = "RAYNAS_CACHE"
KEY_VERSION = 1


def default_cache_dir() -> Path:
    """``$RAYNAS_CACHE`` when set, else ``~/.cache/raynas/metrics``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "raynas" / "metrics"


def cache_key(identity: dict[str, Any], extractor: ResolvedExtractor, num_samples: int) -> dict[str, Any]:
    """Everything that determines the real features, as one JSON-able dict."""
    return {"version": KEY_VERSION, "source": identity, "extractor": extractor.name,
            "weights_sha256": extractor.weights_sha256, "num_samples": int(num_samples)}


@dataclass(frozen=True)
class CacheEntry:
    """One real-statistics cache entry: torch-fidelity's files share ``name`` as their prefix."""

    directory: Path
    name: str
    key: dict[str, Any]

    @property
    def sidecar(self) -> Path:
        return self.directory / f"{self.name}.json"

    def files(self) -> list[Path]:
        """torch-fidelity's cached feature/statistics files for this entry."""
        return sorted(p for p in self.directory.glob(f"{self.name}-*.pt"))

    def num_images(self) -> int | None:
        """Number of real images behind the entry, if it was computed before."""
        try:
            return int(json.loads(self.sidecar.read_text())["num_images"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def record(self, num_images: int) -> None:
        """Write the sidecar atomically (several Ray workers may finish the same entry together)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"key": self.key, "num_images": int(num_images)}, indent=2, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".json.tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(data)
            os.replace(tmp, self.sidecar)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def cache_entry(identity: dict[str, Any], extractor: ResolvedExtractor, num_samples: int,
                cache_dir: str | os.PathLike | None = None) -> CacheEntry:
    """The cache entry for a real source: a readable prefix plus a hash of the full key."""
    key = cache_key(identity, extractor, num_samples)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    if identity.get("kind") == "dataset":
        label = (f"{identity['dataset']}-{identity['split']}-{identity['resolution']}px-"
                 f"{identity['channels']}ch")
    else:
        label = str(identity.get("kind", "source"))
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", f"raynas-{label}-n{int(num_samples)}")
    directory = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return CacheEntry(directory=directory, name=f"{label}-{digest}", key=key)
