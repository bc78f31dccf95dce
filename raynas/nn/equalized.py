"""Equalised-learning-rate layers and the small pieces StyleGAN2 and ProGAN share.

Equalised learning rate (Karras et al., ProGAN): weights are stored as N(0, 1) samples and multiplied by a
constant ``gain / sqrt(fan_in)`` at every forward pass, so Adam's per-parameter step sizes act the same on
every layer. The stored tensor is the ``nn.Parameter`` that optimisers, EMA and Re-GAN masks see: a weight
masked to 0 stays 0 after scaling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise every position's feature vector to unit RMS over channels (dim 1)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


def bias_lrelu(x: torch.Tensor, bias: torch.Tensor | None, slope: float = 0.2,
               gain: float = LRELU_GAIN) -> torch.Tensor:
    """``leaky_relu(x + bias) * gain`` with ``bias`` per channel (dim 1): StyleGAN2's biased activation."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, slope) * gain


class EqualLinear(nn.Module):
    """Linear layer with equalised lr: ``y = x (w * lr_mul / sqrt(in))^T + b * lr_mul``, optionally followed by
    :func:`bias_lrelu` (the bias then enters before the activation). ``lr_mul`` < 1 slows the layer down (StyleGAN2's
    mapping network uses 0.01); ``gain`` scales the weight multiplier (ProGAN uses sqrt(2))."""

    def __init__(self, in_dim: int, out_dim: int, *, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activate: bool = False, gain: float = 1.0) -> None:
        super().__init__()
        self.in_features, self.out_features = in_dim, out_dim
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = gain * lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activate:
            return bias_lrelu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def layer_flops(self, x: torch.Tensor, y: torch.Tensor) -> int:
        """Forward FLOPs (2 per multiply-add) of one call over the whole batch (read by Re-GAN's FLOPs count)."""
        return 2 * y.numel() * self.in_features

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, lr_mul={self.lr_mul}, activate={self.activate}"


class EqualConv2d(nn.Module):
    """Conv layer with equalised lr: the weight is multiplied by ``gain / sqrt(in * k * k)`` at every call."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, *, stride: int = 1, padding: int = 0,
                 bias: bool = True, gain: float = 1.0) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_ch, out_ch
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = gain / math.sqrt(in_ch * kernel_size ** 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)

    def layer_flops(self, x: torch.Tensor, y: torch.Tensor) -> int:
        """Forward FLOPs (2 per multiply-add) of one call over the whole batch (read by Re-GAN's FLOPs count)."""
        return 2 * y.numel() * self.in_channels * self.kernel_size ** 2

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, stride={self.stride}, "
                f"pad={self.padding}")
