#!/usr/bin/env python
"""Build the Fashion-MNIST subset that ships inside raynas (raynas/data/embedded/).

The subset lets every command and test run on a machine with no dataset and no network. It is
class-balanced (equal images per class), drawn with a fixed seed, and keeps the labels and the index
of each image in the original split so anyone can check it against the upstream files.

Standalone on purpose (numpy only): it runs before raynas is installed. Usage::

    python scripts/build_embedded_dataset.py                      # Debian package files, default out
    python scripts/build_embedded_dataset.py --source DIR --out FILE.npz --train-per-class 1000
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "raynas" / "data" / "embedded" / "fashion_mnist_subset.npz"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
NUM_CLASSES = 10


def _find(source: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (source / name).is_file():
            return source / name
    raise SystemExit(f"error: {source} has no {stem}(.gz); install it with "
                     f"'apt-get install dataset-fashion-mnist' or pass --source DIR")


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (optionally gzipped): big-endian magic 0x00 0x00 0x08 ndim, then dims, then uint8."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SystemExit(f"error: {path} is not a uint8 idx file")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SystemExit(f"error: {path} is truncated ({data.size} bytes of data, header says {dims})")
    return data.reshape(dims)


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices with ``per_class`` images of every class, in a shuffled (seeded) order."""
    picks = []
    for c in range(NUM_CLASSES):
        pool = np.flatnonzero(labels == c)
        if len(pool) < per_class:
            raise SystemExit(f"error: class {c} has only {len(pool)} images, asked for {per_class}")
        picks.append(rng.choice(pool, size=per_class, replace=False))
    idx = np.concatenate(picks)
    return idx[rng.permutation(len(idx))]


def build(source: Path, out: Path, train_per_class: int, test_per_class: int,
          seed: int) -> dict[str, np.ndarray]:
    """Write the subset to ``out`` and return its arrays."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        images = read_idx(_find(source, FILES[split][0]))
        labels = read_idx(_find(source, FILES[split][1]))
        idx = balanced_subset(labels, per_class, rng)
        arrays[f"x_{split}"] = np.ascontiguousarray(images[idx], dtype=np.uint8)
        arrays[f"y_{split}"] = labels[idx].astype(np.uint8)
        arrays[f"index_{split}"] = idx.astype(np.int32)
    arrays["seed"] = np.array(seed, dtype=np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return arrays


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                   help="folder with the Fashion-MNIST idx files (.gz or decompressed)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz")
    p.add_argument("--train-per-class", type=int, default=1000)
    p.add_argument("--test-per-class", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    arrays = build(a.source, a.out, a.train_per_class, a.test_per_class, a.seed)
    size_mb = a.out.stat().st_size / 2**20
    print(f"wrote {a.out} ({size_mb:.2f} MiB): "
          f"train {arrays['x_train'].shape}, test {arrays['x_test'].shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
