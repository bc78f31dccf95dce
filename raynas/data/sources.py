"""Batch sources: where training loops get their real images from.

Two ways, one interface (``sample(n)`` -> float batch in [-1, 1] on the device):
- DeviceBatchSource keeps the whole uint8 dataset on the training device and draws random batches
  there: no worker processes, no host-to-device copies per step. Right for every dataset in this
  project at GAN resolutions (STL-10 train+unlabeled at 48 px is 0.7 GiB).
- LoaderBatchSource streams through a torch DataLoader for datasets too large for that.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader, Dataset

from raynas.device import compute_dtype
from raynas.errors import ConfigError

DEVICE_LIMIT_BYTES = 2 << 30  # "auto" keeps datasets up to 2 GiB (as uint8) on the device


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        got = f"{images.dtype} tensor of shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) \
            else type(images).__name__
        raise ValueError(f"expected a uint8 tensor (N, C, H, W) as returned by load_images, got {got}")
    if len(images) == 0:
        raise ValueError("the image tensor is empty (N = 0); check the dataset split and limit")
    return images


def to_float(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1] (0 -> -1, 255 -> 1), the range the generators' tanh produces; float32,
    or float64 under ``RAYNAS_NUMERICS=float64``."""
    out = x.to(compute_dtype()).div_(127.5).sub_(1.0)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


@runtime_checkable
class BatchSource(Protocol):
    """Anything that hands out random real batches; ``len()`` is the number of images."""

    def sample(self, batch_size: int) -> torch.Tensor: ...

    def __len__(self) -> int: ...


class ImageDataset(Dataset):
    """A uint8 NCHW tensor as a map-style dataset of uint8 CHW images (what torch-fidelity reads).

    ``channels=3`` repeats a grayscale channel on the fly, since Inception wants RGB.
    """

    def __init__(self, images: torch.Tensor, channels: int | None = None) -> None:
        self.images = _check_images(images)
        if channels not in (None, 1, 3) or (channels == 1 and images.shape[1] != 1):
            raise ValueError(f"channels must be None, 3, or 1 for grayscale images; got {channels!r}")
        self.channels = channels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.images[i]
        if self.channels is not None and x.shape[0] != self.channels:
            x = x.expand(self.channels, -1, -1).contiguous()
        return x


class DeviceBatchSource:
    """The whole uint8 dataset on ``device``; batches drawn uniformly with replacement, on the device.

    Uses its own ``torch.Generator`` on the device, so two sources with the same seed on the same
    device yield identical batches, and sampling never disturbs the global RNG used by the models.
    """

    def __init__(self, images: torch.Tensor, device: torch.device | str, *, seed: int = 0,
                 channels_last: bool = False) -> None:
        self.device = torch.device(device)
        self.images = _check_images(images).to(self.device)
        self.channels_last = channels_last
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, batch_size: int) -> torch.Tensor:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        idx = torch.randint(len(self.images), (batch_size,), generator=self.generator, device=self.device)
        return to_float(self.images.index_select(0, idx), self.channels_last)

    def state_dict(self) -> dict:
        """The sampling generator's state, so a resumed run draws the same batches."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"].to("cpu") if hasattr(state["generator"], "to")
                                 else state["generator"])


class LoaderBatchSource:
    """A shuffling DataLoader iterated forever (epoch after epoch), copied to ``device`` non-blocking.

    ``sample(n)`` works for any n: uint8 batches of the loader's ``batch_size`` are re-chunked through
    a small buffer on the device, so consecutive samples never repeat an image within an epoch.
    drop_last is on (each epoch is a whole number of loader batches) unless the dataset is smaller
    than one batch.
    """

    def __init__(self, images: torch.Tensor, device: torch.device | str, *, batch_size: int,
                 num_workers: int = 2, seed: int = 0, channels_last: bool = False) -> None:
        images = _check_images(images)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.channels_last = channels_last
        self.batch_size = batch_size
        self.dataset = ImageDataset(images)
        gen = torch.Generator()
        gen.manual_seed(int(seed))
        self.loader = DataLoader(
            self.dataset, batch_size=batch_size, shuffle=True, drop_last=len(images) >= batch_size,
            num_workers=num_workers, pin_memory=self.device.type == "cuda",
            persistent_workers=num_workers > 0, generator=gen,
        )
        self._it: Iterator[torch.Tensor] | None = None
        self._buffer: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _next_batch(self) -> torch.Tensor:
        if self._it is None:
            self._it = iter(self.loader)
        try:
            batch = next(self._it)
        except StopIteration:  # end of an epoch: reshuffle and go on
            self._it = iter(self.loader)
            batch = next(self._it)
        return batch.to(self.device, non_blocking=True)

    def sample(self, batch_size: int | None = None) -> torch.Tensor:
        n = self.batch_size if batch_size is None else batch_size
        if n < 1:
            raise ValueError(f"batch_size must be >= 1, got {n}")
        pieces = [] if self._buffer is None else [self._buffer]
        have = 0 if self._buffer is None else len(self._buffer)
        while have < n:
            b = self._next_batch()
            pieces.append(b)
            have += len(b)
        data = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        self._buffer = data[n:] if have > n else None
        return to_float(data[:n], self.channels_last)


def make_batch_source(images: torch.Tensor, device: torch.device | str, *, mode: str = "auto",
                      batch_size: int, num_workers: int = 2, seed: int = 0,
                      channels_last: bool = False) -> BatchSource:
    """``auto`` picks "device" when the uint8 dataset fits in 2 GiB (and, on CUDA, in a quarter of
    the free GPU memory), else "dataloader"."""
    images = _check_images(images)
    device = torch.device(device)
    if mode == "auto":
        nbytes = images.numel() * images.element_size()
        fits = nbytes <= DEVICE_LIMIT_BYTES
        if fits and device.type == "cuda":
            try:
                free, _ = torch.cuda.mem_get_info(device)
                fits = nbytes <= free // 4
            except RuntimeError:
                pass
        mode = "device" if fits else "dataloader"
    if mode == "device":
        return DeviceBatchSource(images, device, seed=seed, channels_last=channels_last)
    if mode == "dataloader":
        return LoaderBatchSource(images, device, batch_size=batch_size, num_workers=num_workers, seed=seed,
                                 channels_last=channels_last)
    raise ConfigError(f"unknown data loader mode {mode!r}; valid: auto, device, dataloader "
                      f"(set data.loader=...)")
