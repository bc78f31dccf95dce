"""GAN training core: hinge losses, EMA, augmentation, the shared training step (no Ray); checkpoints re-exported.

The names below load on first use (PEP 562), so a torch-free module of this package (Re-GAN's settings and
schedule, :mod:`raynas.gan.regan_schedule`, which the CLI reads with every config) imports without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "EMA": "raynas.gan.ema",
    "Augment": "raynas.gan.augment",
    "BatchSource": "raynas.gan.step",
    "GStepHooks": "raynas.gan.step",
    "StepConfig": "raynas.gan.step",
    "capture_rng_state": "raynas.checkpoints",
    "d_hinge_loss": "raynas.gan.losses",
    "g_hinge_loss": "raynas.gan.losses",
    "gan_train_step": "raynas.gan.step",
    "load_checkpoint": "raynas.checkpoints",
    "make_augment": "raynas.gan.augment",
    "make_optimizers": "raynas.gan.step",
    "restore_rng_state": "raynas.checkpoints",
    "sample_latent": "raynas.gan.step",
    "save_checkpoint": "raynas.checkpoints",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'raynas.gan' has no attribute {name!r}")
