"""Image sources for the metrics: a generator, a dataset, a folder of images, or a tensor.

Every source hands torch-fidelity uint8 images shaped (3, H, W): grayscale is repeated to three channels
(Inception needs RGB; the Fashion-MNIST CNN turns RGB back into luminance, which is exact for repeated
gray). Finite sources larger than the requested sample count contribute a fixed random subset (seed 0),
so the same request always sees the same images and class-sorted datasets are not cut to a few classes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_fidelity.generative_model_base import GenerativeModelBase
from torch_fidelity.registry import NOISE_SOURCE_REGISTRY

from raynas.device import Precision, at_least_float32, resolve_device
from raynas.errors import MetricsError, RaynasError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
SUBSET_SEED = 0
NOISE_SEED = 2020  # torch-fidelity's default rng_seed; the same z for every evaluation of a generator


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 in [0, 255] (rounded, clamped)."""
    return ((at_least_float32(x) + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Repeat 1-channel images (B,1,H,W) or (1,H,W) to 3 channels; 3-channel images pass through."""
    c = x.shape[-3]
    if c == 3:
        return x
    if c == 1:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]).contiguous()
    raise MetricsError(f"images must have 1 or 3 channels; got shape {tuple(x.shape)}")


def subset_indices(total: int, n: int) -> np.ndarray:
    """The fixed random subset of ``n`` out of ``total`` items (all of them, in order, when n >= total)."""
    if n >= total:
        return np.arange(total)
    return np.sort(np.random.RandomState(SUBSET_SEED).permutation(total)[:n])


class _TensorImages(Dataset):
    """uint8 (N,C,H,W) tensor -> uint8 (3,H,W) items, optionally loaded on first access."""

    def __init__(self, load: Callable[[], torch.Tensor]) -> None:
        self._load = load
        self._images: torch.Tensor | None = None

    @property
    def images(self) -> torch.Tensor:
        if self._images is None:
            self._images = self._load()
        return self._images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return to_rgb(self.images[i])


class Source(ABC):
    """Something that yields uint8 images for the metrics."""

    @abstractmethod
    def describe(self) -> str:
        """A short human-readable name, used in messages."""

    def cache_identity(self) -> dict[str, Any] | None:
        """What identifies this source's images for the real-statistics cache (None: not cacheable)."""
        return None


class FiniteSource(Source):
    """A source holding a fixed set of images."""

    @abstractmethod
    def dataset(self, num_samples: int) -> Dataset:
        """A lazy torch Dataset of min(num_samples, size) uint8 (3,H,W) images."""

    def images(self, num_samples: int) -> torch.Tensor:
        """The same images as one uint8 (N,3,H,W) tensor."""
        ds = self.dataset(num_samples)
        return torch.stack([ds[i] for i in range(len(ds))]) if len(ds) else torch.empty(0, 3, 0, 0)


class TensorSource(FiniteSource):
    """Images already in memory: uint8 (N, 1|3, H, W)."""

    def __init__(self, images: torch.Tensor, name: str = "tensor") -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4 \
                or images.shape[1] not in (1, 3) or images.shape[0] == 0:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise MetricsError(f"TensorSource needs a non-empty uint8 tensor (N, 1|3, H, W); got {shape}")
        self.tensor = images
        self.name = name

    def describe(self) -> str:
        return f"{self.name}{tuple(self.tensor.shape)}"

    def dataset(self, num_samples: int) -> Dataset:
        idx = torch.from_numpy(subset_indices(self.tensor.shape[0], num_samples))
        return _TensorImages(lambda: self.tensor[idx].cpu())


class DatasetSource(FiniteSource):
    """A dataset known to ``raynas.data`` (resolution/channels None: the dataset's defaults)."""

    def __init__(self, name: str, split: str = "train", root: str | None = None,
                 resolution: int | None = None, channels: int | None = None) -> None:
        from raynas.data import specs

        spec = specs.get_spec(name)
        self.name = spec.name
        self.split = spec.check_split(split)
        self.root = root
        self.resolution = int(resolution) if resolution else spec.default_resolution
        self.channels = int(channels) if channels else spec.default_channels
        if self.channels not in (1, 3):
            raise MetricsError(f"channels must be 1 or 3; got {channels}")

    def describe(self) -> str:
        return f"dataset:{self.name}:{self.split} ({self.resolution}px, {self.channels}ch)"

    def cache_identity(self) -> dict[str, Any]:
        import raynas.data

        # The resolved location is part of the key: another copy of "cifar10" (--data-root) must not
        # reuse statistics computed from this one.
        where = raynas.data.resolve_root(self.name, self.root, split=self.split, download=False)
        identity = {"kind": "dataset", "dataset": self.name, "split": self.split, "resolution": self.resolution,
                    "channels": self.channels, "subset_seed": SUBSET_SEED, "root": str(Path(where).resolve())}
        if self.name == "folder":  # your own images: new statistics whenever a file is added, removed or changed
            from raynas.data import imagefolder

            identity["files_sha256"] = imagefolder.content_stamp(imagefolder.split_files(where, self.split), where)
        return identity

    def load_all(self) -> torch.Tensor:
        import raynas.data

        return raynas.data.load_images(self.name, self.split, root=self.root, resolution=self.resolution,
                                       channels=self.channels)

    def dataset(self, num_samples: int) -> Dataset:
        def load() -> torch.Tensor:
            images = self.load_all()
            return images[torch.from_numpy(subset_indices(images.shape[0], num_samples))]

        return _TensorImages(load)


class _ImageFiles(Dataset):
    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image

        path = self.files[i]
        try:
            with Image.open(path) as im:
                mode = "L" if im.mode in ("1", "L", "I;16", "I") else "RGB"
                arr = np.asarray(im.convert(mode))
        except Exception as e:  # noqa: BLE001 - PIL raises many kinds of errors on bad files
            raise MetricsError(f"cannot read image {path} ({type(e).__name__}: {e}); delete or replace "
                               "it") from e
        t = torch.from_numpy(arr.copy())
        t = t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)
        return to_rgb(t.contiguous())


class FolderSource(FiniteSource):
    """A folder of png/jpg/webp images (searched recursively when ``recursive``)."""

    def __init__(self, path: str | os.PathLike, recursive: bool = False) -> None:
        self.path = Path(path).expanduser()
        self.recursive = recursive
        exts = "/".join(e[1:] for e in IMAGE_EXTENSIONS)
        if not self.path.is_dir():
            raise MetricsError(f"image folder {self.path} does not exist or is not a folder; pass a folder "
                               f"of {exts} images")
        pattern = self.path.rglob("*") if recursive else self.path.iterdir()
        self.files = sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            where = "" if recursive else " (subfolders are not searched)"
            raise MetricsError(f"image folder {self.path} holds no {exts} images{where}; write samples "
                               "there first")

    def describe(self) -> str:
        return f"folder:{self.path} ({len(self.files)} images)"

    def cache_identity(self) -> dict[str, Any]:
        h = hashlib.sha256()
        for p in self.files:
            st = p.stat()
            h.update(f"{p.relative_to(self.path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"kind": "folder", "path": str(self.path.resolve()), "files_sha256": h.hexdigest(),
                "subset_seed": SUBSET_SEED}

    def dataset(self, num_samples: int) -> Dataset:
        idx = subset_indices(len(self.files), num_samples)
        return _ImageFiles([self.files[i] for i in idx])


class _FidelityGenerator(GenerativeModelBase):
    """torch-fidelity's generator interface over a raynas G: z -> uint8 RGB on ``device``.

    G is deliberately not a registered submodule, so torch-fidelity's ``.cuda()`` cannot move it to
    whatever the current CUDA device happens to be; :meth:`GeneratorSource.on_device` places it.
    """

    def __init__(self, source: GeneratorSource, device: torch.device, out_device: torch.device) -> None:
        super().__init__()
        self._source = source
        self._device = device
        self._out_device = out_device

    @property
    def z_size(self) -> int:
        return self._source.latent_dim

    @property
    def z_type(self) -> str:
        return "normal"

    @property
    def num_classes(self) -> int:
        return 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # torch-fidelity draws z as float32; G computes in the process's dtype (float64 under RAYNAS_NUMERICS)
        return self._source.generate(z.to(self._device, torch.get_default_dtype())).to(self._out_device)


class GeneratorSource(Source):
    """An ``nn.Module`` G mapping z (B, latent_dim) to images in [-1, 1] (B, 1|3, H, W)."""

    def __init__(self, G: torch.nn.Module, latent_dim: int, precision: Precision | None = None) -> None:
        if not isinstance(G, torch.nn.Module):
            raise MetricsError(f"GeneratorSource needs a torch.nn.Module; got {type(G).__name__}")
        if int(latent_dim) < 1:
            raise MetricsError(f"latent_dim must be positive; got {latent_dim}")
        self.G = G
        self.latent_dim = int(latent_dim)
        self.precision = precision

    def describe(self) -> str:
        return f"generator:{type(self.G).__name__}(z={self.latent_dim})"

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        if self.precision is not None and self.precision.device.type == device.type:
            return self.precision.autocast()
        return contextlib.nullcontext()

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """z on G's device -> uint8 (B,3,H,W); eval mode and no grad are the caller's (see on_device)."""
        with torch.no_grad(), self._autocast(z.device):
            x = self.G(z)
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise MetricsError(f"the generator must return images shaped (B, 1 or 3, H, W); got {shape}")
        return to_rgb(to_uint8(x))

    @contextlib.contextmanager
    def on_device(self, device: torch.device,
                  out_device: torch.device | None = None) -> Iterator[_FidelityGenerator]:
        """G in eval mode on ``device`` for the duration (images delivered on ``out_device``, default the
        same); G's own device and train/eval mode are restored afterwards."""
        param = next(iter(self.G.parameters()), None)
        if param is None:
            param = next(iter(self.G.buffers()), None)
        home = param.device if param is not None else None
        was_training = self.G.training
        self.G.eval()
        if home is not None and home != device:
            self.G.to(device)
        try:
            yield _FidelityGenerator(self, device, out_device if out_device is not None else device)
        finally:
            if home is not None and home != device:
                self.G.to(home)
            self.G.train(was_training)

    def sample(self, num_samples: int, *, batch_size: int = 100, device: torch.device | str | None = None,
               seed: int = NOISE_SEED) -> Iterator[torch.Tensor]:
        """Yield uint8 (B,3,H,W) batches on CPU: the same z sequence torch-fidelity draws for the metrics."""
        dev = resolve_device(str(device) if device is not None else "auto")
        rng = np.random.RandomState(seed)
        with self.on_device(dev, torch.device("cpu")) as model:
            for start in range(0, num_samples, batch_size):
                n = min(batch_size, num_samples - start)
                z = NOISE_SOURCE_REGISTRY["normal"](rng, (n, self.latent_dim))
                yield model(z)


def parse_source(spec: str, **kw: Any) -> Source:
    """A source from a CLI string: ``dataset:NAME[:SPLIT]``, ``folder:PATH``, ``checkpoint:PATH``.

    Keyword arguments: ``root``, ``resolution``, ``channels`` (datasets), ``recursive`` (folders),
    ``checkpoint_loader`` (a callable PATH -> GeneratorSource or (G, latent_dim)) and ``precision``.
    """
    kind, sep, rest = str(spec).partition(":")
    forms = "dataset:NAME[:SPLIT] (e.g. dataset:cifar10:test), folder:PATH or checkpoint:PATH"
    if not sep or not rest:
        raise MetricsError(f"cannot parse image source {spec!r}; use {forms}")
    if kind == "dataset":
        name, _, split = rest.partition(":")
        try:
            return DatasetSource(name, split or "train", root=kw.get("root"), resolution=kw.get("resolution"),
                                 channels=kw.get("channels"))
        except RaynasError as e:
            raise MetricsError(f"bad dataset source {spec!r}: {e}") from e
    if kind == "folder":
        return FolderSource(rest, recursive=bool(kw.get("recursive", False)))
    if kind == "checkpoint":
        loader = kw.get("checkpoint_loader")
        if loader is None:
            raise MetricsError(f"cannot evaluate {spec!r}: no checkpoint loader was given; evaluate "
                               "checkpoints through the raynas CLI (it knows how to rebuild the generator) "
                               "or sample images into a folder and use folder:PATH")
        if not Path(rest).expanduser().exists():
            raise MetricsError(f"checkpoint {rest} does not exist; pass a run directory, a Tune checkpoint "
                               "folder or a state.pt file")
        loaded = loader(rest)
        if isinstance(loaded, GeneratorSource):
            return loaded
        if isinstance(loaded, tuple) and len(loaded) == 2:
            return GeneratorSource(loaded[0], loaded[1], precision=kw.get("precision"))
        raise MetricsError(f"checkpoint loader returned {type(loaded).__name__}; expected a "
                           "GeneratorSource or a (generator, latent_dim) pair")
    raise MetricsError(f"unknown image source kind {kind!r} in {spec!r}; use {forms}")

