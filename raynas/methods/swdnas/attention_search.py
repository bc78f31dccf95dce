"""One SWD-NAS search trial in plain PyTorch: the search network (``raynas.nn.swd_search``) trained single level
(weights and attention MLPs in one SGD on the training part), and each epoch's attention statistics, which are the
architecture, accumulated as ``swd.stats`` says: over the validation part after the epoch (in eval mode, no
gradient; the authors' ``infer``) or over the epoch's training steps. They are reset at every epoch start, so
the derived genotype and the α table of an epoch describe that epoch only."""

from __future__ import annotations

from typing import Any

import torch

from raynas.classify.step import evaluate_classifier
from raynas.config import RaynasConfig
from raynas.nn.swd_search import SwdSupernet
from searchers.classifier_search import ClassifierSearch


def build_search_network(cfg: RaynasConfig, num_classes: int) -> SwdSupernet:
    s = cfg.swd
    return SwdSupernet(s.channels, num_classes, s.layers, k=s.k, steps=s.steps, multiplier=s.multiplier,
                       in_channels=cfg.data.channels, ua=s.ua, ua_pool=s.ua_pool, la_pool=s.la_pool,
                       ua_reduction=s.ua_reduction, la_reduction=s.la_reduction, residual=s.residual,
                       attention_bias=s.attention_bias, awn=s.awn)


class SwdSearch(ClassifierSearch):
    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None):
        super().__init__(cfg, cfg.swd, device)
        self.metric_keys = ("train_loss", "train_acc")
        self._val_scores: dict[str, float] | None = None

    def build_supernet(self) -> SwdSupernet:
        return build_search_network(self.cfg, self.num_classes)

    def begin_epoch(self) -> None:
        super().begin_epoch()
        self.supernet.reset_attention()
        self.supernet.set_recording(self.cfg.swd.stats == "train")
        self._val_scores = None

    def end_epoch(self) -> dict[str, float]:
        self.supernet.set_recording(False)
        out = super().end_epoch()
        if self.cfg.swd.stats == "val":
            self._val_scores = self.accumulate_validation()
        return out

    def accumulate_validation(self) -> dict[str, float]:
        """One eval-mode pass over the validation part with recording on; returns its loss and accuracy (the
        same pass scores the supernet, so the validation split is read once per epoch)."""
        self.supernet.set_recording(True)
        try:
            scores = evaluate_classifier(self.supernet,
                                         self.data.eval_batches("val", self.cfg.train.eval_batch_size),
                                         self.precision)
        finally:
            self.supernet.set_recording(False)
        return {"val_loss": scores["loss"], "val_acc": scores["top1"]}

    def evaluate(self, genotype) -> dict[str, Any]:
        if self._val_scores is not None:
            return dict(self._val_scores)
        return super().evaluate(genotype)

    def row_fields(self) -> dict[str, Any]:
        return {"k": self.cfg.swd.k}


def check_search(cfg: RaynasConfig) -> None:
    """Before anything runs: the search network's shape (k against every cell's channels, the depth), the
    dataset and its validation part."""
    from raynas.classify.preflight import preflight_search

    preflight_search(cfg, lambda: build_search_network(cfg, 10))


def smoke(cfg: RaynasConfig):
    """One search epoch in-process (the contract test's route to a genotype)."""
    search = SwdSearch(cfg, torch.device("cpu"))
    search.train_epoch()
    return search.derive_genotype()
