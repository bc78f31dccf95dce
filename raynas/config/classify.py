"""The sections of task ``classify``: ``model`` (the evaluation network) and ``train`` (its training)."""

from __future__ import annotations

from dataclasses import dataclass

from raynas.config.fields import DEVICE_DOC, MAX_EPOCHS, setting
from raynas.errors import ConfigError


@dataclass(frozen=True)
class ClassifyTrainConfig:
    epochs: int = setting(600, lo=1, hi=MAX_EPOCHS)
    batch_size: int = setting(96, lo=1)
    lr: float = setting(0.025, lo=0.0, hi=10.0)
    lr_min: float = setting(0.0, lo=0.0, hi=10.0, doc="cosine end value (DARTS eval 0; DARTS search 0.001)")
    momentum: float = setting(0.9, lo=0.0, hi=1.0)
    weight_decay: float = setting(3e-4, lo=0.0, hi=1.0)
    grad_clip: float = setting(5.0, lo=0.0, doc="global L2 norm; 0 = off")
    schedule: str = setting("cosine", choices=("cosine", "step"),
                            doc="cosine: to lr_min over epochs; step: lr * lr_gamma per epoch (DARTS ImageNet)")
    lr_gamma: float = setting(0.97, lo=0.0, hi=1.0, doc="schedule=step: factor per epoch")
    label_smoothing: float = setting(0.0, lo=0.0, hi=1.0)
    cutout: bool = setting(True)
    cutout_length: int = setting(16, lo=1, hi=1024)
    auxiliary_weight: float = setting(0.4, lo=0.0, doc="weight of the auxiliary head's loss (0 = ignore it)")
    drop_path_prob: float = setting(0.2, lo=0.0, hi=1.0, doc="final value; ramps linearly from 0 over the epochs")
    seed: int = setting(0, lo=0)
    device: str = setting("auto", doc=DEVICE_DOC)
    amp: str = setting("auto", choices=("auto", "true", "false"), doc="bf16 autocast; auto = on for CUDA")
    channels_last: str = setting("auto", choices=("auto", "true", "false"))
    checkpoint_every: int = setting(1, lo=1, doc="epochs between checkpoints")
    eval_batch_size: int = setting(256, lo=1)
    sync_bn: bool = setting(False, doc="data-parallel runs (--num-workers > 1): BatchNorm statistics over the "
                                       "global batch, as one worker computes them")

    def __post_init__(self) -> None:
        if self.lr_min > self.lr:
            raise ConfigError(f"train.lr_min={self.lr_min} is above train.lr={self.lr}")


@dataclass(frozen=True)
class ClassifyModelConfig:
    genotype: str = setting("darts-v2", doc="a shipped genotype name or a genotype JSON path")
    layers: int = setting(20, lo=1, doc="cells")
    channels: int = setting(36, lo=1, doc="C: initial channels")
    auxiliary: bool = setting(True, doc="auxiliary head after cell 2 * layers // 3")
    reduction_positions: tuple[int, ...] = setting((), doc="0-based cells that reduce; empty = DARTS' rule "
                                                           "(layers // 3 and 2 * layers // 3)")
    stem_multiplier: int = setting(3, lo=1)
    imagenet: bool = setting(False, doc="the ImageNet network (stride-4 stems, ImageNet auxiliary head)")

    def __post_init__(self) -> None:
        bad = [p for p in self.reduction_positions if not 0 <= p < self.layers]
        if bad:
            raise ConfigError(f"model.reduction_positions {list(bad)} lie outside cells 0..{self.layers - 1}")
        if len(set(self.reduction_positions)) != len(self.reduction_positions):
            raise ConfigError(f"model.reduction_positions {list(self.reduction_positions)} repeat a cell")

