"""The toy search a Tune trial runs (``Method.search``): weights and α by one Adam step per batch on the training
part. Every result row carries the toy's own column ``toy_score`` (how decided α is: the mean top softmax weight)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from raynas.classify.data import ClassifyData
from raynas.nn.registry import build_network, build_supernet
from searchers.differentiable import DifferentiableSearch


class ToySearch(DifferentiableSearch):
    metric_keys = ("train_loss",)

    def __init__(self, cfg: Any, device: torch.device | None = None) -> None:
        super().__init__()
        self.cfg, toy = cfg, cfg.toy
        torch.manual_seed(cfg.train.seed)
        self.device = device or torch.device("cpu")
        self.data = self.real = ClassifyData.from_config(cfg.data, seed=cfg.train.seed)
        self.num_classes = self.data.num_classes
        self.supernet = build_supernet("toy", channels=cfg.data.channels, width=toy.channels,
                                       num_classes=self.num_classes)
        self.optimizer = torch.optim.Adam(self.supernet.parameters(), lr=toy.lr)
        self.epochs, self.batch_size = toy.epochs, toy.batch_size
        self.images_per_step = toy.batch_size
        self.iters_per_epoch = self.data.num_batches("train", toy.batch_size)
        self._batches: Any = iter(())

    def modules(self) -> list[torch.nn.Module]:
        return [self.supernet]

    def begin_epoch(self) -> None:
        self._batches = iter(self.data.train_batches(self.batch_size, part="train"))

    def train_step(self) -> dict[str, float]:
        x, y = next(self._batches)
        loss = F.cross_entropy(self.supernet(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"train_loss": float(loss)}

    def derive_genotype(self):
        return self.supernet.derive_genotype()

    def alpha_table(self) -> dict[str, list[float]]:
        return self.supernet.alpha_table()

    def derived_params(self, genotype) -> int:
        net = build_network(genotype, channels=self.cfg.data.channels, width=self.cfg.toy.channels,
                            num_classes=self.num_classes)
        return sum(p.numel() for p in net.parameters())

    def row_fields(self) -> dict[str, Any]:
        top = [max(weights) for weights in self.alpha_table().values()]
        return {"toy_score": sum(top) / len(top)}

    def stateful(self) -> dict[str, Any]:
        return {"supernet": self.supernet, "optimizer": self.optimizer}
