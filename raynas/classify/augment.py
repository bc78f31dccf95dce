"""Batched, on-device image augmentation for classifier training (no per-image Python loop).

The DARTS CIFAR pipeline, per image, is ``RandomCrop(32, padding=4)`` (zero padding) ->
``RandomHorizontalFlip`` -> ``ToTensor`` -> ``Normalize(mean, std)`` -> ``Cutout(16)`` [darts
``utils._data_transforms_cifar10``]. Here the same steps run on a whole uint8 batch on the training
device: crop and flip on uint8 (padding value 0 = black, as torchvision pads), then normalisation to
float, then cutout (zeroes the *normalised* tensor, i.e. paints the dataset mean, as DARTS' Cutout
multiplies the normalised tensor by a mask). Random parameters come from a caller's CPU
``torch.Generator``, so the same seed gives the same batches on every device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raynas.device import compute_dtype

# Luminance weights of ITU-R BT.601 (raynas.data converts RGB -> gray with the same ones).
_LUMA = (0.299, 0.587, 0.114)

# Per-dataset channel mean and std of the training split, on pixels scaled to [0, 1].
#   cifar10       DARTS utils._data_transforms_cifar10 (quark0/darts)
#   cifar100      PC-DARTS utils._data_transforms_cifar100 (yuhuixu1993/PC-DARTS)
#   imagenet      torchvision / DARTS train_imagenet.py
#   stl10         the commonly used values of the STL-10 train split
#   mnist         the classic 0.1307 / 0.3081 of the 60k training digits (28x28)
#   fashion-mnist 0.2860 / 0.3530 of the 60k training images (28x28); the embedded subset uses the same
# Statistics are of the native images: the 2-px zero border of the 28 -> 32 padding is treated like any
# black pixel. Converting channels adapts them: gray -> RGB repeats the value; RGB -> gray takes the BT.601
# weighted sum of the means and of the stds (an upper bound of the gray std, close for correlated channels).
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "stl10": ((0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "embedded": ((0.2860,), (0.3530,)),
    "folder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # your own photos: ImageNet's statistics
}

# Datasets whose images must not be mirrored (digits; the Fashion-MNIST family is treated alike).
NO_FLIP: frozenset[str] = frozenset({"mnist", "fashion-mnist", "embedded"})


def normalization(name: str, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel for dataset ``name`` at ``channels`` (1 or 3) channels."""
    mean, std = NORMALIZATION[name]
    if len(mean) == channels:
        return mean, std
    if len(mean) == 1:                       # gray dataset read as RGB
        return mean * channels, std * channels
    gray = (sum(w * m for w, m in zip(_LUMA, mean)), sum(w * s for w, s in zip(_LUMA, std)))
    return (gray[0],), (gray[1],)


def random_crop(x: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Zero-pad each image by ``padding`` and cut the original size out at ``offsets`` (N, 2) = (dy, dx),
    each in [0, 2 * padding]. Offset (padding, padding) returns the image unchanged."""
    if padding <= 0:
        return x
    n, c, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    dev = x.device
    rows = (offsets[:, 0:1] + torch.arange(h, device=dev)).view(n, 1, h, 1)
    cols = (offsets[:, 1:2] + torch.arange(w, device=dev)).view(n, 1, 1, w)
    ni = torch.arange(n, device=dev).view(n, 1, 1, 1)
    ci = torch.arange(c, device=dev).view(1, c, 1, 1)
    return xp[ni, ci, rows, cols]


def hflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose ``mask`` entry is True."""
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float (the compute dtype) ``(x / 255 - mean) / std``; ``mean``/``std`` are (C,) tensors."""
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
    shift = (mean / std).view(1, -1, 1, 1)
    return x.to(compute_dtype()).mul_(scale).sub_(shift)


def cutout(x: torch.Tensor, length: int, centers: torch.Tensor) -> torch.Tensor:
    """Zero a ``length`` x ``length`` square per image (all channels), centred at ``centers`` (N, 2) =
    (cy, cx); the square is clipped at the borders, as DARTS' Cutout does (``np.clip(c -/+ length // 2)``)."""
    if length <= 0:
        return x
    h, w = x.shape[-2:]
    dev = x.device
    half = length // 2
    y1, y2 = (centers[:, 0:1] - half).clamp(0, h), (centers[:, 0:1] + half).clamp(0, h)
    x1, x2 = (centers[:, 1:2] - half).clamp(0, w), (centers[:, 1:2] + half).clamp(0, w)
    ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
    rows = (ar_h >= y1) & (ar_h < y2)                          # (N, H)
    cols = (ar_w >= x1) & (ar_w < x2)                          # (N, W)
    mask = rows[:, None, :, None] & cols[:, None, None, :]     # (N, 1, H, W)
    return x.masked_fill(mask, 0.0)


def augment_batch(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator, *,
                  padding: int = 4, flip: bool = True, cutout_length: int = 0) -> torch.Tensor:
    """The training transform for a uint8 batch on its device: crop, flip, normalise, cutout.

    Random numbers are drawn from the CPU ``generator`` in a fixed order (crop offsets, flip coins,
    cutout centres; each only when its step is on) and then copied to the batch's device.
    """
    n, _, h, w = x.shape
    dev = x.device
    if padding > 0:
        offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
        x = random_crop(x, padding, offsets.to(dev, non_blocking=True))
    if flip:
        coins = torch.rand(n, generator=generator) < 0.5
        x = hflip(x, coins.to(dev, non_blocking=True))
    out = normalize(x, mean, std)
    if cutout_length > 0:
        centers = torch.stack([torch.randint(0, h, (n,), generator=generator),
                               torch.randint(0, w, (n,), generator=generator)], 1)
        out = cutout(out, cutout_length, centers.to(dev, non_blocking=True))
    return out
