"""``raynas sample``: images from a GAN run's generator (its EMA weights where it kept them), reproducible per seed.

The latents come from a CPU ``torch.Generator`` seeded with ``seed`` and the generator runs in eval mode in float32
on the CPU, so one seed gives the same images on any machine that computes the same float32 results, and the
same PNG bytes on this one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from raynas.errors import ConfigError
from raynas.export.api import Network, resolve

BATCH = 64  # latents drawn and generated per forward pass


def run_generator(run: str | Path) -> Network:
    """A GAN run's trained generator (a CheckpointError when the run trained none)."""
    return resolve(run, part="generator", weights=True)


def sample_images(net: Network, n: int, seed: int) -> torch.Tensor:
    """``n`` images in [0, 1], shape (n, C, H, W), from the generator's latents seeded by ``seed``."""
    if net.kind != "generator":
        raise ConfigError(f"{net.source} is a {net.kind}; sampling needs a GAN generator")
    if n < 1:
        raise ConfigError(f"--n {n}: sample at least one image")
    from raynas.gan.step import sample_latent

    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    module = net.module.float().cpu().eval()
    chunks = []
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))  # what a generator draws itself (StyleGAN2's noise inputs) follows the seed
        for start in range(0, n, BATCH):
            z = sample_latent(min(BATCH, n - start), net.input_shape[0], "cpu", gen).float()
            chunks.append(module(z).float())
    return (torch.cat(chunks).clamp(-1, 1) + 1) / 2


def save_grid(images: torch.Tensor, out: Path) -> Path:
    """One PNG grid, 8 images a row."""
    from torchvision.utils import save_image

    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, str(out), nrow=8, padding=2)
    return out


def save_folder(images: torch.Tensor, folder: Path) -> list[Path]:
    """One PNG per image, ``000000.png`` …, in ``folder`` (made if missing)."""
    from torchvision.utils import save_image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        p = folder / f"{i:06d}.png"
        save_image(img, str(p))
        paths.append(p)
    return paths
