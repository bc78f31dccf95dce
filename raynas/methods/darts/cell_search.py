"""One DARTS search trial in plain PyTorch: the supernet, its weight steps (``searchers.classifier_search``) and
its α steps (``searchers.architect``), in DARTS' order: an α step on a validation batch, then a weight step
on a training batch."""

from __future__ import annotations

from typing import Any

import torch

from raynas.config import RaynasConfig
from raynas.errors import ConfigError
from raynas.nn.darts_search import DartsSupernet
from searchers.architect import Architect
from searchers.classifier_search import ClassifierSearch


class DartsSearch(ClassifierSearch):
    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None):
        super().__init__(cfg, cfg.darts, device)
        d = cfg.darts
        self.architect = Architect(self.supernet, order=d.order, lr=d.arch_lr, weight_decay=d.arch_weight_decay)
        for p in self.supernet.arch_parameters():  # weight steps leave α alone; the architect owns it
            p.requires_grad_(False)
        self.metric_keys = ("train_loss", "train_acc", "arch_loss")

    def build_supernet(self) -> DartsSupernet:
        return build_search_network(self.cfg, self.num_classes)

    def train_step(self) -> dict[str, float | None]:
        x, y = self.next_train_batch()
        x_val, y_val = self.data.next_batch(self.batch_size, part="val")
        arch_loss = self.architect.step((x_val, y_val), (x, y), w_optimizer=self.optimizer)
        return {**self.weight_step(x, y), "arch_loss": arch_loss}

    def row_fields(self) -> dict[str, Any]:
        return {"order": self.cfg.darts.order}

    def stateful(self) -> dict[str, Any]:
        return {**super().stateful(), "architect": self.architect}


def build_search_network(cfg: RaynasConfig, num_classes: int) -> DartsSupernet:
    """The search supernet at ``darts.*``'s sizes for ``cfg.data``'s images."""
    d = cfg.darts
    return DartsSupernet(d.channels, num_classes, d.layers, steps=d.steps, multiplier=d.multiplier,
                         in_channels=cfg.data.channels)


def check_search(cfg: RaynasConfig) -> None:
    """Before anything runs: the search network's shape, the dataset, and the retrain network's genotype
    route (the search's output becomes ``model.genotype``)."""
    from raynas.classify.preflight import preflight_search

    d = cfg.darts
    if d.multiplier > d.steps:
        raise ConfigError(f"darts.multiplier={d.multiplier} concatenates more nodes than a cell has "
                          f"(darts.steps={d.steps})")
    preflight_search(cfg, lambda: build_search_network(cfg, 10))


def smoke(cfg: RaynasConfig):
    """One search epoch in-process (the contract test's route to a genotype)."""
    search = DartsSearch(cfg, torch.device("cpu"))
    search.train_epoch()
    return search.derive_genotype()
