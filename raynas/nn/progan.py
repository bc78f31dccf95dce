"""ProGAN (Karras et al., ICLR 2018) as the Re-GAN authors train it on CIFAR-10: progressive growing with fade-in,
pixel norm, equalised learning rate (gain sqrt(2)), minibatch standard deviation, leaky ReLU 0.1.

Every stage has ``channels`` feature maps. At latent 512, 512 channels and 32 px (the authors' setting) G has
23,079,436 parameters and D 20,726,785, as in their code. Other resolutions add or drop stages of the same shape
(one stage per doubling from 4×4).

**Generator**: a 4×4 transposed conv from the latent (its equalised-lr scale uses ``channels * 16`` as fan-in, as
the authors' code computes it), pixel norm, leaky ReLU, then per stage [nearest ×2 up-sampling (not at 4×4)] →
two 3×3 convs, each followed by pixel norm and leaky ReLU; a 1×1 toRGB per stage; tanh on the output.
**Discriminator**: a 1×1 fromRGB per stage (no activation), per stage two 3×3 convs with pixel norm and leaky ReLU
and 2×2 average pooling; at 4×4 one minibatch-std feature (the std over the batch, averaged over everything),
a 3×3 and a 4×4 (valid) conv, and a linear layer to one logit.

**Growing**: :meth:`ProGANGenerator.set_stage` / :meth:`ProGANDiscriminator.set_stage` choose the active stage
``step`` (0 = 4×4 … ``num_stages - 1`` = full resolution, the default) and the fade-in ``alpha`` in [0, 1]: while
``alpha < 1`` the new stage's output is blended with the previous stage's, up-sampled (G) or the pooled image
through the previous fromRGB (D). Networks start fully grown (last stage, alpha 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.nn.equalized import EqualConv2d, EqualLinear, PixelNorm, pixel_norm
from raynas.nn.registry import register_family, sized

GAIN = math.sqrt(2.0)
SLOPE = 0.1


def num_stages(resolution: int) -> int:
    """Stages from 4×4 up to ``resolution`` (a power of two, at least 4)."""
    n = math.log2(resolution) if resolution > 0 else 0
    if n < 2 or not n.is_integer():
        raise ValueError(f"ProGAN resolution must be a power of two of at least 4, got {resolution}")
    return int(n) - 1


class ConvBlock(nn.Sequential):
    """Two equalised convs, each followed by pixel norm (when ``norm``) and leaky ReLU 0.1."""

    def __init__(self, in_ch: int, out_ch: int, kernel1: int = 3, pad1: int = 1, kernel2: int = 3, pad2: int = 1,
                 norm: bool = True) -> None:
        layers: list[nn.Module] = []
        for cin, k, p in ((in_ch, kernel1, pad1), (out_ch, kernel2, pad2)):
            layers.append(EqualConv2d(cin, out_ch, k, padding=p, gain=GAIN))
            if norm:
                layers.append(PixelNorm())
            layers.append(nn.LeakyReLU(SLOPE))
        super().__init__(*layers)


class LatentToMap(nn.Module):
    """``(batch, latent)`` → ``(batch, channels, 4, 4)``: a transposed 4×4 conv on the 1×1 latent map."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(latent_dim, channels, 4, 4))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.scale = GAIN / math.sqrt(channels * 16)  # the authors' fan-in for this layer

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(z.reshape(z.shape[0], -1, 1, 1), self.weight * self.scale, self.bias)

    def layer_flops(self, x: torch.Tensor, y: torch.Tensor) -> int:
        return 2 * x.numel() * self.weight[0].numel()


class _Growing(nn.Module):
    num_stages: int

    def _init_stage(self, resolution: int) -> None:
        self.num_stages = num_stages(resolution)
        self.step, self.alpha = self.num_stages - 1, 1.0

    def set_stage(self, step: int, alpha: float = 1.0) -> None:
        """Grow to stage ``step`` (0 = 4×4) with fade-in ``alpha`` (1 = the new stage alone)."""
        if not 0 <= step < self.num_stages:
            raise ValueError(f"stage {step} outside 0..{self.num_stages - 1}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"fade-in alpha must lie in [0, 1], got {alpha}")
        self.step, self.alpha = int(step), float(alpha)

    @property
    def current_resolution(self) -> int:
        return 4 * 2 ** self.step


class ProGANGenerator(_Growing):
    """``forward(z) -> images`` in [-1, 1] at the current stage's resolution."""

    def __init__(self, latent_dim: int = 512, channels: int = 512, resolution: int = 32, out_channels: int = 3,
                 norm: bool = True) -> None:
        super().__init__()
        self._init_stage(resolution)
        self.latent_dim, self.resolution = latent_dim, resolution
        self.input = LatentToMap(latent_dim, channels)
        self.blocks = nn.ModuleList([ConvBlock(channels, channels, norm=norm) for _ in range(self.num_stages)])
        self.to_rgb = nn.ModuleList([EqualConv2d(channels, out_channels, 1, gain=GAIN)
                                     for _ in range(self.num_stages)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(pixel_norm(self.input(z)), SLOPE)
        prev = h
        for i in range(self.step + 1):
            prev = h
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = self.blocks[i](h)
        out = self.to_rgb[self.step](h)
        if self.step > 0 and self.alpha < 1.0:
            skip = F.interpolate(self.to_rgb[self.step - 1](prev), scale_factor=2.0, mode="nearest")
            out = (1.0 - self.alpha) * skip + self.alpha * out
        return torch.tanh(out)


def batch_stddev_feature(x: torch.Tensor) -> torch.Tensor:
    """Append one map holding the std over the batch (population, + 1e-8 under the root) averaged over all
    channels and pixels: ProGAN's minibatch standard deviation."""
    s = torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8).mean()
    return torch.cat([x, s.expand(x.shape[0], 1, x.shape[2], x.shape[3])], dim=1)


class ProGANDiscriminator(_Growing):
    """``forward(images) -> (batch, 1)`` logits for images at the current stage's resolution."""

    def __init__(self, channels: int = 512, resolution: int = 32, in_channels: int = 3,
                 norm: bool = True) -> None:
        super().__init__()
        self._init_stage(resolution)
        n = self.num_stages
        # index 0 works at full resolution, index n - 1 at 4×4 (where the minibatch-std feature enters)
        self.blocks = nn.ModuleList([ConvBlock(channels, channels, norm=norm) for _ in range(n - 1)]
                                    + [ConvBlock(channels + 1, channels, 3, 1, 4, 0, norm=norm)])
        self.from_rgb = nn.ModuleList([EqualConv2d(in_channels, channels, 1, gain=GAIN) for _ in range(n)])
        self.linear = EqualLinear(channels, 1, gain=GAIN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = self.num_stages - 1 - self.step
        h = self.from_rgb[top](x)
        for index in range(top, self.num_stages):
            if index == self.num_stages - 1:
                h = batch_stddev_feature(h)
            h = self.blocks[index](h)
            if index < self.num_stages - 1:
                h = F.avg_pool2d(h, 2)
                if index == top and self.alpha < 1.0:
                    skip = self.from_rgb[index + 1](F.avg_pool2d(x, 2))
                    h = (1.0 - self.alpha) * skip + self.alpha * h
        return self.linear(h.flatten(1))



def growth_stage(epoch: float, stage_epochs: Sequence[int]) -> tuple[int, float]:
    """``(step, alpha)`` at training time ``epoch`` (fractional: ``epoch + i / iters_per_epoch``) when stage ``k``
    (4·2^k px) trains for ``stage_epochs[k]`` epochs. As in the Re-GAN authors' ProGAN code, a stage's fade-in
    ``alpha = elapsed / stage_epochs[k]`` rises linearly over all of that stage's epochs (their CIFAR-10 schedule:
    2, 2, 2, 8). Past the end: the last stage, alpha 1."""
    if not stage_epochs or min(stage_epochs) < 1:
        raise ValueError(f"stage epochs must be positive, got {list(stage_epochs)}")
    start = 0.0
    for step, n in enumerate(stage_epochs):
        if epoch < start + n:
            return step, max(0.0, (epoch - start) / n)
        start += n
    return len(stage_epochs) - 1, 1.0


register_family("progan", "generator", lambda model, data: sized(
    ProGANGenerator, "model.generator", model.latent_dim, model.progan_channels, data.resolution, data.channels),
    max_resolution=1024)  # Karras et al. grow to 1024x1024
register_family("progan", "discriminator", lambda model, data: sized(
    ProGANDiscriminator, "model.discriminator", model.progan_channels, data.resolution, data.channels),
    max_resolution=1024)
