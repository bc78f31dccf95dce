"""Config sections of task "classify" (frozen, validated like every raynas section).

Defaults are DARTS' CIFAR evaluation (retrain) settings [darts ``train.py``; spec §1.4]; ``IMAGENET_TRAIN``
and ``DARTS_SEARCH_WEIGHTS`` hold the other two reference settings. The trainer reads these fields by
name, so any object with the same attributes works too.
"""

from __future__ import annotations

from dataclasses import dataclass

from raynas.config import _f
from raynas.data.specs import CLASSIFY_DATASETS
from raynas.errors import ConfigError


@dataclass(frozen=True)
class ClassifyDataConfig:
    name: str = _f("cifar10", choices=CLASSIFY_DATASETS)
    root: str | None = _f(None, doc="dataset folder; else RAYNAS_DATA, then system locations")
    resolution: int = _f(0, lo=0, hi=1024, doc="0 = the dataset's default (28 px sets padded to 32; ImageNet 224)")
    channels: int = _f(0, choices=(0, 1, 3), doc="0 = the dataset's own")
    train_portion: float = _f(0.5, lo=0.0, hi=1.0, doc="search split: first portion trains, the rest is 'val'; "
                                                      "1 = train on the whole training split (retrain)")
    fraction: float = _f(1.0, lo=0.0, hi=1.0, doc="seeded random subset of the training split, in (0, 1]")
    limit: int = _f(0, lo=0, doc="use only the first N training images (0 = all)")
    test_limit: int = _f(0, lo=0, doc="use only the first N test images (0 = all; quick runs only)")
    num_workers: int = _f(4, lo=0, hi=64, doc="DataLoader workers (ImageNet only)")

    def __post_init__(self) -> None:
        if self.train_portion <= 0:
            raise ConfigError("data.train_portion must be > 0 (the first portion of the training split trains)")
        if self.fraction <= 0:
            raise ConfigError("data.fraction must be > 0")


@dataclass(frozen=True)
class ClassifyTrainConfig:
    epochs: int = _f(600, lo=1)
    batch_size: int = _f(96, lo=1)
    lr: float = _f(0.025, lo=0.0, hi=10.0)
    lr_min: float = _f(0.0, lo=0.0, hi=10.0, doc="cosine end value (DARTS eval 0; DARTS search 0.001)")
    momentum: float = _f(0.9, lo=0.0, hi=1.0)
    weight_decay: float = _f(3e-4, lo=0.0, hi=1.0)
    grad_clip: float = _f(5.0, lo=0.0, doc="global L2 norm; 0 = off")
    schedule: str = _f("cosine", choices=("cosine", "step"),
                       doc="cosine: to lr_min over epochs; step: lr * lr_gamma per epoch (DARTS ImageNet)")
    lr_gamma: float = _f(0.97, lo=0.0, hi=1.0, doc="schedule=step: factor per epoch")
    label_smoothing: float = _f(0.0, lo=0.0, hi=1.0)
    cutout: bool = _f(True)
    cutout_length: int = _f(16, lo=1, hi=1024)
    auxiliary_weight: float = _f(0.4, lo=0.0, doc="weight of the auxiliary head's loss (0 = ignore it)")
    drop_path_prob: float = _f(0.2, lo=0.0, hi=1.0, doc="final value; ramps linearly from 0 over the epochs")
    seed: int = _f(0, lo=0)
    device: str = _f("auto", doc="auto | cpu | cuda | cuda:N")
    amp: str = _f("auto", choices=("auto", "true", "false"), doc="bf16 autocast; auto = on for CUDA")
    channels_last: str = _f("auto", choices=("auto", "true", "false"))
    checkpoint_every: int = _f(1, lo=1, doc="epochs between checkpoints")
    eval_batch_size: int = _f(256, lo=1)

    def __post_init__(self) -> None:
        if self.lr_min > self.lr:
            raise ConfigError(f"train.lr_min={self.lr_min} is above train.lr={self.lr}")


@dataclass(frozen=True)
class ClassifyModelConfig:
    genotype: str = _f("darts-v2", doc="a shipped genotype name or a genotype JSON path")
    layers: int = _f(20, lo=1, doc="cells")
    channels: int = _f(36, lo=1, doc="C: initial channels")
    auxiliary: bool = _f(True, doc="auxiliary head after cell 2 * layers // 3")
    reduction_positions: tuple[int, ...] = _f((), doc="0-based cells that reduce; empty = DARTS' rule "
                                                      "(layers // 3 and 2 * layers // 3)")
    stem_multiplier: int = _f(3, lo=1)
    imagenet: bool = _f(False, doc="the ImageNet network (stride-4 stems, ImageNet auxiliary head)")

    def __post_init__(self) -> None:
        bad = [p for p in self.reduction_positions if not 0 <= p < self.layers]
        if bad:
            raise ConfigError(f"model.reduction_positions {list(bad)} lie outside cells 0..{self.layers - 1}")
        if len(set(self.reduction_positions)) != len(self.reduction_positions):
            raise ConfigError(f"model.reduction_positions {list(self.reduction_positions)} repeat a cell")


# DARTS' ImageNet (mobile) evaluation [darts train_imagenet.py]: 250 epochs, batch 128, lr 0.1 x 0.97 per
# epoch, wd 3e-5, label smoothing 0.1, auxiliary 0.4, no drop path, no cutout.
IMAGENET_TRAIN = ClassifyTrainConfig(epochs=250, batch_size=128, lr=0.1, weight_decay=3e-5, schedule="step",
                                     lr_gamma=0.97, label_smoothing=0.1, cutout=False, drop_path_prob=0.0)
IMAGENET_MODEL = ClassifyModelConfig(layers=14, channels=48, imagenet=True)

# The weight optimiser of a DARTS search [darts train_search.py]: 50 epochs, batch 64, cosine to 0.001,
# no cutout, no auxiliary head, no drop path.
DARTS_SEARCH_WEIGHTS = ClassifyTrainConfig(epochs=50, batch_size=64, lr_min=0.001, cutout=False,
                                           auxiliary_weight=0.0, drop_path_prob=0.0)

