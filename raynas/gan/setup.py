"""What every GAN trainer starts from: device, precision, seeds and the real-image batch source.

The fixed trainer, the differentiable searches (DAMGAN) and EAGAN's SupernetHost all build through
``gan_setup``, so a dataset, loader or precision setting means the same in each of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from raynas.data import load_images, make_batch_source
from raynas.device import Precision, training_setup
from raynas.gan.step import sample_latent


@dataclass
class GanSetup:
    device: torch.device
    precision: Precision
    real: object            # a BatchSource of real images in [-1, 1] on the device
    num_images: int
    iters_per_epoch: int    # D steps per epoch (``iters_per_epoch`` or one pass over the data)


def gan_setup(cfg, *, dis_batch_size: int, iters_per_epoch: int = 0, device: torch.device | None = None,
              seed_offset: int = 0) -> GanSetup:
    """Seed, choose device/precision (``cfg.train``) and load ``cfg.data``'s training images as a batch
    source of ``dis_batch_size``; ``iters_per_epoch`` 0 means one pass over the data."""
    base = training_setup(cfg.train, device, seed_offset)
    d = cfg.data
    images = load_images(d.name, d.split, root=d.root, resolution=d.resolution, channels=d.channels,
                         limit=d.limit)
    if d.fraction < 1.0:  # a seeded subset (Re-GAN's data ratios), the same for every seed_offset
        keep = max(1, round(d.fraction * len(images)))
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.train.seed))
        images = images[order[:keep].sort().values]
    real = make_batch_source(images, base.device, mode=d.loader, batch_size=dis_batch_size,
                             num_workers=d.num_workers, seed=cfg.train.seed,
                             channels_last=base.precision.channels_last)
    return GanSetup(device=base.device, precision=base.precision, real=real, num_images=len(images),
                    iters_per_epoch=iters_per_epoch or max(1, len(images) // dis_batch_size))


def fixed_latents(n: int, latent_dim: int, device: torch.device, seed: int) -> torch.Tensor:
    """The latent batch every sample grid of a run is drawn from (identical on CPU and GPU)."""
    return sample_latent(n, latent_dim, device, torch.Generator(device="cpu").manual_seed(seed + 1))
