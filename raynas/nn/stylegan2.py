"""StyleGAN2 (Karras et al., CVPR 2020) in plain PyTorch: no compiled extension, runs on any device.

Sizes follow the configuration the Re-GAN authors trained (their code builds on rosinality's stylegan2-pytorch):
at 256 px, channel multiplier 2, latent 512 and 8 mapping layers, G has 30,034,338 parameters and D 28,864,129.
Feature maps have 512 channels up to 32 px, then ``256 * m, 128 * m, 64 * m, 32 * m, 16 * m`` at 64 … 1024 px
(``m`` = channel multiplier).

**Generator**: mapping network (pixel norm, ``mapping_layers`` equalised linear layers at lr × 0.01, leaky ReLU),
a learned 4×4 constant, then per resolution an up-sampling modulated 3×3 conv and a plain one, each followed by a
per-pixel noise input (learned strength, starts at 0) and a biased leaky ReLU × sqrt(2); every resolution's
modulated 1×1 toRGB (no demodulation) adds to the FIR-up-sampled image of the one below (skip architecture).
``forward(z)`` gives images; :meth:`StyleGAN2Generator.mapping`, :meth:`StyleGAN2Generator.synthesis` and
:func:`mix_styles` give the pieces that style mixing and path-length regularisation need.

**Discriminator**: a 1×1 fromRGB, residual blocks (two 3×3 convs, the second one FIR-blurred and strided, plus a
blurred strided 1×1 skip, summed and divided by sqrt(2)) down to 4×4, minibatch standard deviation (groups of up
to 4, one feature), a 3×3 conv and two equalised linear layers.

**FIR filtering** (:func:`upfirdn2d`): up-sample by zero insertion, pad, convolve with a separable [1, 3, 3, 1]
filter, down-sample by striding. The filter runs as a depthwise ``conv2d``, so FLOP counters see it. Up-sampling
convs are a stride-2 transposed conv followed by the FIR blur; down-sampling convs blur first.

**Modulated convolution** runs in the grouped form: the batch is folded into the channel axis and every sample's
modulated (and demodulated) weight is one group of a single ``conv2d`` call (``conv_transpose2d`` when
up-sampling). The stored weight is an ordinary ``nn.Parameter`` of shape ``(out, in, k, k)``: Re-GAN masks and
EMA see it like any conv weight, and each such layer reports its own FLOPs through ``layer_flops``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.nn.equalized import EqualConv2d, EqualLinear, PixelNorm, bias_lrelu
from raynas.nn.registry import register_family, sized

RESOLUTIONS = tuple(2 ** i for i in range(3, 11))  # 8 … 1024
FIR = (1.0, 3.0, 3.0, 1.0)


def stylegan2_channels(resolution: int, channel_multiplier: int = 2, max_channels: int = 512) -> int:
    """Feature-map channels at ``resolution``: the StyleGAN2 config-f table (512 up to 32 px, then
    ``16384 / resolution * channel_multiplier``), capped at ``max_channels`` (below 512 only for small CPU runs)."""
    table = 512 if resolution <= 32 else max(1, 16384 // resolution) * channel_multiplier
    return min(table, max_channels)


def fir_kernel(taps: Sequence[float] = FIR, gain: float = 1.0) -> torch.Tensor:
    """The 2-D separable filter of ``taps`` (outer product), normalised to sum ``gain``."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    k2 = k[:, None] * k[None, :]
    return k2 * (gain / k2.sum())


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Up-sample by zero insertion (``up``), pad both spatial axes by ``pad`` = (before, after) (negative crops),
    convolve every channel with the 2-D ``kernel`` (a true convolution: the kernel is flipped), keep every
    ``down``-th pixel."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[2], x.shape[3]
        x = x[:, :, max(-p0, 0): hh - max(-p1, 0), max(-p0, 0): ww - max(-p1, 0)]
    weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(c, 1, *kernel.shape).contiguous()
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down] if down > 1 else x


class FIRFilter(nn.Module):
    """:func:`upfirdn2d` with a fixed filter held as a buffer (not a parameter)."""

    def __init__(self, pad: tuple[int, int], up: int = 1, down: int = 1, taps: Sequence[float] = FIR,
                 gain: float | None = None) -> None:
        super().__init__()
        gain = float(up * up) if gain is None else gain  # zero insertion keeps 1 pixel in up²: restore the level
        self.register_buffer("kernel", fir_kernel(taps, gain=gain), persistent=False)
        self.pad, self.up, self.down = pad, up, down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, self.up, self.down, self.pad)


def upsample2x(taps: Sequence[float] = FIR) -> FIRFilter:
    """×2 FIR up-sampling that maps H to 2H (the toRGB skip path)."""
    p = len(taps) - 2
    return FIRFilter(((p + 1) // 2 + 1, p // 2), up=2, taps=taps)


class ModulatedConv2d(nn.Module):
    """Style-modulated conv: ``w'[b,o,i] = w[o,i] * s[b,i] / sqrt(in k²)``, demodulated to unit norm per output
    channel when ``demodulate``; ``upsample`` makes it a stride-2 transposed conv followed by the FIR blur."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, *, demodulate: bool = True,
                 upsample: bool = False, taps: Sequence[float] = FIR) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_ch, out_ch, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        if upsample:  # transposed conv gives 2H + k - 2; the blur brings it to 2H
            p = (len(taps) - 2) - (kernel_size - 1)
            self.blur = FIRFilter(((p + 1) // 2 + 1, p // 2 + 1), taps=taps, gain=4.0)

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample weights ``(batch, out, in, k, k)`` for styles ``(batch, style_dim)``."""
        s = self.modulation(style)
        w = self.weight[None] * self.scale * s[:, None, :, None, None]
        if self.demodulate:
            w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        return w

    fused = True  # False: the same function as a plain conv between input scaling and output demodulation

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if not self.fused:
            return self._unfused(x, style)
        b, c, h, w_ = x.shape
        w = self.modulated_weight(style)
        k, o = self.kernel_size, self.out_channels
        x = x.reshape(1, b * c, h, w_)
        if self.upsample:
            weight = w.transpose(1, 2).reshape(b * c, o, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, groups=b)
            return self.blur(out.reshape(b, o, out.shape[2], out.shape[3]))
        out = F.conv2d(x, w.reshape(b * o, c, k, k), padding=k // 2, groups=b)
        return out.reshape(b, o, out.shape[2], out.shape[3])

    def _unfused(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Scale the input channels by the style, convolve with the shared weight, scale each output channel by
        its demodulation factor: one conv for the whole batch with no batch-sized group count, which ONNX and
        batch-free exports need (StyleGAN2's "unfused" form)."""
        s = self.modulation(style) * self.scale  # (b, in)
        k = self.kernel_size
        x = x * s[:, :, None, None]
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, self.weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, self.weight, padding=k // 2)
        if self.demodulate:  # sum over in, k, k of (w[o,i] s[b,i])²: the squared weight norms times s²
            d = torch.rsqrt(s.pow(2) @ self.weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # (b, out)
            out = out * d[:, :, None, None]
        return out

    def layer_flops(self, x: torch.Tensor, y: torch.Tensor) -> int:
        """Forward FLOPs (2 per multiply-add) of the conv over the whole batch; the modulation layer counts its own
        and the FIR blur is counted by ``count_flops`` (a depthwise conv)."""
        if self.upsample:
            return 2 * x.numel() * self.out_channels * self.kernel_size ** 2
        return 2 * y.numel() * self.in_channels * self.kernel_size ** 2

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, demodulate={self.demodulate}, "
                f"upsample={self.upsample}")


class StyledConv(nn.Module):
    """Modulated conv → noise (learned strength) → bias → leaky ReLU × sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, *, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style)
        if noise is None:
            noise = torch.randn(out.shape[0], 1, out.shape[2], out.shape[3], device=out.device, dtype=out.dtype)
        return bias_lrelu(out + self.noise_strength * noise, self.bias)


class ToRGB(nn.Module):
    """Modulated 1×1 conv without demodulation plus bias, added to the up-sampled image of the level below."""

    def __init__(self, in_ch: int, style_dim: int, out_channels: int = 3, *, upsample: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.upsample = upsample2x() if upsample else None

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias.view(1, -1, 1, 1)
        if skip is not None and self.upsample is not None:
            out = out + self.upsample(skip)
        return out


def check_resolution(resolution: int) -> int:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"StyleGAN2 resolution must be a power of two from 8 to 1024, got {resolution}")
    return int(math.log2(resolution))


def mix_styles(w1: torch.Tensor, w2: torch.Tensor, num_ws: int, index: int) -> torch.Tensor:
    """Style mixing: ``(batch, num_ws, dim)`` with ``w1`` for the first ``index`` layers and ``w2`` for the rest."""
    if not 0 <= index <= num_ws:
        raise ValueError(f"mixing index {index} outside 0..{num_ws}")
    return torch.cat([w1[:, None].expand(-1, index, -1), w2[:, None].expand(-1, num_ws - index, -1)], dim=1)


class StyleGAN2Generator(nn.Module):
    """Mapping network + synthesis network; ``forward(z) -> images`` (unbounded, about [-1, 1])."""

    # Re-GAN never prunes the toRGB layers here unless regan.exclude says otherwise: the authors' StyleGAN2 code
    # skips every parameter whose name holds "to_rgb" (raynas.gan.regan_masks.exclude_patterns)
    regan_exclude: tuple[str, ...] = ("*to_rgb*",)

    def __init__(self, resolution: int = 256, latent_dim: int = 512, mapping_layers: int = 8,
                 channel_multiplier: int = 2, out_channels: int = 3, lr_mapping: float = 0.01,
                 max_channels: int = 512) -> None:
        super().__init__()
        log_res = check_resolution(resolution)
        self.resolution, self.latent_dim, self.out_channels = resolution, latent_dim, out_channels
        self.num_ws = 2 * log_res - 2  # one w per modulated conv and toRGB (toRGB shares with the next conv)
        self.mapping_net = nn.Sequential(PixelNorm(), *[
            EqualLinear(latent_dim, latent_dim, lr_mul=lr_mapping, activate=True) for _ in range(mapping_layers)])
        ch = {2 ** i: stylegan2_channels(2 ** i, channel_multiplier, max_channels) for i in range(2, log_res + 1)}
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        self.conv0 = StyledConv(ch[4], ch[4], latent_dim)
        self.to_rgb0 = ToRGB(ch[4], latent_dim, out_channels, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for i in range(3, log_res + 1):
            self.convs.append(StyledConv(ch[2 ** (i - 1)], ch[2 ** i], latent_dim, upsample=True))
            self.convs.append(StyledConv(ch[2 ** i], ch[2 ** i], latent_dim))
            self.to_rgbs.append(ToRGB(ch[2 ** i], latent_dim, out_channels))
        self.num_noises = 1 + len(self.convs)
        self.register_buffer("pl_mean", torch.zeros(()))  # path-length regularisation's running mean (recipe.py)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(batch, latent_dim)`` → intermediate latents w of the same shape."""
        return self.mapping_net(z)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """``(batch, dim)`` → ``(batch, num_ws, dim)``: the same w for every layer."""
        return w[:, None].expand(-1, self.num_ws, -1)

    @torch.no_grad()
    def mean_w(self, n: int = 4096) -> torch.Tensor:
        """The average w over ``n`` random latents (the truncation centre)."""
        z = torch.randn(n, self.latent_dim, device=self.const.device)
        return self.mapping(z).mean(0, keepdim=True)

    def synthesis(self, ws: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """Images from per-layer styles ``ws`` ``(batch, num_ws, dim)``; ``noise`` (``num_noises`` maps or None)
        fixes the noise inputs, else they are drawn afresh."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be (batch, {self.num_ws}, {self.latent_dim}), got {tuple(ws.shape)}")
        noise = list(noise) if noise is not None else [None] * self.num_noises
        x = self.const.repeat(ws.shape[0], 1, 1, 1)  # not expand: a no-grad view of a leaf trips module hooks
        x = self.conv0(x, ws[:, 0], noise[0])
        img = self.to_rgb0(x, ws[:, 1])
        for j, to_rgb in enumerate(self.to_rgbs):
            i = 2 * j + 1
            x = self.convs[2 * j](x, ws[:, i], noise[2 * j + 1])
            x = self.convs[2 * j + 1](x, ws[:, i + 1], noise[2 * j + 2])
            img = to_rgb(x, ws[:, i + 2], img)
        return img

    def forward(self, z: torch.Tensor, noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        return self.synthesis(self.broadcast(self.mapping(z)), noise)


class DConv(nn.Module):
    """Discriminator conv: optional FIR blur + stride 2, equalised conv, then bias + leaky ReLU × sqrt(2)
    (``activate``) or a plain bias (``bias``) or nothing."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, *, downsample: bool = False,
                 bias: bool = True, activate: bool = True, taps: Sequence[float] = FIR) -> None:
        super().__init__()
        self.blur = None
        if downsample:
            p = (len(taps) - 2) + (kernel_size - 1)
            self.blur = FIRFilter(((p + 1) // 2, p // 2), taps=taps)
        self.conv = EqualConv2d(in_ch, out_ch, kernel_size, stride=2 if downsample else 1,
                                padding=0 if downsample else kernel_size // 2, bias=bias and not activate)
        self.act_bias = nn.Parameter(torch.zeros(out_ch)) if activate and bias else None
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.blur is not None:
            x = self.blur(x)
        x = self.conv(x)
        return bias_lrelu(x, self.act_bias) if self.activate else x


class DResBlock(nn.Module):
    """conv3×3 → blurred strided conv3×3, plus a blurred strided 1×1 skip without bias; the sum / sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = DConv(in_ch, in_ch, 3)
        self.conv2 = DConv(in_ch, out_ch, 3, downsample=True)
        self.skip = DConv(in_ch, out_ch, 1, downsample=True, bias=False, activate=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) * (1 / math.sqrt(2))


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_features: int = 1) -> torch.Tensor:
    """Append ``num_features`` maps holding, per group of ``group_size`` samples (sample ``n`` is in group
    ``n mod (batch / group_size)``), the mean over channels and pixels of the population std over the group.

    The group is the largest divisor of the batch up to ``group_size``, so any batch size works.
    """
    b, c, h, w = x.shape
    # a whole number of full groups takes the first branch without looking at other divisors, so a program
    # exported for batches that are multiples of group_size (raynas export) needs no guard on the batch
    g = group_size if b % group_size == 0 else max(d for d in range(1, min(group_size, b) + 1) if b % d == 0)
    y = x.reshape(g, -1, num_features, c // num_features, h, w)
    y = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8)  # (b/g, F, c/F, h, w)
    y = y.mean(dim=(2, 3, 4))[:, :, None, None]  # (b/g, F, 1, 1)
    y = y.repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """Residual discriminator with minibatch standard deviation; ``forward(images) -> (batch, 1)`` logits."""

    def __init__(self, resolution: int = 256, channel_multiplier: int = 2, in_channels: int = 3,
                 stddev_group: int = 4, max_channels: int = 512) -> None:
        super().__init__()
        log_res = check_resolution(resolution)
        ch = {2 ** i: stylegan2_channels(2 ** i, channel_multiplier, max_channels) for i in range(2, log_res + 1)}
        self.from_rgb = DConv(in_channels, ch[resolution], 1)
        self.blocks = nn.Sequential(*[DResBlock(ch[2 ** i], ch[2 ** (i - 1)]) for i in range(log_res, 2, -1)])
        self.stddev_group = stddev_group
        self.final_conv = DConv(ch[4] + 1, ch[4], 3)
        self.final_linear = EqualLinear(ch[4] * 16, ch[4], activate=True)
        self.out = EqualLinear(ch[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.from_rgb(x))
        h = self.final_conv(minibatch_stddev(h, self.stddev_group))
        return self.out(self.final_linear(h.flatten(1)))


register_family("stylegan2", "generator", lambda model, data: sized(
    StyleGAN2Generator, "model.generator", data.resolution, model.latent_dim, model.mapping_layers,
    model.channel_multiplier, data.channels, max_channels=model.max_channels), max_resolution=RESOLUTIONS[-1])
register_family("stylegan2", "discriminator", lambda model, data: sized(
    StyleGAN2Discriminator, "model.discriminator", data.resolution, model.channel_multiplier, data.channels,
    max_channels=model.max_channels), max_resolution=RESOLUTIONS[-1])
