"""The one op zoo: every candidate operation of every search space, keyed by name.

Supernets and derived networks both build from ``build_op``, so a derived network is exactly the
supernet path it was cut from. Ops keep the channel count ``C``; ``up`` ops double the spatial size,
``down`` ops (and normal ops built with ``stride=2``) halve it. ``sn=True`` wraps every conv and
linear in spectral norm (discriminators).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from raynas.nn.darts_ops import DARTS_OPS
from raynas.nn.primitives import Identity, OpFactory, Zero


def maybe_sn(module: nn.Module, sn: bool) -> nn.Module:
    return spectral_norm(module) if sn else module


class ReLUConv(nn.Module):
    """ReLU → conv (no BN), optionally dilated or strided."""

    def __init__(self, c: int, k: int, stride: int = 1, dilation: int = 1, sn: bool = False):
        super().__init__()
        pad = dilation * (k - 1) // 2
        self.conv = maybe_sn(nn.Conv2d(c, c, k, stride, pad, dilation=dilation), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(x))


class SepConv(nn.Module):
    """ReLU → depthwise k×k → pointwise 1×1 (depthwise-separable conv)."""

    def __init__(self, c: int, k: int, stride: int = 1, sn: bool = False):
        super().__init__()
        self.depthwise = maybe_sn(nn.Conv2d(c, c, k, stride, k // 2, groups=c), sn)
        self.pointwise = maybe_sn(nn.Conv2d(c, c, 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(F.relu(x)))


class Interpolate(nn.Module):
    """Up-sample ×2 by interpolation → ReLU → 1×1 conv."""

    def __init__(self, c: int, mode: str, sn: bool = False):
        super().__init__()
        self.mode = mode
        self.conv = maybe_sn(nn.Conv2d(c, c, 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kwargs = {"align_corners": False} if self.mode == "bilinear" else {}
        x = F.interpolate(x, scale_factor=2, mode=self.mode, **kwargs)
        return self.conv(F.relu(x))


class DeConv(nn.Module):
    """ReLU → depthwise transposed conv (k3 s2 p1 op1) → 1×1 conv."""

    def __init__(self, c: int, sn: bool = False):
        super().__init__()
        self.deconv = maybe_sn(nn.ConvTranspose2d(c, c, 3, 2, 1, output_padding=1, groups=c), sn)
        self.conv = maybe_sn(nn.Conv2d(c, c, 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.deconv(F.relu(x)))


class Pool(nn.Module):
    """Stride-2 average or max pool (parameter-free down-sampling)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return F.avg_pool2d(x, 2)
        return F.max_pool2d(x, 2)



# name -> factory(C, stride, sn)
NORMAL_OPS: dict[str, OpFactory] = {
    "none": lambda c, stride=1, sn=False: Zero(stride),
    "skip_connect": lambda c, stride=1, sn=False: Identity() if stride == 1 else Pool("avg"),
    "conv_1x1": lambda c, stride=1, sn=False: ReLUConv(c, 1, stride, sn=sn),
    "conv_3x3": lambda c, stride=1, sn=False: ReLUConv(c, 3, stride, sn=sn),
    "conv_5x5": lambda c, stride=1, sn=False: ReLUConv(c, 5, stride, sn=sn),
    "dil_conv_3x3": lambda c, stride=1, sn=False: ReLUConv(c, 3, stride, dilation=2, sn=sn),
    "dil_conv_5x5": lambda c, stride=1, sn=False: ReLUConv(c, 5, stride, dilation=2, sn=sn),
    "sep_conv_3x3": lambda c, stride=1, sn=False: SepConv(c, 3, stride, sn=sn),
    "sep_conv_5x5": lambda c, stride=1, sn=False: SepConv(c, 5, stride, sn=sn),
    "sep_conv_7x7": lambda c, stride=1, sn=False: SepConv(c, 7, stride, sn=sn),
}

UP_OPS: dict[str, OpFactory] = {
    "nearest": lambda c, sn=False: Interpolate(c, "nearest", sn=sn),
    "bilinear": lambda c, sn=False: Interpolate(c, "bilinear", sn=sn),
    "deconv": lambda c, sn=False: DeConv(c, sn=sn),
}

DOWN_OPS: dict[str, OpFactory] = {
    "avg_pool": lambda c, sn=False: Pool("avg"),
    "max_pool": lambda c, sn=False: Pool("max"),
    "conv_3x3": lambda c, sn=False: ReLUConv(c, 3, 2, sn=sn),
    "conv_5x5": lambda c, sn=False: ReLUConv(c, 5, 2, sn=sn),
    "dil_conv_3x3": lambda c, sn=False: ReLUConv(c, 3, 2, dilation=2, sn=sn),
    "dil_conv_5x5": lambda c, sn=False: ReLUConv(c, 5, 2, dilation=2, sn=sn),
}

REGISTRY: dict[str, dict[str, OpFactory]] = {"normal": NORMAL_OPS, "up": UP_OPS, "down": DOWN_OPS,
                                             "darts": DARTS_OPS}


def build_op(kind: str, name: str, channels: int, *, stride: int = 1, sn: bool = False,
             affine: bool = True) -> nn.Module:
    """Build op ``name`` of ``kind`` (normal/up/down/darts) for ``channels`` feature maps.

    ``affine`` (BatchNorm affine parameters) is used by the ``darts`` family only; ``sn`` by the others.
    """
    table = REGISTRY.get(kind)
    if table is None:
        raise KeyError(f"unknown op kind {kind!r}; kinds: {', '.join(REGISTRY)}")
    if name not in table:
        raise KeyError(f"unknown {kind} op {name!r}; valid: {', '.join(table)}")
    if kind == "darts":
        return table[name](channels, stride, affine)
    if kind == "normal":
        return table[name](channels, stride=stride, sn=sn)
    return table[name](channels, sn=sn)

