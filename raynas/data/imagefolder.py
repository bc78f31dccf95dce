"""Your own images: ``data.name=folder`` with ``data.root=DIR``.

GAN training reads every png / jpg / jpeg / webp file under DIR, recursively (or under ``DIR/<split>`` when
that folder exists, so a classifier layout also trains a GAN on its training split), resized so the shorter
side is the run's resolution and centre-cropped to a square, as 1 (luminance) or 3 (RGB) channels.
Classifiers read ``DIR/train/<class>/...`` and ``DIR/test/<class>/...``: the sorted class folder names of
``train`` are the classes (at least two), and ``test`` must hold the same class folders.

Every problem is one DatasetError that names the folder (or file) and what is wrong with it.
``content_stamp`` hashes the files' relative paths, sizes and modification times, so caches keyed by it
(the in-process image cache, FID's real statistics) see a folder whose files changed as a new dataset.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from raynas.errors import DatasetError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
SPLITS = ("train", "test")
HOW = "data.name=folder reads DIR given as data.root=DIR (or --data-root DIR)"


def folder_root(root: str | os.PathLike | None) -> Path:
    """The folder ``data.root`` names; it must exist."""
    if root is None or str(root) == "":
        raise DatasetError("data.name=folder needs the folder of your images: --set data.root=DIR (or --data-root DIR)")
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"image folder {path} does not exist; {HOW}")
    if not path.is_dir():
        raise DatasetError(f"image folder {path} is not a folder; {HOW}")
    return path


def split_folder(root: Path, split: str) -> Path:
    """Where a split's images are: ``root/split`` when it exists, else all of ``root`` for ``train``."""
    if (root / split).is_dir():
        return root / split
    if split == "train":
        return root
    raise DatasetError(f"image folder {root} has no {split}/ folder: put the {split} images into {root / split}, or "
                       f"use split train (every image under {root}), e.g. --set eval.real_split=train to compare "
                       "a GAN's samples with the training images")


def find_images(folder: Path) -> list[Path]:
    """Every image file under ``folder``, recursively, sorted by relative path (hidden files skipped)."""
    out = []
    for dirpath, dirnames, files in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in files if f.lower().endswith(EXTENSIONS) and not f.startswith(".")]
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def _images_or_fail(folder: Path, what: str = "") -> list[Path]:
    files = find_images(folder)
    if not files:
        raise DatasetError(f"image folder {folder}{what} holds no images ({', '.join(EXTENSIONS)}, searched "
                           "recursively)")
    return files


def read_image(path: Path, resolution: int, channels: int) -> np.ndarray:
    """One file as uint8 (channels, resolution, resolution): turned upright (EXIF orientation), shorter side
    resized, centre-cropped."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)  # photos: upright as a viewer shows them
            im = im.convert("L" if channels == 1 else "RGB")
            im = ImageOps.fit(im, (resolution, resolution), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))
            arr = np.asarray(im, dtype=np.uint8)
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds of errors on bad files
        raise DatasetError(f"cannot read image {path} ({type(e).__name__}: {e}); delete or replace the file") from e
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def read_images(files: list[Path], resolution: int, channels: int) -> np.ndarray:
    """The files as one uint8 (N, channels, resolution, resolution) array."""
    out = np.empty((len(files), channels, resolution, resolution), dtype=np.uint8)
    for i, path in enumerate(files):
        out[i] = read_image(path, resolution, channels)
    return out


def class_folders(root: Path) -> tuple[str, ...]:
    """The classes of a classifier folder: the sorted folders of ``root/train`` (at least two), each with
    images, and the same class folders in ``root/test``."""
    for split in SPLITS:
        if not (root / split).is_dir():
            raise DatasetError(f"image folder {root} has no {split}/ folder; a classifier reads "
                               f"{root}/train/<class>/... and {root}/test/<class>/...")
    classes = tuple(sorted(e.name for e in os.scandir(root / "train") if e.is_dir() and not e.name.startswith(".")))
    if len(classes) < 2:
        found = f"only the class {classes[0]!r}" if classes else "no class folders"
        raise DatasetError(f"image folder {root / 'train'} has {found}; a classifier needs at least two class "
                           "folders train/<class>/")
    test = {e.name for e in os.scandir(root / "test") if e.is_dir() and not e.name.startswith(".")}
    missing, extra = [c for c in classes if c not in test], sorted(test - set(classes))
    if missing:
        raise DatasetError(f"image folder {root / 'test'} lacks the class folder(s) {', '.join(missing)} that "
                           f"{root / 'train'} has; both need the same class folders")
    if extra:
        raise DatasetError(f"image folder {root / 'test'} has class folder(s) {', '.join(extra)} that "
                           f"{root / 'train'} lacks; both need the same class folders")
    for split in SPLITS:
        for c in classes:
            _images_or_fail(root / split / c, " (a class folder)")
    return classes


def split_files(root: Path, split: str) -> list[Path]:
    """Every image a split reads, sorted by relative path (the order of ``load_images`` and ``labels``)."""
    return _images_or_fail(split_folder(root, split))


def labels(root: Path, split: str, files: list[Path]) -> list[int]:
    """The class index of each of a classifier split's ``files``: the class folder it lies in."""
    index = {c: i for i, c in enumerate(class_folders(root))}
    out = []
    for p in files:
        parts = p.relative_to(root / split).parts
        if len(parts) < 2 or parts[0] not in index:
            raise DatasetError(f"image {p} lies outside the class folders of {root / split}; a classifier reads "
                               f"{root / split}/<class>/... only")
        out.append(index[parts[0]])
    return out


def num_classes(root: str | os.PathLike | None) -> int:
    """How many classes the classifier folder ``root`` has."""
    return len(class_folders(folder_root(root)))


def content_stamp(files: list[Path], base: Path) -> str:
    """sha256 over the files' paths relative to ``base``, sizes and modification times (nanoseconds)."""
    h = hashlib.sha256()
    for p in files:
        try:
            st = p.stat()
        except OSError as e:
            raise DatasetError(f"cannot read image {p} ({e}); delete or replace the file") from e
        h.update(f"{p.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
