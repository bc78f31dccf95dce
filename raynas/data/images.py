"""load_images / load_labels: decode, pad or resize, convert channels, cache in-process."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from raynas.device import compute_dtype
from raynas.errors import DatasetError

from . import imagefolder, readers
from .locate import resolve_root
from .specs import ALL_DATASETS, DatasetSpec, get_spec

# Luminance weights of ITU-R BT.601 (the ones PIL's "L" mode uses).
_LUMA = (0.299, 0.587, 0.114)
_CHUNK_BYTES = 64 << 20  # float32 working memory per resize chunk


def _check_args(spec: DatasetSpec, split: str, resolution: int | None, channels: int | None,
                limit: int) -> tuple[int, int]:
    spec.check_split(split)
    res = spec.default_resolution if resolution is None else resolution
    ch = spec.default_channels if channels is None else channels
    if isinstance(res, bool) or not isinstance(res, int) or res < 1:
        raise DatasetError(f"resolution must be a positive integer, got {resolution!r}")
    if ch not in (1, 3):
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise DatasetError(f"limit must be an integer >= 0 (0 = all images), got {limit!r}")
    return res, ch


def convert_chunk(x: torch.Tensor, resolution: int, channels: int, pad_to: int | None = None) -> torch.Tensor:
    """uint8 (N, C, H, H) -> uint8 (N, channels, resolution, resolution).

    Zero padding when ``resolution == pad_to`` and the image is smaller (the 28 -> 32 convention of
    the GAN papers); otherwise bilinear resizing, antialiased when shrinking, rounded back to uint8.
    RGB -> gray uses BT.601 luminance; gray -> RGB repeats the channel.
    """
    native_c, side = x.shape[1], x.shape[-1]
    if native_c == channels and side == resolution:
        return x
    if pad_to is not None and resolution == pad_to and side < resolution and native_c == 1:
        lo = (resolution - side) // 2
        x = F.pad(x, (lo, resolution - side - lo, lo, resolution - side - lo))
        return x.repeat(1, channels, 1, 1) if channels != 1 else x
    needs_float = side != resolution or (native_c == 3 and channels == 1)
    if not needs_float:
        return x.repeat(1, channels, 1, 1)
    f = x.to(compute_dtype())
    if native_c == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=f.dtype).view(1, 3, 1, 1)
        f = (f * w).sum(1, keepdim=True)
    if side != resolution:
        f = F.interpolate(f, size=(resolution, resolution), mode="bilinear", align_corners=False,
                          antialias=resolution < side)
    out = f.round_().clamp_(0, 255).to(torch.uint8)
    return out.repeat(1, channels, 1, 1) if out.shape[1] != channels else out


def convert_images(parts: list[np.ndarray], resolution: int, channels: int,
                   pad_to: int | None = None) -> torch.Tensor:
    """Convert (possibly memory-mapped) uint8 parts into one tensor, a bounded chunk at a time."""
    n = sum(len(p) for p in parts)
    out = torch.empty((n, channels, resolution, resolution), dtype=torch.uint8)
    at = 0
    for part in parts:
        if len(part) == 0:
            continue
        c, side = part.shape[1], part.shape[-1]
        chunk = max(1, _CHUNK_BYTES // (4 * max(c, channels) * max(side, resolution) ** 2))
        for i in range(0, len(part), chunk):
            x = torch.from_numpy(np.array(part[i:i + chunk]))  # copy: sources may be read-only
            out[at:at + len(x)] = convert_chunk(x, resolution, channels, pad_to)
            at += len(x)
    return out


def _raw_images(spec: DatasetSpec, folder: Path, split: str, limit: int) -> list[np.ndarray]:
    if spec.name == "embedded":
        return [readers.embedded_arrays(folder, split, limit)[0]]
    if spec.name in ("fashion-mnist", "mnist"):
        return [readers.fashion_images(folder, split, limit)]
    if spec.name in ("cifar10", "cifar100"):
        return [readers.cifar_arrays(folder, split, limit, spec.name)[0]]
    return readers.stl_parts(folder, split, limit)


def _check_in_memory(spec: DatasetSpec) -> None:
    if not spec.in_memory:
        held = ", ".join(n for n, s in ALL_DATASETS.items() if s.in_memory)
        raise DatasetError(f"dataset {spec.name!r} ({spec.title}) is too large to load as one tensor; "
                           f"raynas.classify.data streams it through a DataLoader. Datasets load_images reads: "
                           f"{held}")


@functools.lru_cache(maxsize=6)
def _cached_images(name: str, split: str, folder: str, resolution: int, channels: int,
                   limit: int) -> torch.Tensor:
    spec = get_spec(name)
    raw = _raw_images(spec, Path(folder), split, limit)
    return convert_images(raw, resolution, channels, spec.pad_to)


def load_images(name: str, split: str = "train", *, root: str | os.PathLike | None = None,
                resolution: int | None = None, channels: int | None = None, limit: int = 0) -> torch.Tensor:
    """A dataset split as a uint8 (N, C, H, W) CPU tensor at the requested size.

    ``folder`` (``root`` = your image folder, :mod:`raynas.data.imagefolder`) reads every image under it,
    shorter side resized and centre-cropped to ``resolution``. Defaults per dataset: CIFAR-10/100 32 px RGB,
    STL-10 48 px RGB, MNIST, Fashion-MNIST and the embedded subset 32 px gray (28 px padded by 2 px of zeros
    each side; any other size is resized from 28 px).
    ImageNet is not held in memory (DatasetError); ``raynas.classify.data`` reads it with a DataLoader.
    ``limit`` keeps the first N images (0 = all). Results are cached in-process, so a repeated call
    returns the SAME tensor: clone it before modifying it in place.
    """
    spec = get_spec(name)
    _check_in_memory(spec)
    res, ch = _check_args(spec, split, resolution, channels, limit)
    folder = resolve_root(spec.name, root, split=split)
    if spec.name == "folder":  # keyed by the files' stamp: changed files are read again
        files = _folder_files(folder, split, limit)
        return _cached_folder_images(str(folder), split, res, ch, limit, imagefolder.content_stamp(files, folder))
    return _cached_images(spec.name, split, str(folder), res, ch, limit)


def _folder_files(folder: Path, split: str, limit: int) -> list[Path]:
    files = imagefolder.split_files(folder, split)
    return files[:limit] if limit else files


@functools.lru_cache(maxsize=6)
def _cached_folder_images(folder: str, split: str, resolution: int, channels: int, limit: int,
                          stamp: str) -> torch.Tensor:
    files = _folder_files(Path(folder), split, limit)
    return torch.from_numpy(imagefolder.read_images(files, resolution, channels))


@functools.lru_cache(maxsize=6)
def _cached_labels(name: str, split: str, folder: str, limit: int) -> torch.Tensor:
    spec, path = get_spec(name), Path(folder)
    if spec.name == "embedded":
        y = readers.embedded_arrays(path, split, limit)[1]
    elif spec.name in ("fashion-mnist", "mnist"):
        y = readers.fashion_labels(path, split, limit)
    elif spec.name in ("cifar10", "cifar100"):
        y = readers.cifar_arrays(path, split, limit, spec.name)[1]
    else:
        y = readers.stl_labels(path, split, limit)
    y = np.asarray(y, dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() >= spec.num_classes):
        raise DatasetError(f"labels of {spec.name!r} split {split!r} in {folder} range over {y.min()}..{y.max()}, "
                           f"not 0..{spec.num_classes - 1}; the files belong to another dataset or are damaged")
    return torch.from_numpy(y.copy())


def load_labels(name: str, split: str = "train", *, root: str | os.PathLike | None = None,
                limit: int = 0) -> torch.Tensor:
    """Class indices (int64, 0..num_classes-1) aligned with ``load_images`` of the same split/limit."""
    spec = get_spec(name)
    _check_in_memory(spec)
    _check_args(spec, split, None, None, limit)
    if split not in spec.labelled_splits:
        raise DatasetError(f"split {split!r} of {spec.name!r} has no labels; labelled splits: "
                           f"{', '.join(spec.labelled_splits)}")
    folder = resolve_root(spec.name, root, split=split)
    if spec.name == "folder":
        return torch.tensor(imagefolder.labels(folder, split, _folder_files(folder, split, limit)), dtype=torch.int64)
    return _cached_labels(spec.name, split, str(folder), limit)


def dataset_classes(name: str, root: str | os.PathLike | None = None) -> int:
    """How many classes a classifier has on ``name``: the spec's count, or the class folders of ``folder``."""
    spec = get_spec(name)
    if spec.name == "folder":
        return imagefolder.num_classes(root)
    return spec.num_classes


def clear_cache() -> None:
    """Drop cached tensors (e.g. after replacing files on disk, or to free memory)."""
    from .folders import clear_folder_cache

    _cached_images.cache_clear()
    _cached_folder_images.cache_clear()
    _cached_labels.cache_clear()
    clear_folder_cache()
