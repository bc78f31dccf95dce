"""The ``darts`` op family: DARTS' candidate operations, op for op as its ``cnn/operations.py``.

Every factory takes ``(C, stride, affine)`` and keeps ``C`` channels; ``stride=2`` halves the spatial
size (even sizes only, like DARTS). ``affine`` is the BatchNorm setting: ``True`` in evaluation
networks, ``False`` in the search supernet. Convolutions have no bias (BN follows them).

=================  ==========================================================================
``none``           zero output (strided like the input)
``max_pool_3x3``   MaxPool2d(3, stride, padding 1)
``avg_pool_3x3``   AvgPool2d(3, stride, padding 1, count_include_pad=False)
``skip_connect``   identity at stride 1, ``FactorizedReduce`` at stride 2
``sep_conv_kxk``   twice ReLU → depthwise k×k → pointwise 1×1 → BN (stride only in the first), k = 3, 5, 7
``dil_conv_kxk``   ReLU → depthwise k×k dilation 2 (padding 2 / 4) → pointwise 1×1 → BN, k = 3, 5
``conv_7x1_1x7``   ReLU → 1×7 conv → 7×1 conv → BN (NASNet/Amoeba genotypes)
=================  ==========================================================================

Registered in :data:`raynas.nn.ops.REGISTRY` as ``"darts"``: ``build_op("darts", name, C, stride=s, affine=a)``.
"""

from __future__ import annotations

import torch
from torch import nn

from raynas.errors import ConfigError
from raynas.nn.primitives import Identity, OpFactory, Zero
from raynas.spaces.darts import DARTS_OP_NAMES, PRIMITIVES

__all__ = ["DARTS_OPS", "PRIMITIVES", "DilConv", "FactorizedReduce", "ReLUConvBN", "SepConv", "drop_path"]


class ReLUConvBN(nn.Sequential):
    """ReLU → k×k conv (no bias) → BN; DARTS' cell input preprocessing (1×1)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 affine: bool = True):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class DilConv(nn.Sequential):
    """ReLU → depthwise k×k conv (dilation, stride) → pointwise 1×1 conv → BN (at dilation 1: half a ``SepConv``)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                                   groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class SepConv(nn.Sequential):
    """DARTS' separable conv: a stride-``stride`` ``DilConv``-like block (dilation 1), then a stride-1 one."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__(DilConv(c_in, c_in, kernel_size, stride, padding, 1, affine=affine),
                         DilConv(c_in, c_out, kernel_size, 1, padding, 1, affine=affine))


class FactorizedReduce(nn.Module):
    """ReLU → two 1×1 stride-2 convs (the second on the input shifted by one pixel) → concat → BN.

    Halves the spatial size (even sizes only) and maps ``c_in`` to ``c_out`` (even) channels.
    """

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ConfigError(f"FactorizedReduce needs an even number of output channels, got {c_out}; "
                              "use an even network width")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and scale the kept ones by ``1 / (1 - drop_prob)``.

    Out of place (the input is not modified); ``drop_prob <= 0`` returns ``x`` itself.
    """
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], *([1] * (x.dim() - 1)), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask.div_(keep)


def _conv_7x1_1x7(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.Sequential(nn.ReLU(inplace=False),
                         nn.Conv2d(c, c, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
                         nn.Conv2d(c, c, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
                         nn.BatchNorm2d(c, affine=affine))


# name -> factory(C, stride, affine)
DARTS_OPS: dict[str, OpFactory] = {
    "none": lambda c, stride, affine: Zero(stride),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "skip_connect": lambda c, stride, affine: Identity() if stride == 1 else FactorizedReduce(c, c, affine=affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine=affine),
    "sep_conv_7x7": lambda c, stride, affine: SepConv(c, c, 7, stride, 3, affine=affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine=affine),
    "conv_7x1_1x7": _conv_7x1_1x7,
}
if set(DARTS_OPS) != set(DARTS_OP_NAMES):  # the torch-free name list in raynas.spaces.darts must match
    raise ImportError(f"darts op names out of sync: {sorted(set(DARTS_OPS) ^ set(DARTS_OP_NAMES))}")

