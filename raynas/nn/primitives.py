"""Ops every family shares (the ``none`` and ``skip_connect`` building blocks) and the factory type."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

OpFactory = Callable[..., nn.Module]


class Zero(nn.Module):
    """The ``none`` op: no connection (all-zero output at the right size)."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
