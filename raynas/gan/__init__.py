"""GAN training core: hinge losses, EMA, augmentation, the shared training step (no Ray); checkpoints re-exported."""

from raynas.checkpoints import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from raynas.gan.augment import Augment, make_augment
from raynas.gan.ema import EMA
from raynas.gan.losses import d_hinge_loss, g_hinge_loss
from raynas.gan.step import BatchSource, GStepHooks, StepConfig, gan_train_step, make_optimizers, sample_latent

__all__ = [
    "EMA",
    "Augment",
    "BatchSource",
    "GStepHooks",
    "StepConfig",
    "capture_rng_state",
    "d_hinge_loss",
    "g_hinge_loss",
    "gan_train_step",
    "load_checkpoint",
    "make_augment",
    "make_optimizers",
    "restore_rng_state",
    "sample_latent",
    "save_checkpoint",
]
