"""The toy space's networks: a supernet whose edges mix the three ops by softmax(α), and the derived network that
keeps one op per edge. Registered for the ``toy`` space when imported (``ToySpace.network_module``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from raynas.nn.profile import register_summary
from raynas.nn.registry import register_network, register_supernet
from raynas.spaces.genotype import Cell, Genotype

from .space import EDGES, OPS, SPACE_NAME


def make_op(name: str, channels: int) -> nn.Module:
    if name == "conv_1x1":
        return nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.ReLU())
    if name == "avg_pool":
        return nn.AvgPool2d(3, stride=1, padding=1)
    return nn.Identity()


class _Base(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.head = nn.Linear(channels, num_classes)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(2, 3)))


class ToySupernet(_Base):
    def __init__(self, in_channels: int = 1, channels: int = 4, num_classes: int = 10) -> None:
        super().__init__(in_channels, channels, num_classes)
        self.edges = nn.ModuleList(nn.ModuleList(make_op(op, channels) for op in OPS) for _ in range(EDGES))
        self.alpha = nn.Parameter(1e-3 * torch.randn(EDGES, len(OPS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for ops, weights in zip(self.edges, self.alpha.softmax(dim=-1)):
            x = sum(w * op(x) for w, op in zip(weights, ops))
        return self.classify(x)

    def derive_genotype(self) -> Genotype:
        ops = tuple(OPS[int(i)] for i in self.alpha.argmax(dim=-1))
        return Genotype(SPACE_NAME, (Cell((("edge", ops),)),))

    def alpha_table(self) -> dict[str, list[float]]:
        return {f"cell0.edge[{i}]": [float(v) for v in w] for i, w in enumerate(self.alpha.softmax(dim=-1))}


class ToyNet(_Base):
    def __init__(self, genotype: Genotype, in_channels: int = 1, channels: int = 4, num_classes: int = 10) -> None:
        super().__init__(in_channels, channels, num_classes)
        self.ops = nn.Sequential(*(make_op(op, channels) for op in genotype.cells[0]["edge"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.ops(self.stem(x)))


def build_toy_network(genotype: Genotype, *, channels: int = 1, width: int | None = None, num_classes: int = 10,
                      **_: Any) -> ToyNet:
    return ToyNet(genotype, in_channels=channels, channels=width or 4, num_classes=num_classes)


def build_toy_supernet(*, channels: int = 1, width: int | None = None, num_classes: int = 10, **_: Any) -> ToySupernet:
    return ToySupernet(in_channels=channels, channels=width or 4, num_classes=num_classes)


def summarize(genotype: Genotype, *, dataset: str, layers: int | None, channels: int | None) -> dict[str, Any]:
    net = build_toy_network(genotype, width=channels)
    ops = list(genotype.cells[0]["edge"])
    return {"space": SPACE_NAME, "dataset": dataset, "ops": ops,
            "params": sum(p.numel() for p in net.parameters())}


def format_summary(summary: dict[str, Any]) -> str:
    return f"{summary['space']}  ops {' -> '.join(summary['ops'])}  params {summary['params']:,}"


register_network(SPACE_NAME, build_toy_network)
register_supernet(SPACE_NAME, build_toy_supernet)
register_summary(SPACE_NAME, summarize, format_summary)
