"""What every classifier cell search shares (DARTS, SWD-NAS): the train/validation split of the training
set, the weight optimiser (SGD, cosine to ``lr_min``, grad clip), validation scores of the supernet, and the
size of the network a genotype retrains as. Plain PyTorch, on ``searchers.differentiable``; a strategy, so it
lives beside it, above the classify task core it drives."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from raynas.classify.data import ClassifyData
from raynas.classify.step import classify_train_step, evaluate_classifier
from raynas.config import RaynasConfig
from raynas.device import training_setup
from raynas.errors import ConfigError
from searchers.differentiable import DifferentiableSearch


class ClassifierSearch(DifferentiableSearch):
    """Subclasses build ``self.supernet`` in ``build_supernet`` and may add α updates in ``train_step``.

    ``section`` is the method's config section; it provides ``epochs``, ``batch_size``, ``lr``, ``lr_min``,
    ``momentum``, ``weight_decay`` and ``grad_clip``."""

    headline_metrics = ("val_acc",)

    def __init__(self, cfg: RaynasConfig, section: Any, device: torch.device | None = None):
        super().__init__()
        self.cfg, self.section = cfg, section
        setup = training_setup(cfg.train, device)
        self.device, self.precision = setup.device, setup.precision
        self.data = ClassifyData.from_config(cfg.data, seed=cfg.train.seed).to(self.device)
        if not self.data.has("val"):
            raise ConfigError("a search needs a validation part: set data.train_portion below 1 (DARTS: 0.5)")
        self.real = self.data  # the sampler state a resumed search restores
        self.num_classes = self.data.num_classes
        self.supernet: nn.Module = self.precision.prepare(self.build_supernet())
        s = section
        self.optimizer = torch.optim.SGD(self.supernet.weight_parameters(), lr=s.lr, momentum=s.momentum,
                                         weight_decay=s.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=s.epochs,
                                                                    eta_min=s.lr_min)
        self.epochs = s.epochs
        self.batch_size = s.batch_size
        self.images_per_step = s.batch_size
        self.iters_per_epoch = self.data.num_batches("train", s.batch_size)
        self.metric_keys = ("train_loss", "train_acc")
        self._batches: Any = iter(())

    def build_supernet(self) -> nn.Module:
        raise NotImplementedError

    # ------------------------------------------------------------------ the loop
    def modules(self) -> list[nn.Module]:
        return [self.supernet]

    def begin_epoch(self) -> None:
        self._batches = iter(self.data.train_batches(self.batch_size, part="train"))
        self._lr = float(self.optimizer.param_groups[0]["lr"])

    def next_train_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return next(self._batches)

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        out = classify_train_step(self.supernet, self.optimizer, self.precision.images(x), y,
                                  precision=self.precision, grad_clip=self.section.grad_clip)
        return {"train_loss": out["loss"], "train_acc": out["correct"] / out["batch_size"]}

    def train_step(self) -> dict[str, float | None]:
        x, y = self.next_train_batch()
        return self.weight_step(x, y)

    def end_epoch(self) -> dict[str, float]:
        self.scheduler.step()  # after the epoch (DARTS steps it before, so its epoch 0 is already decayed)
        return {"lr": self._lr}

    # ------------------------------------------------------------------ read-outs
    def derive_genotype(self):
        return self.supernet.derive_genotype()

    def alpha_table(self) -> dict[str, list[float]]:
        return self.supernet.alpha_table()

    def eval_due(self) -> bool:
        return True  # the validation split is scored every epoch (it decides nothing but the curves)

    def evaluate(self, genotype) -> dict[str, Any]:
        """The supernet's loss and accuracy on the validation part (never the test split)."""
        scores = evaluate_classifier(self.supernet, self.data.eval_batches("val", self.cfg.train.eval_batch_size),
                                     self.precision)
        return {"val_loss": scores["loss"], "val_acc": scores["top1"]}

    def derived_params(self, genotype) -> int:
        """Parameters (DARTS' count, no auxiliary head) of the network ``genotype`` retrains as (``model.*``)."""
        return retrain_params(self.cfg, genotype, self.num_classes)

    def stateful(self) -> dict[str, Any]:
        return {"supernet": self.supernet, "optimizer": self.optimizer, "scheduler": self.scheduler}


def retrain_params(cfg: RaynasConfig, genotype, num_classes: int) -> int:
    """Build the evaluation network on the meta device (no memory) and count it as DARTS does."""
    from raynas.build import classifier_for
    from raynas.nn.darts_net import count_parameters

    with torch.device("meta"):
        net = classifier_for(cfg, genotype, num_classes, auxiliary=False)
    return count_parameters(net)
