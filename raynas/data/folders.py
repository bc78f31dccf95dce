"""Image-folder datasets (ImageNet): ROOT/<split>/<class>/<image>, scanned once, decoded lazily with PIL.

A folder split is never held in memory; ``raynas.classify.data`` reads it through a DataLoader. Class
indices come from the sorted class folder names of the training split (torchvision's ImageFolder
convention), so the train and validation splits agree even when one of them lacks a class.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from raynas.errors import DatasetError

from .locate import resolve_root
from .specs import get_spec

# The extensions torchvision's ImageFolder accepts.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class FolderIndex:
    """The files of one split: ``paths[i]`` has class ``targets[i]``; sorted by class, then file name."""

    root: Path
    split: str
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    targets: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.paths)


def _class_folders(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir())
    except OSError as e:
        raise DatasetError(f"cannot list {folder}: {e}") from e


def scan_split(root: Path, split: str, classes: tuple[str, ...] | None = None) -> FolderIndex:
    """Every image file under ``root/split/<class>/`` (files of other types are skipped)."""
    folder = root / split
    found = _class_folders(folder)
    if classes is None:
        classes = tuple(found)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DatasetError(f"{folder} has class folders that the training split lacks: {', '.join(unknown[:5])}"
                           f"{' ...' if len(unknown) > 5 else ''}; both splits need the same class folders")
    index = {c: i for i, c in enumerate(classes)}
    paths: list[str] = []
    targets: list[int] = []
    for c in found:
        for dirpath, _, files in sorted(os.walk(folder / c, followlinks=True)):
            for f in sorted(files):
                if f.lower().endswith(IMG_EXTENSIONS):
                    paths.append(os.path.join(dirpath, f))
                    targets.append(index[c])
    if not paths:
        raise DatasetError(f"{folder} holds no images ({', '.join(IMG_EXTENSIONS)}) in its class folders")
    return FolderIndex(root=root, split=split, classes=classes, paths=tuple(paths), targets=tuple(targets))


@functools.lru_cache(maxsize=4)
def _cached_index(name: str, split: str, folder: str) -> FolderIndex:
    spec = get_spec(name)
    root = Path(folder)
    classes = None
    if split != spec.train_split and (root / spec.train_split).is_dir():
        classes = tuple(_class_folders(root / spec.train_split))
    return scan_split(root, split, classes)


def folder_index(name: str, split: str, *, root: str | os.PathLike | None = None) -> FolderIndex:
    """The (cached) file list of an image-folder dataset's split, found offline-first like every dataset."""
    spec = get_spec(name)
    spec.check_split(split)
    if spec.in_memory:
        raise DatasetError(f"dataset {spec.name!r} is not an image folder; use load_images / load_labels")
    folder = resolve_root(spec.name, root, split=split)
    return _cached_index(spec.name, split, str(folder))


def clear_folder_cache() -> None:
    _cached_index.cache_clear()
