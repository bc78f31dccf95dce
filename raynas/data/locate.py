"""Find a dataset on disk, offline first.

Order: explicit root -> $RAYNAS_DATA -> known system folders -> torchvision download into
~/.cache/raynas/data (only when the host answers within ~2 s and RAYNAS_OFFLINE is not set) ->
DatasetError listing every place tried and the exact fix. An explicit root that does not hold the
dataset is an error of its own: silently using some other copy would hide a typo.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from raynas.errors import DatasetError

from .specs import DatasetSpec, get_spec

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_FILE = "fashion_mnist_subset.npz"

# Known locations, in order, each also searched for per-dataset subfolders ("~" is expanded per call;
# tests replace this to stay hermetic). The second one is where downloads go.
SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/datasets", "~/.cache/raynas/data", "~/data", "/data", "/datasets")

_FASHION_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_CIFAR100_FILES = {"train": ("train",), "test": ("test",)}
_STL_FILES = {"train": ("train_X.bin",), "test": ("test_X.bin",), "unlabeled": ("unlabeled_X.bin",),
              "train+unlabeled": ("train_X.bin", "unlabeled_X.bin")}

# torchvision's inner folder per dataset, and subfolders that may be the data folder itself.
_INNER: dict[str, tuple[str, ...]] = {
    "cifar10": ("cifar-10-batches-py",),
    "stl10": ("stl10_binary",),
    "fashion-mnist": ("FashionMNIST/raw", "raw"),
    "cifar100": ("cifar-100-python",),
    "mnist": ("MNIST/raw", "raw"),
}
_IDX_DATASETS = ("fashion-mnist", "mnist")   # the same idx file names, told apart by folder names


def cifar_files(name: str) -> dict[str, tuple[str, ...]]:
    """Batch files per split of CIFAR-10 or CIFAR-100 (torchvision's python layout)."""
    return _CIFAR100_FILES if name == "cifar100" else _CIFAR_FILES


def _has_class_folders(folder: Path) -> bool:
    """An ImageFolder split: a folder with at least one class subfolder (stops at the first)."""
    try:
        return folder.is_dir() and any(p.is_dir() for p in folder.iterdir())
    except OSError:
        return False


def offline() -> bool:
    """RAYNAS_OFFLINE=1 (or true/yes) disables every network attempt."""
    return os.environ.get("RAYNAS_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """Where torchvision downloads go (and a location searched before downloading)."""
    return Path.home() / ".cache" / "raynas" / "data"


def idx_file(folder: Path, stem: str) -> Path | None:
    """The decompressed idx file if present (faster), else the gzipped one, else None."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _required(spec: DatasetSpec, folder: Path, split: str | None) -> list[str]:
    """Names of files ``split`` needs that ``folder`` lacks (split None: all splits' image files)."""
    splits = [split] if split is not None else [s for s in spec.splits if s != "train+unlabeled"]
    missing: list[str] = []
    for s in splits:
        if spec.name in _IDX_DATASETS:
            stem = _FASHION_STEMS[s][0]
            if idx_file(folder, stem) is None:
                missing.append(stem + "(.gz)")
        elif spec.name in ("cifar10", "cifar100"):
            missing += [f for f in cifar_files(spec.name)[s] if not (folder / f).is_file()]
        elif spec.name == "imagenet":
            if not _has_class_folders(folder / s):
                missing.append(f"{s}/<class>/ folders")
        elif spec.name == "stl10":
            missing += [f for f in _STL_FILES[s] if not (folder / f).is_file()]
    return missing


def _holds(spec: DatasetSpec, folder: Path, split: str | None) -> bool:
    """True when ``folder`` is a data folder of ``spec`` with the files ``split`` needs.

    With no split, any one complete split suffices (e.g. a CIFAR copy with only test_batch).
    """
    if not folder.is_dir() or _other_idx_dataset(spec, folder):
        return False
    if split is not None:
        return not _required(spec, folder, split)
    return any(not _required(spec, folder, s) for s in spec.splits)


def _other_idx_dataset(spec: DatasetSpec, folder: Path) -> bool:
    """MNIST and Fashion-MNIST share file names: a folder named like Fashion-MNIST (or its raw/ inside
    one) is never taken for MNIST. Fashion-MNIST's own resolution is left as it always was."""
    if spec.name != "mnist":
        return False
    names = [folder.name] + ([folder.parent.name] if folder.name == "raw" else [])
    return any("fashion" in n.lower() or n.lower() == "fmnist" for n in names)


def _candidates(spec: DatasetSpec, base: Path) -> list[Path]:
    """Data folders a base location may hold: itself, its torchvision inner folder, alias subfolders."""
    out: list[Path] = []
    for top in [base, *(base / a for a in spec.aliases)]:
        out.append(top)
        out += [top / inner for inner in _INNER.get(spec.name, ())]
    return out


def _search(spec: DatasetSpec, base: Path, split: str | None) -> Path | None:
    for cand in _candidates(spec, base):
        if _holds(spec, cand, split):
            return cand
    return None


def _has_any(spec: DatasetSpec, folder: Path) -> bool:
    """True when ``folder`` holds at least one file of the dataset (a partial copy)."""
    splits = [s for s in spec.splits if s != "train+unlabeled"]
    return folder.is_dir() and len(_required(spec, folder, None)) < len(
        [f for s in splits for f in _required(spec, Path("/nonexistent/raynas"), s)])


def _describe_miss(spec: DatasetSpec, base: Path, split: str | None) -> str:
    """Why ``base`` did not count; names the missing files of a partial copy."""
    if not base.exists():
        return "does not exist"
    if not base.is_dir():
        return "is not a folder"
    for cand in _candidates(spec, base):
        if _other_idx_dataset(spec, cand) and _has_any(spec, cand):
            return f"{cand} is named like a Fashion-MNIST folder, so it is not taken for MNIST"
        if _has_any(spec, cand):
            return f"{cand} lacks {', '.join(_required(spec, cand, split))}"
    if spec.name == "imagenet":
        return "no train/<class>/ or val/<class>/ folders here"
    inner = _INNER.get(spec.name, ("dataset files",))[0]
    return f"no {inner} here"


def reachable(url: str, timeout: float = 2.0) -> bool:
    """Quick TCP check so an offline machine fails in ~2 s instead of hanging in a download."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _torchvision_download(spec: DatasetSpec, root: Path) -> None:
    from torchvision import datasets as tvd  # lazy: importing torchvision takes seconds

    root.mkdir(parents=True, exist_ok=True)
    # The smallest split: the constructor downloads the whole archive, then decodes only this split.
    if spec.name == "cifar10":
        tvd.CIFAR10(str(root), train=False, download=True)
    elif spec.name == "cifar100":
        tvd.CIFAR100(str(root), train=False, download=True)
    elif spec.name == "mnist":
        tvd.MNIST(str(root), train=False, download=True)
    elif spec.name == "stl10":
        tvd.STL10(str(root), split="test", download=True)
    else:
        tvd.FashionMNIST(str(root), train=False, download=True)


def _system_bases() -> list[Path]:
    return [Path(d).expanduser() for d in SYSTEM_DIRS]


def resolve_root(name: str, root: str | os.PathLike | None = None, *, split: str | None = None,
                 download: bool = True) -> Path:
    """The folder that directly holds the dataset's files (e.g. ``.../cifar-10-batches-py``).

    ``root`` may be that folder, its parent (torchvision's ``root``) or a collection folder with
    per-dataset subfolders. With ``split``, a location only counts when it has that split's files.
    The embedded subset always resolves to the package copy; ``root`` and $RAYNAS_DATA are ignored
    for it because there is nothing to locate. ``folder`` (your own images) is ``root`` itself, which must exist.
    """
    spec = get_spec(name)
    if split is not None:
        spec.check_split(split)
    if spec.name == "embedded":
        if not (EMBEDDED_DIR / EMBEDDED_FILE).is_file():
            raise DatasetError(f"the embedded dataset file {EMBEDDED_DIR / EMBEDDED_FILE} is missing; "
                               f"fix: {spec.fix}")
        return EMBEDDED_DIR

    if spec.name == "folder":  # your own images: only where data.root says, and the split must hold images
        from .imagefolder import folder_root, split_files

        path = folder_root(root)
        if split is not None:
            split_files(path, split)
        return path
    what = f"dataset {spec.name!r} ({spec.title}{', split ' + repr(split) if split else ''})"
    if root is not None and str(root) != "":
        base = Path(root).expanduser()
        found = _search(spec, base, split)
        if found is not None:
            return found
        checked = ", ".join([f"{base} itself", *_INNER.get(spec.name, ())])
        raise DatasetError(f"{what} not found under the given data root {base}: "
                           f"{_describe_miss(spec, base, split)} (checked {checked} "
                           f"and subfolders {', '.join(spec.aliases)}).\nFix: {spec.fix}")

    tried: list[str] = []
    env = os.environ.get("RAYNAS_DATA", "")
    for part in (p for p in env.split(os.pathsep) if p):
        base = Path(part).expanduser()
        found = _search(spec, base, split)
        if found is not None:
            return found
        tried.append(f"$RAYNAS_DATA {base}: {_describe_miss(spec, base, split)}")
    if not env:
        tried.append("$RAYNAS_DATA: not set")

    for base in _system_bases():
        found = _search(spec, base, split)
        if found is not None:
            return found
        tried.append(f"{base}: {_describe_miss(spec, base, split)}")

    if not spec.url:
        tried.append(f"download: {spec.title} has no automatic download")
    elif not download:
        tried.append("download: not attempted (download=False)")
    elif offline():
        tried.append("download: skipped because RAYNAS_OFFLINE is set")
    else:
        url = spec.url
        if not reachable(url):
            tried.append(f"download: {urlparse(url).hostname} is unreachable (no network?)")
        else:
            try:
                _torchvision_download(spec, cache_dir())
            except Exception as e:  # noqa: BLE001 - any failure becomes part of the user-facing message
                tried.append(f"download from {url} into {cache_dir()} failed: {type(e).__name__}: {e}")
            else:
                found = _search(spec, cache_dir(), split)
                if found is not None:
                    return found
                tried.append(f"download into {cache_dir()} finished but {split or 'the'} files are missing")

    lines = "\n".join(f"  - {t}" for t in tried)
    raise DatasetError(f"{what} not found. Looked in (also in subfolders {', '.join(spec.aliases)}):\n"
                       f"{lines}\nFix: {spec.fix}")
