"""Train / val / test data for classification: the search split, augmentation and resumable shuffling.

Parts
-----
``train`` and ``val`` both come from the dataset's training split; ``test`` is its test split (ImageNet:
the ``val`` folder) and is never subset, split or shuffled: it only serves the final report.

1. ``limit`` keeps the first N training images (as ``raynas.data.load_images`` does; for an image folder,
   N images taken round-robin over the classes, so every class keeps images).
2. ``fraction`` in (0, 1] keeps a seeded random subset of ``round(fraction * N)`` of those, in their
   original order.
3. ``train_portion`` splits what is left as DARTS does: the first ``floor(train_portion * N)`` images
   are ``train``, the rest ``val`` (``train_portion=1``: no ``val``). An image folder is sorted by
   class, so there the split is taken within each class (the first portion of each class's files).

Batches
-------
Small datasets (everything but ImageNet) live on the training device as uint8; ``train_batches`` draws
a seeded permutation and crops, flips, normalises and cuts out whole batches there (see
``raynas.classify.augment``). ImageNet is decoded from JPEG by a DataLoader with DARTS' ImageNet
transforms (RandomResizedCrop, flip, ColorJitter(0.4, 0.4, 0.4, 0.2); eval: resize to 256/224 of the
size, centre crop), handed over as uint8 and normalised (and cut out) on the device. Every random
choice comes from one CPU generator per part whose state, with the current permutation and position,
is in ``state_dict()``: a resumed run sees exactly the batches an uninterrupted one would. (ImageNet
augmentation is seeded per image from the same state, so it is reproducible across worker counts.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from raynas.data import get_spec, imagefolder, load_images, load_labels, resolve_root
from raynas.data.folders import FolderIndex, folder_index
from raynas.errors import ConfigError, DatasetError

from .augment import NO_FLIP, augment_batch, cutout, normalization, normalize

PARTS = ("train", "val", "test")
TRAIN_PARTS = ("train", "val")
_SEED_RANGE = 2**62
_IMAGENET_RESIZE = 256 / 224   # eval: resize the short side to 256 for a 224 crop (DARTS train_imagenet.py)


# ----------------------------------------------------------------------------- index helpers
def subset_indices(n: int, fraction: float, seed: int) -> torch.Tensor:
    """A seeded subset of ``round(fraction * n)`` (at least 1) of ``range(n)``, in increasing order."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"data.fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1.0:
        return torch.arange(n)
    k = max(1, round(fraction * n))
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[:k].sort().values


def split_indices(indices: torch.Tensor, train_portion: float,
                  groups: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """DARTS' search split: the first ``floor(train_portion * n)`` indices train, the rest validate.

    With ``groups`` (a class per index) the split is taken within each group, in order.
    """
    if not 0.0 < train_portion <= 1.0:
        raise ConfigError(f"data.train_portion must be in (0, 1], got {train_portion!r}")
    if groups is None:
        cut = int(math.floor(train_portion * len(indices)))
        return indices[:cut], indices[cut:]
    train_mask = torch.zeros(len(indices), dtype=torch.bool)
    for g in groups.unique():
        where = (groups == g).nonzero().flatten()
        train_mask[where[:int(math.floor(train_portion * len(where)))]] = True
    return indices[train_mask], indices[~train_mask]


def round_robin_limit(targets: torch.Tensor, limit: int) -> torch.Tensor:
    """Positions of ``limit`` items taken class by class in turns (each class's files in order),
    returned in increasing order; all positions when ``limit`` is 0 or not smaller than the count."""
    n = len(targets)
    if not limit or limit >= n:
        return torch.arange(n)
    order = torch.argsort(targets, stable=True)
    sorted_t = targets[order]
    starts = torch.searchsorted(sorted_t, sorted_t, right=False)
    rank = torch.empty(n, dtype=torch.long)
    rank[order] = torch.arange(n) - starts
    key = rank * (int(targets.max()) + 1) + targets
    return torch.argsort(key, stable=True)[:limit].sort().values


# ----------------------------------------------------------------------------- sampling
class EpochSampler:
    """Seeded passes over ``n`` items: a new permutation whenever the previous one is used up.

    ``state_dict()`` holds the generator, the current permutation and the position in it, so a restored
    sampler continues mid-pass exactly where the saved one was. The generator also supplies the
    augmentation randomness of the batches it hands out, and one ``pass_seed`` per pass (for
    per-image seeds of DataLoader augmentation).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = int(n)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.perm: torch.Tensor | None = None
        self.pos = 0
        self.passes = 0
        self.pass_seed = 0

    def left(self) -> int:
        return 0 if self.perm is None else self.n - self.pos

    def _start(self) -> None:
        self.perm = torch.randperm(self.n, generator=self.generator)
        self.pass_seed = int(torch.randint(0, _SEED_RANGE, (1,), generator=self.generator))
        self.pos = 0
        self.passes += 1

    def pending(self, batch_size: int, drop_last: bool = False) -> list[torch.Tensor]:
        """Index batches for the rest of the current pass (a new pass if it is finished), not yet taken."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        left = self.left()
        if left == 0 or (drop_last and left < batch_size):
            self._start()
        assert self.perm is not None
        stop = self.n - (self.n - self.pos) % batch_size if drop_last else self.n
        return [self.perm[i:min(i + batch_size, stop)] for i in range(self.pos, stop, batch_size)]

    def advance(self, k: int) -> None:
        self.pos += int(k)

    def take(self, batch_size: int) -> torch.Tensor:
        """The next ``batch_size`` indices as an endless stream (continuing into new passes)."""
        pieces, need = [], int(batch_size)
        while need > 0:
            if self.left() == 0:
                self._start()
            assert self.perm is not None
            k = min(need, self.left())
            pieces.append(self.perm[self.pos:self.pos + k])
            self.pos += k
            need -= k
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "n": self.n, "pos": self.pos, "passes": self.passes,
                "pass_seed": self.pass_seed, "perm": None if self.perm is None else self.perm.to(torch.int32)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["n"]) != self.n:
            raise ConfigError(f"the saved sampler covers {state['n']} images but this data has {self.n}; "
                              "resume with the same dataset, limit, fraction and train_portion")
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8).cpu())
        self.perm = None if state["perm"] is None else torch.as_tensor(state["perm"]).long().cpu()
        self.pos = int(state["pos"])
        self.passes = int(state["passes"])
        self.pass_seed = int(state["pass_seed"])


# ----------------------------------------------------------------------------- image folders
class _FolderImages(Dataset):
    """Files of an image folder decoded with PIL and transformed to uint8 CHW tensors.

    An item is a position or ``(position, seed)``; with a seed the random transform runs under that
    seed (in a forked RNG, so the process's global RNG is untouched).
    """

    def __init__(self, paths: list[str], targets: list[int], transform: Any, channels: int) -> None:
        self.paths, self.targets = paths, targets
        self.transform = transform
        self.mode = "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        from PIL import Image

        i, seed = item if isinstance(item, tuple) else (item, None)
        try:
            with Image.open(self.paths[i]) as f:
                img = f.convert(self.mode)
        except OSError as e:
            raise DatasetError(f"cannot decode image {self.paths[i]} ({e}); delete or replace the file") from e
        if seed is None:
            out = self.transform(img)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                out = self.transform(img)
        return out, self.targets[i]


def _folder_transforms(resolution: int, flip: bool) -> tuple[Any, Any]:
    import torchvision.transforms as T  # lazy: importing torchvision takes seconds

    train = [T.RandomResizedCrop(resolution)]
    if flip:
        train.append(T.RandomHorizontalFlip())
    train += [T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2), T.PILToTensor()]
    test = [T.Resize(round(resolution * _IMAGENET_RESIZE)), T.CenterCrop(resolution), T.PILToTensor()]
    return T.Compose(train), T.Compose(test)


class _SeededBatches:
    """A batch sampler over a fixed list of ``(position, seed)`` batches (computed before iterating, so a
    prefetching DataLoader cannot move the sampler's state ahead of what was consumed)."""

    def __init__(self, batches: list[list[tuple[int, int]]]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


# ----------------------------------------------------------------------------- the data object
class ClassifyData:
    """Labelled ``train`` / ``val`` / ``test`` parts of one dataset on one device (see the module doc).

    ``train_batches(batch_size, part=...)`` yields one pass of augmented, normalised float batches and
    int64 labels on the device; ``next_batch`` is the endless version (DARTS' architect draws its
    validation batches that way); ``eval_batches(part)`` yields un-augmented batches in order.
    """

    def __init__(self, name: str = "embedded", *, root: str | os.PathLike | None = None,
                 resolution: int | None = None, channels: int | None = None, train_portion: float = 0.5,
                 fraction: float = 1.0, limit: int = 0, test_limit: int = 0, seed: int = 0,
                 device: torch.device | str = "cpu", flip: bool | None = None, crop_padding: int = 4,
                 num_workers: int = 4) -> None:
        self.spec = spec = get_spec(name)
        if "train" not in spec.labelled_splits or spec.test_split not in spec.labelled_splits:
            raise ConfigError(f"dataset {spec.name!r} has no labelled train and test splits")
        for key, value in (("limit", limit), ("test_limit", test_limit), ("crop_padding", crop_padding),
                           ("num_workers", num_workers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"data.{key} must be an integer >= 0, got {value!r}")
        self.name = spec.name
        self.seed = int(seed)
        self.device = torch.device(device)
        self.flip = spec.name not in NO_FLIP if flip is None else bool(flip)
        self.crop_padding = crop_padding
        self.num_workers = num_workers
        self.train_portion = float(train_portion)
        self.fraction = float(fraction)
        self.in_channels = spec.default_channels if channels is None else int(channels)
        self.resolution = spec.default_resolution if resolution is None else int(resolution)
        if self.in_channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3, got {channels!r}")
        self.num_classes = spec.num_classes
        self.classes: tuple[str, ...] = spec.classes
        self.mean, self.std = normalization(spec.name, self.in_channels)
        self._mean = torch.tensor(self.mean, device=self.device)
        self._std = torch.tensor(self.std, device=self.device)
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._folders: dict[str, _FolderImages] = {}
        if spec.in_memory:
            self._load_tensors(root, resolution, channels, limit, test_limit)
        else:
            self._load_folders(root, limit, test_limit)
        self.sizes = {p: self._size(p) for p in PARTS if self._size(p) > 0}
        if "train" not in self.sizes:
            raise ConfigError(f"train_portion={train_portion} of {self._size('train') + self._size('val')} "
                              "training images leaves no image to train on")
        self.samplers = {p: EpochSampler(self.sizes[p], self.seed + 1 + i)
                         for i, p in enumerate(TRAIN_PARTS) if p in self.sizes}

    # ------------------------------------------------------------------ building
    def _load_tensors(self, root: Any, resolution: int | None, channels: int | None, limit: int,
                      test_limit: int) -> None:
        kw = {"root": root, "resolution": resolution, "channels": channels}
        x = load_images(self.name, "train", limit=limit, **kw)
        y = load_labels(self.name, "train", root=root, limit=limit)
        if self.name == "folder":  # your own images: the classes are the class folders
            self.classes = imagefolder.class_folders(resolve_root(self.name, root))
            self.num_classes = len(self.classes)
        keep = subset_indices(len(x), self.fraction, self.seed)
        tr, va = split_indices(keep, self.train_portion)
        test = self.spec.test_split
        xt = load_images(self.name, test, limit=test_limit, **kw)
        yt = load_labels(self.name, test, root=root, limit=test_limit)
        for part, (xs, ys) in (("train", (x[tr], y[tr])), ("val", (x[va], y[va])), ("test", (xt, yt))):
            self._tensors[part] = (xs.to(self.device), ys.to(self.device))

    def _load_folders(self, root: Any, limit: int, test_limit: int) -> None:
        train_tf, test_tf = _folder_transforms(self.resolution, self.flip)
        index = folder_index(self.name, "train", root=root)
        targets = torch.tensor(index.targets)
        keep = round_robin_limit(targets, limit)
        keep = keep[subset_indices(len(keep), self.fraction, self.seed)]
        tr, va = split_indices(keep, self.train_portion, groups=targets[keep])
        test_index = folder_index(self.name, self.spec.test_split, root=root)  # classes of the train split
        tkeep = round_robin_limit(torch.tensor(test_index.targets), test_limit)
        self.num_classes = len(index.classes)
        self.classes = index.classes
        for part, idx, src, tf in (("train", tr, index, train_tf), ("val", va, index, train_tf),
                                   ("test", tkeep, test_index, test_tf)):
            self._folders[part] = self._folder_part(src, idx, tf)
        self._eval_tf = test_tf

    def _folder_part(self, index: FolderIndex, idx: torch.Tensor, transform: Any) -> _FolderImages:
        pos = idx.tolist()
        return _FolderImages([index.paths[i] for i in pos], [index.targets[i] for i in pos], transform,
                             self.in_channels)

    def _size(self, part: str) -> int:
        if part in self._tensors:
            return len(self._tensors[part][1])
        return len(self._folders[part]) if part in self._folders else 0

    @classmethod
    def from_config(cls, cfg: Any, *, device: torch.device | str = "cpu", seed: int | None = None) -> ClassifyData:
        """From a config section (or anything) with the attributes name, root, resolution, channels,
        train_portion, fraction, limit, test_limit, num_workers (missing ones take the defaults)."""
        def get(key: str, default: Any) -> Any:
            value = getattr(cfg, key, default)
            return default if value is None else value

        return cls(get("name", "embedded"), root=getattr(cfg, "root", None),
                   resolution=getattr(cfg, "resolution", None) or None,
                   channels=getattr(cfg, "channels", None) or None,
                   train_portion=get("train_portion", 0.5), fraction=get("fraction", 1.0), limit=get("limit", 0),
                   test_limit=get("test_limit", 0), num_workers=get("num_workers", 4),
                   seed=get("seed", 0) if seed is None else seed, device=device)

    # ------------------------------------------------------------------ queries
    def has(self, part: str) -> bool:
        return part in self.sizes

    def _check_part(self, part: str, parts: tuple[str, ...]) -> None:
        if part == "test" and part not in parts:
            raise ConfigError("the test split is only for the final report: train and select on 'train' and "
                              "'val' (data.train_portion < 1 makes a validation part)")
        if part not in parts:
            raise ConfigError(f"unknown data part {part!r}; valid: {', '.join(parts)}")
        if part not in self.sizes:
            raise ConfigError(f"there is no {part!r} part: data.train_portion={self.train_portion} uses the whole "
                              "training split for training; set it below 1 to hold out a validation part")

    def num_batches(self, part: str, batch_size: int, drop_last: bool = False) -> int:
        n = self.sizes.get(part, 0)
        return n // batch_size if drop_last else -(-n // batch_size)

    @property
    def on_device(self) -> bool:
        """True when the images live on the training device (everything but image folders)."""
        return bool(self._tensors)

    def to(self, device: torch.device | str) -> ClassifyData:
        """Move the data (not the samplers: they live on the CPU) to ``device``; returns self."""
        device = torch.device(device)
        if device == self.device:
            return self
        self.device = device
        self._mean, self._std = self._mean.to(device), self._std.to(device)
        self._tensors = {p: (x.to(device), y.to(device)) for p, (x, y) in self._tensors.items()}
        return self

    # ------------------------------------------------------------------ batches
    def _augment(self, x: torch.Tensor, generator: torch.Generator, cutout_length: int) -> torch.Tensor:
        return augment_batch(x, self._mean, self._std, generator, padding=self.crop_padding, flip=self.flip,
                             cutout_length=cutout_length)

    def _tensor_batch(self, part: str, idx: torch.Tensor, cutout_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._tensors[part]
        idx = idx.to(self.device, non_blocking=True)
        return self._augment(x.index_select(0, idx), self.samplers[part].generator, cutout_length), y[idx]

    def _folder_loader(self, dataset: Dataset, batch_sampler: Any) -> DataLoader:
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=self.num_workers,
                          pin_memory=self.device.type == "cuda")

    def _finish(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None,
                cutout_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = normalize(x.to(self.device, non_blocking=True), self._mean, self._std)
        if generator is not None and cutout_length > 0:
            n, _, h, w = x.shape
            centers = torch.stack([torch.randint(0, h, (n,), generator=generator),
                                   torch.randint(0, w, (n,), generator=generator)], 1)
            x = cutout(x, cutout_length, centers.to(self.device))
        return x, y.to(self.device, non_blocking=True)

    def train_batches(self, batch_size: int, *, part: str = "train", cutout_length: int = 0,
                      drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled, augmented pass over ``part`` (the rest of the current pass after a resume)."""
        self._check_part(part, TRAIN_PARTS)
        sampler = self.samplers[part]
        batches = sampler.pending(batch_size, drop_last)
        if self._tensors:
            for idx in batches:
                out = self._tensor_batch(part, idx, cutout_length)
                sampler.advance(len(idx))
                yield out
            return
        base = sampler.pass_seed
        plan = [[(int(i), (base + sampler.pos + j * batch_size + k) % _SEED_RANGE) for k, i in enumerate(b.tolist())]
                for j, b in enumerate(batches)]
        for (x, y), idx in zip(self._folder_loader(self._folders[part], _SeededBatches(plan)), batches):
            sampler.advance(len(idx))
            yield self._finish(x, y, sampler.generator, cutout_length)

    def next_batch(self, batch_size: int, *, part: str = "train",
                   cutout_length: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The next augmented batch of an endless stream over ``part`` (shares the pass with train_batches)."""
        self._check_part(part, TRAIN_PARTS)
        sampler = self.samplers[part]
        start = sampler.pos if sampler.left() else 0
        idx = sampler.take(batch_size)
        if self._tensors:
            return self._tensor_batch(part, idx, cutout_length)
        ds = self._folders[part]
        items = [ds[(int(i), (sampler.pass_seed + start + k) % _SEED_RANGE)] for k, i in enumerate(idx.tolist())]
        x = torch.stack([a for a, _ in items])
        y = torch.tensor([b for _, b in items])
        return self._finish(x, y, sampler.generator, cutout_length)

    def eval_batches(self, part: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``part`` in order, without augmentation: normalised float images and labels on the device."""
        self._check_part(part, PARTS)
        if batch_size < 1:
            raise ConfigError(f"eval batch_size must be >= 1, got {batch_size}")
        if self._tensors:
            x, y = self._tensors[part]
            for i in range(0, len(y), batch_size):
                yield normalize(x[i:i + batch_size], self._mean, self._std), y[i:i + batch_size]
            return
        ds = self._folders[part]
        if part != "test":  # val images come from the training folder: evaluate them like test images
            ds = _FolderImages(ds.paths, ds.targets, self._eval_tf, self.in_channels)
        batches = [list(range(i, min(i + batch_size, len(ds)))) for i in range(0, len(ds), batch_size)]
        for x, y in self._folder_loader(ds, batches):
            yield self._finish(x, y, None, 0)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The samplers' state: what a resumed run needs to draw the same batches."""
        return {"samplers": {p: s.state_dict() for p, s in self.samplers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("samplers", {})
        if set(saved) != set(self.samplers):
            raise ConfigError(f"the saved data state has parts {sorted(saved)} but this data has "
                              f"{sorted(self.samplers)}; resume with the same data.train_portion")
        for p, s in saved.items():
            self.samplers[p].load_state_dict(s)

    def describe(self) -> str:
        parts = ", ".join(f"{p} {n}" for p, n in self.sizes.items())
        return (f"{self.name} {self.in_channels}x{self.resolution}x{self.resolution}, {self.num_classes} classes "
                f"({parts})")
