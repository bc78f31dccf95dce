"""The AutoGAN CIFAR-10 discriminator and its residual blocks (spectral norm everywhere)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from raynas.nn.ops import maybe_sn
from raynas.nn.registry import register_family


class OptimizedDisBlock(nn.Module):
    """First D block: conv → ReLU → conv → avg-pool, plus pooled 1×1 shortcut (input is raw RGB)."""

    def __init__(self, in_ch: int, out_ch: int, sn: bool = True):
        super().__init__()
        self.c1 = maybe_sn(nn.Conv2d(in_ch, out_ch, 3, 1, 1), sn)
        self.c2 = maybe_sn(nn.Conv2d(out_ch, out_ch, 3, 1, 1), sn)
        self.c_sc = maybe_sn(nn.Conv2d(in_ch, out_ch, 1, 1, 0), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


class DisBlock(nn.Module):
    """Pre-activation residual block: ReLU → conv → ReLU → conv (→ avg-pool)."""

    def __init__(self, in_ch: int, out_ch: int, downsample: bool = False, sn: bool = True):
        super().__init__()
        self.downsample = downsample
        self.c1 = maybe_sn(nn.Conv2d(in_ch, out_ch, 3, 1, 1), sn)
        self.c2 = maybe_sn(nn.Conv2d(out_ch, out_ch, 3, 1, 1), sn)
        self.learnable_sc = in_ch != out_ch or downsample
        if self.learnable_sc:
            self.c_sc = maybe_sn(nn.Conv2d(in_ch, out_ch, 1, 1, 0), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(F.relu(self.c1(F.relu(x))))
        sc = self.c_sc(x) if self.learnable_sc else x
        if self.downsample:
            h, sc = F.avg_pool2d(h, 2), F.avg_pool2d(sc, 2)
        return h + sc


class AutoGANDiscriminator(nn.Module):
    """OptimizedDisBlock, one down-sampling DisBlock, two plain DisBlocks, ReLU, sum-pool, SN linear.

    Sum-pooling makes it resolution-agnostic (32×32 CIFAR-10, 48×48 STL-10).
    """

    def __init__(self, df_dim: int = 128, in_channels: int = 3, sn: bool = True):
        super().__init__()
        self.blocks = nn.Sequential(
            OptimizedDisBlock(in_channels, df_dim, sn=sn),
            DisBlock(df_dim, df_dim, downsample=True, sn=sn),
            DisBlock(df_dim, df_dim, sn=sn),
            DisBlock(df_dim, df_dim, sn=sn),
        )
        self.l5 = maybe_sn(nn.Linear(df_dim, 1), sn)
        xavier_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.l5(h)


def xavier_init(module: nn.Module) -> None:
    """Xavier-uniform conv/linear weights, zero biases (the AutoGAN/AdversarialNAS default)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.xavier_uniform_(weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


register_family("autogan", "discriminator", lambda model, data: AutoGANDiscriminator(model.df_dim, data.channels))
