"""Epoch loop for one fixed classifier (DARTS/SWD-NAS/DARTS-GAL retrains): plain PyTorch, no Ray.

The loop is DARTS' ``train.py`` with its traps removed: the learning-rate schedule steps once AFTER each
epoch (DARTS steps it before training, so its epoch 0 already runs at a decayed rate, T-D4), and nothing
here selects on the test split (T-D7): ``evaluate("test")`` only reports. Drop path ramps linearly,
``model.drop_path_prob = drop_path_prob * epoch / epochs`` at the start of each (0-based) epoch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raynas.checkpoints import capture_sampling_state, load_checkpoint, restore_sampling_state, save_checkpoint
from raynas.config import ClassifyTrainConfig
from raynas.device import training_setup
from raynas.distributed import SINGLE, Replicas, convert_sync_bn
from raynas.errors import CheckpointError, ConfigError

from .step import classify_train_step, evaluate_classifier

EVAL_SPLITS = ("val", "test")


def make_optimizer(params: Any, cfg: Any) -> torch.optim.SGD:
    """SGD with momentum and weight decay (nesterov off), as every DARTS-family script uses."""
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=False)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: Any) -> torch.optim.lr_scheduler.LRScheduler:
    """cosine: ``CosineAnnealingLR(T_max=epochs, eta_min=lr_min)``; step: ``StepLR(1, gamma=lr_gamma)``.
    Either is stepped once per epoch, after it."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=cfg.lr_min)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=cfg.lr_gamma)
    raise ConfigError(f"train.schedule={cfg.schedule!r} is not allowed; choose one of cosine, step")


class ClassifierTrainer:
    """Owns a fixed network, its optimiser and schedule, and the data of one classifier training run.

    ``model`` is a built ``nn.Module`` or a zero-argument builder (called after seeding, so rebuilding
    gives the same initial weights). ``data`` is a ``ClassifyData`` (or anything with its
    ``train_batches`` / ``eval_batches`` / ``num_batches`` / ``has`` / ``to`` / ``state_dict`` interface).
    ``cfg`` is a ``ClassifyTrainConfig`` or any object with its attribute names. ``replicas``: this process's
    place in a data-parallel run (:mod:`raynas.distributed`; default one process): every process draws the
    same global batch of ``cfg.batch_size`` and trains on its slice; ``cfg.sync_bn`` synchronises BatchNorm.
    """

    def __init__(self, model: nn.Module | Callable[[], nn.Module], data: Any, cfg: Any = None, *,
                 device: torch.device | str | None = None, replicas: Replicas | None = None) -> None:
        self.cfg = cfg = cfg if cfg is not None else ClassifyTrainConfig()
        setup = training_setup(cfg, torch.device(device) if device is not None else None)
        self.device, self.precision = setup.device, setup.precision
        if not isinstance(model, nn.Module):
            if not callable(model):
                raise TypeError(f"model must be an nn.Module or a builder returning one, got {type(model).__name__}")
            model = model()
        self.replicas = replicas = replicas or SINGLE
        if replicas.parallel:
            replicas.check_batch(cfg.batch_size, "train.batch_size")
            if hasattr(data, "sizes"):
                replicas.check_last_batch(data.sizes["train"], cfg.batch_size, "the training part")
            if getattr(cfg, "sync_bn", False):
                model = convert_sync_bn(model)
        self.model = self.precision.prepare(model)
        replicas.broadcast_module(self.model)
        self.data = data.to(self.device)
        self.optimizer = make_optimizer(self.model.parameters(), cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg)
        self.epoch = 0  # completed epochs

    # ------------------------------------------------------------------ schedule
    @property
    def lr(self) -> float:
        """The learning rate the next epoch trains with."""
        return float(self.optimizer.param_groups[0]["lr"])

    def drop_path_at(self, epoch: int) -> float:
        return float(self.cfg.drop_path_prob) * epoch / self.cfg.epochs

    @property
    def done(self) -> bool:
        return self.epoch >= self.cfg.epochs

    # ------------------------------------------------------------------ training
    def train_epoch(self, progress: bool = False) -> dict[str, float]:
        """One pass over the ``train`` part; returns epoch (1-based count of completed epochs),
        train_loss, train_acc (fraction), lr (the rate this epoch used), images_per_s, train_seconds."""
        cfg = self.cfg
        if self.done:
            raise ConfigError(f"all {cfg.epochs} epochs are trained; raise train.epochs to train further")
        self.model.drop_path_prob = self.drop_path_at(self.epoch)
        self.model.train()
        lr = self.lr
        cutout = int(cfg.cutout_length) if cfg.cutout else 0
        batches: Any = self.data.train_batches(cfg.batch_size, cutout_length=cutout)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, total=self.data.num_batches("train", cfg.batch_size),
                           desc=f"epoch {self.epoch + 1}/{cfg.epochs}", leave=False)
        loss_sum, correct, seen = 0.0, 0, 0
        rep = self.replicas
        start = time.perf_counter()
        for x, y in batches:
            n = len(y)  # the global batch; this process trains on its slice
            x, y = rep.part(x, y)
            out = classify_train_step(self.model, self.optimizer, x, y, precision=self.precision,
                                      aux_weight=cfg.auxiliary_weight, grad_clip=cfg.grad_clip,
                                      label_smoothing=cfg.label_smoothing, replicas=rep, share=rep.share(n))
            loss_sum += out["loss"] * n
            correct += out["correct"]
            seen += n
        if rep.parallel:
            correct = int(rep.sum([correct])[0])
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        self.scheduler.step()
        self.epoch += 1
        return {
            "epoch": self.epoch,
            "train_loss": loss_sum / max(1, seen),
            "train_acc": correct / max(1, seen),
            "lr": lr,
            "images_per_s": seen / max(seconds, 1e-9),
            "train_seconds": seconds,
        }

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split: str = "val") -> dict[str, float]:
        """Mean loss and top-1/top-5 accuracy (fractions) on ``val`` (the held-out part of the training
        split: select on this) or ``test`` (report only). Changes no weights, statistics or RNG state."""
        if split not in EVAL_SPLITS:
            raise ConfigError(f"evaluate() takes one of {', '.join(EVAL_SPLITS)}, got {split!r}")
        return evaluate_classifier(self.model, self.data.eval_batches(split, self.cfg.eval_batch_size),
                                   self.precision)

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ------------------------------------------------------------------ what the fixed trainable reads
    score_part = "test"

    @classmethod
    def for_config(cls, cfg: Any, device: torch.device | None = None, *, holdout: bool = False,
                   replicas: Replicas | None = None) -> ClassifierTrainer:
        """The fixed run of a resolved classify config: its genotype's network on its whole training split
        (``data.train_portion`` is for searches), scored on the test split. ``holdout``: train on the search's
        training part and score the validation part instead (how a search picks among its cells)."""
        import dataclasses

        from raynas.build import build_classifier
        from raynas.classify.data import ClassifyData

        data_cfg = cfg.data if holdout else dataclasses.replace(cfg.data, train_portion=1.0)
        trainer = cls(lambda: build_classifier(cfg), ClassifyData.from_config(data_cfg, seed=cfg.train.seed),
                      cfg.train, device=device, replicas=replicas)
        trainer.score_part = "val" if holdout else "test"
        return trainer

    @property
    def epochs(self) -> int:
        return self.cfg.epochs

    def eval_due(self) -> bool:
        return True  # test accuracy is reported every epoch (never used to pick one)

    def score(self) -> dict[str, float]:
        scores, part = self.evaluate(self.score_part), self.score_part
        return {f"{part}_loss": scores["loss"], f"{part}_acc": scores["top1"], f"{part}_top5": scores["top5"]}

    def headline_params(self) -> int:
        """DARTS' count: without the auxiliary head."""
        from raynas.nn.darts_net import count_parameters

        return count_parameters(self.model)

    @staticmethod
    def row(stats: dict[str, Any]) -> dict[str, Any]:
        return {k: stats[k] for k in ("train_loss", "train_acc", "lr")}

    def sample_grid(self) -> None:
        return None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "sampling": capture_sampling_state(self.data),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"the checkpoint does not match this network or optimiser ({type(e).__name__}: "
                                  f"{e}); resume with the genotype and model settings it was written with") from e
        self.epoch = int(state["epoch"])
        restore_sampling_state(state["sampling"], self.data)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the full training state atomically (see ``raynas.checkpoints.save_checkpoint``)."""
        return save_checkpoint(path, self.state_dict())

    def load(self, path: str | os.PathLike) -> None:
        self.load_state_dict(load_checkpoint(path, map_location=self.device))
