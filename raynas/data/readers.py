"""Decode the on-disk formats into numpy uint8 arrays (N, C, H, W) without torchvision.

Reading the files directly (rather than through torchvision's dataset classes) avoids an MD5 pass over
every file on every load, lets STL-10's 2.7 GB unlabeled split be memory-mapped and read in chunks,
and turns a truncated or corrupt file into a DatasetError that names it.
"""

from __future__ import annotations

import gzip
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from raynas.errors import DatasetError

from .locate import _FASHION_STEMS, _STL_FILES, EMBEDDED_FILE, cifar_files, idx_file

_STL_SIDE = 96
_STL_BYTES = 3 * _STL_SIDE * _STL_SIDE


def _corrupt(path: Path, why: str) -> DatasetError:
    return DatasetError(f"dataset file {path} is corrupt or truncated ({why}); delete it and copy or "
                        f"download the dataset again")


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (gzipped or not): magic 0x0000 0x08 ndim, big-endian uint32 dims, uint8 data."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise _corrupt(path, f"{type(e).__name__}: {e}") from e
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise _corrupt(path, "not a uint8 idx file: bad magic number")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise _corrupt(path, "header cut short")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise _corrupt(path, f"{data.size} data bytes but the header says shape {dims}")
    return data.reshape(dims)


def _idx(folder: Path, stem: str) -> np.ndarray:
    path = idx_file(folder, stem)
    if path is None:
        raise DatasetError(f"{folder} has no {stem} or {stem}.gz; copy the complete MNIST or Fashion-MNIST "
                           f"files there")
    return read_idx(path)


def fashion_images(folder: Path, split: str, limit: int = 0) -> np.ndarray:
    """Images (N, 1, 28, 28) of Fashion-MNIST or MNIST (the same idx file names and format)."""
    stem = _FASHION_STEMS[split][0]
    x = _idx(folder, stem)
    if x.ndim != 3:
        raise _corrupt(idx_file(folder, stem), f"expected N x 28 x 28 images, got shape {x.shape}")
    x = x[:limit] if limit else x
    return x[:, None]


def fashion_labels(folder: Path, split: str, limit: int = 0) -> np.ndarray:
    y = _idx(folder, _FASHION_STEMS[split][1])
    return y[:limit] if limit else y


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches hold only dicts, lists, bytes and numpy arrays: refuse anything else.

    A dataset folder is user-supplied data; this keeps a malicious "batch" from running code.
    """

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - signature of the base class
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")
        return super().find_class(module, name)


def _cifar_batch(path: Path, archive: str = "cifar-10-python.tar.gz") -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: 'data' (N, 3072) uint8 and 'labels' (CIFAR-10) or 'fine_labels' (CIFAR-100)."""
    if not path.is_file():
        raise DatasetError(f"CIFAR file {path} is missing; extract the complete {archive}")
    try:
        with path.open("rb") as f:
            entry = _NumpyOnlyUnpickler(f, encoding="latin1").load()
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
        x = data.reshape(-1, 3, 32, 32)
    except (pickle.UnpicklingError, EOFError, OSError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise _corrupt(path, f"{type(e).__name__}: {e}") from e
    if labels.shape != (len(x),):
        raise _corrupt(path, f"{len(x)} images but labels of shape {labels.shape}")
    return x, labels


def cifar_arrays(folder: Path, split: str, limit: int = 0,
                 dataset: str = "cifar10") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) and labels (CIFAR-100: the 100 fine labels), reading batch files only until
    ``limit`` images are in."""
    archive = "cifar-100-python.tar.gz" if dataset == "cifar100" else "cifar-10-python.tar.gz"
    xs, ys, n = [], [], 0
    for name in cifar_files(dataset)[split]:
        x, y = _cifar_batch(folder / name, archive)
        xs.append(x)
        ys.append(y)
        n += len(x)
        if limit and n >= limit:
            break
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x[:limit], y[:limit]) if limit else (x, y)


def _stl_part(path: Path, limit: int) -> np.ndarray:
    """Memory-mapped (N, 3, 96, 96) view; STL-10 stores each plane column-major, hence the transpose."""
    if not path.is_file():
        raise DatasetError(f"STL-10 file {path} is missing; extract the complete stl10_binary.tar.gz")
    size = path.stat().st_size
    if size == 0 or size % _STL_BYTES:
        raise _corrupt(path, f"size {size} is not a multiple of one 3x96x96 image ({_STL_BYTES} bytes)")
    mm = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 3, _STL_SIDE, _STL_SIDE)
    if limit:
        mm = mm[:limit]
    return mm.transpose(0, 1, 3, 2)


def stl_parts(folder: Path, split: str, limit: int = 0) -> list[np.ndarray]:
    """Lazy parts of a split (train+unlabeled: train first), trimmed to ``limit`` images in total."""
    parts, left = [], limit
    for name in _STL_FILES[split]:
        part = _stl_part(folder / name, left)
        parts.append(part)
        if limit:
            left -= len(part)
            if left <= 0:
                break
    return parts


def stl_labels(folder: Path, split: str, limit: int = 0) -> np.ndarray:
    path = folder / f"{split}_y.bin"
    if not path.is_file():
        raise DatasetError(f"STL-10 label file {path} is missing; extract the complete stl10_binary.tar.gz")
    y = np.fromfile(path, dtype=np.uint8).astype(np.int64) - 1
    n = _stl_part(folder / f"{split}_X.bin", 0).shape[0]
    if len(y) != n or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise _corrupt(path, f"{len(y)} labels in 1..10 expected for {n} images")
    return y[:limit] if limit else y


def embedded_arrays(folder: Path, split: str, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    path = folder / EMBEDDED_FILE
    try:
        with np.load(path) as z:
            x, y = z[f"x_{split}"], z[f"y_{split}"].astype(np.int64)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise _corrupt(path, f"{type(e).__name__}: {e}") from e
    if x.ndim != 3 or x.dtype != np.uint8 or len(y) != len(x):
        raise _corrupt(path, f"unexpected arrays x {x.shape} {x.dtype}, y {y.shape}")
    if limit:
        x, y = x[:limit], y[:limit]
    return x[:, None], y
