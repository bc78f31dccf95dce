"""The SNGAN ResNet generator: the fixed baseline trained before any search exists."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from raynas.errors import ConfigError
from raynas.nn.discriminators import xavier_init
from raynas.nn.registry import register_family


class GenBlock(nn.Module):
    """BN → ReLU → up ×2 → conv → BN → ReLU → conv, plus up-sampled 1×1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.b1 = nn.BatchNorm2d(in_ch)
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.b2 = nn.BatchNorm2d(out_ch)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.b1(x)), scale_factor=2)
        h = self.c2(F.relu(self.b2(self.c1(h))))
        return h + self.c_sc(F.interpolate(x, scale_factor=2))


class ToRGB(nn.Sequential):
    """BN → ReLU → conv3×3 → tanh: feature maps to an image in [-1, 1]."""

    def __init__(self, in_ch: int, out_channels: int = 3):
        super().__init__(nn.BatchNorm2d(in_ch), nn.ReLU(), nn.Conv2d(in_ch, out_channels, 3, 1, 1), nn.Tanh())


def num_upsamples(resolution: int, bottom_width: int) -> int:
    n = math.log2(resolution / bottom_width) if bottom_width > 0 else -1
    if n < 1 or not float(n).is_integer():
        raise ValueError(f"resolution {resolution} must be bottom_width {bottom_width} times a power of two")
    return int(n)


class SNGANGenerator(nn.Module):
    """Linear → bottom_width² map → residual up-blocks → to_rgb."""

    def __init__(self, latent_dim: int = 128, gf_dim: int = 256, resolution: int = 32,
                 bottom_width: int = 0, out_channels: int = 3):
        super().__init__()
        self.latent_dim = latent_dim
        self.bottom_width = bottom_width or resolution // 8
        self.gf_dim = gf_dim
        self.l1 = nn.Linear(latent_dim, self.bottom_width ** 2 * gf_dim)
        n_up = num_upsamples(resolution, self.bottom_width)
        self.blocks = nn.Sequential(*[GenBlock(gf_dim, gf_dim) for _ in range(n_up)])
        self.to_rgb = ToRGB(gf_dim, out_channels)
        xavier_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.l1(z).view(-1, self.gf_dim, self.bottom_width, self.bottom_width)
        return self.to_rgb(self.blocks(h))


def _build_sngan(model: Any, data: Any) -> nn.Module:
    try:
        return SNGANGenerator(model.latent_dim, model.gf_dim, data.resolution, model.bottom_width, data.channels)
    except ValueError as exc:
        raise ConfigError(f"model/data mismatch: {exc}; set model.bottom_width so that "
                          "data.resolution / bottom_width is a power of two") from None


register_family("sngan", "generator", _build_sngan)
