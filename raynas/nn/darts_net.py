"""DARTS evaluation networks, built from a per-layer plan of cells.

A network is a stem, a stack of ``Cell``s and a classifier. Which cell sits at each layer, and whether
it reduces (stride-2 ops on the cell inputs, channels doubled), is a **plan**: one ``LayerSpec(cell,
reduction)`` per layer. DARTS' normal/reduce genotype is one such plan (``darts_plan``); SWD-NAS's five
cells (6×c0, c1 (R), 6×c2, c3 (R), 6×c4) and DARTS-GAL's pruned cells (fewer nodes, shorter concat) are
others, and reuse ``Cell``/``CellNetwork`` unchanged.

Op for op as DARTS' ``cnn/model.py``: cell inputs are preprocessed to ``C`` channels by ``ReLUConvBN``
1×1 (``FactorizedReduce`` for ``s0`` when the previous cell reduced); a node sums its two ops; drop
path (training only) on every op that is not an identity; the output concatenates the ``concat`` states.
The CIFAR stem is conv 3×3 (``in_channels → 3C``) + BN; the ImageNet stems are DARTS' two stride-2
stems. The auxiliary head follows the last reduction cell (DARTS: cell ``2·layers//3``). One deviation:
the ImageNet network pools globally with ``AdaptiveAvgPool2d(1)`` instead of ``AvgPool2d(7)`` (the same
at 224×224, and it also runs at other resolutions).

``forward`` returns ``(logits, logits_aux)``; ``logits_aux`` is ``None`` in eval mode or without the
head. ``count_parameters`` follows DARTS' ``count_parameters_in_MB`` (every parameter whose name does
not contain ``auxiliary``). The builder is registered as ``build_network`` space ``"darts"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.darts_ops import FactorizedReduce, ReLUConvBN, drop_path
from raynas.nn.ops import Identity, build_op
from raynas.nn.profile import count_flops, count_params, format_classifier_summary, register_summary
from raynas.nn.registry import register_network
from raynas.spaces.darts import CellGenotype, DartsGenotype


class LayerSpec(NamedTuple):
    """One layer of a plan: its cell genotype and whether it is a reduction cell."""

    cell: CellGenotype
    reduction: bool


def reduction_positions_for(layers: int, positions: Sequence[int] | None = None) -> tuple[int, ...]:
    """The reduction cells' indices: ``positions`` checked, or DARTS' ``layers//3, 2*layers//3``."""
    if not isinstance(layers, int) or layers < 1:
        raise ConfigError(f"layers={layers!r}: a network needs at least one cell")
    if positions is None:
        if layers < 3:
            raise ConfigError(f"layers={layers} is too small for DARTS' two reduction cells at layers//3 and "
                              "2*layers//3 (they need at least 3 cells); use layers >= 3 or set the reduction "
                              "positions explicitly")
        return (layers // 3, 2 * layers // 3)
    out = tuple(positions)
    bad = [p for p in out if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < layers]
    if bad:
        raise ConfigError(f"reduction positions {list(out)}: {bad} not a cell index 0..{layers - 1} "
                          f"(the network has {layers} cells; positions are 0-based)")
    if len(set(out)) != len(out):
        raise ConfigError(f"reduction positions {list(out)} repeat a cell")
    return tuple(sorted(out))


def darts_plan(genotype: DartsGenotype, layers: int,
               reduction_positions: Sequence[int] | None = None) -> list[LayerSpec]:
    """DARTS' stacking: the reduce cell at the reduction positions, the normal cell everywhere else."""
    if not isinstance(genotype, DartsGenotype):
        raise GenotypeError(f"a darts network needs a darts genotype, got one for space "
                            f"{getattr(genotype, 'space', type(genotype).__name__)!r}")
    genotype.validate()
    reductions = set(reduction_positions_for(layers, reduction_positions))
    return [LayerSpec(genotype.cell(i in reductions), i in reductions) for i in range(layers)]


class Cell(nn.Module):
    """One evaluation cell: ``forward(s0, s1, drop_prob)`` → concat of the ``concat`` states (``multiplier·C``)."""

    def __init__(self, genotype: CellGenotype, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool, affine: bool = True):
        super().__init__()
        genotype.validate("reduce" if reduction else "normal")
        self.genotype = genotype
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c, affine=affine)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=affine)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=affine)
        self.ops = nn.ModuleList(build_op("darts", name, c, stride=2 if reduction and index < 2 else 1, affine=affine)
                                 for name, index in genotype.ops)
        self.indices = tuple(index for _, index in genotype.ops)
        self.concat = genotype.concat
        self.steps = genotype.steps
        self.multiplier = genotype.multiplier
        self._droppable = tuple(not isinstance(op, Identity) for op in self.ops)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        drop = self.training and drop_prob > 0.0
        for i in range(self.steps):
            total = None
            for k in (2 * i, 2 * i + 1):
                h = self.ops[k](states[self.indices[k]])
                if drop and self._droppable[k]:
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(self.node_output(i, total))
        return torch.cat([states[i] for i in self.concat], dim=1)

    def node_output(self, i: int, total: torch.Tensor) -> torch.Tensor:
        """Node ``i``'s state from the sum of its two inputs (the hook DARTS-GAL's soft masks scale)."""
        return total


class _AuxiliaryHead(nn.Module):
    """ReLU → avg pool 5 → 1×1 conv 128 → BN → ReLU → 2×2 conv 768 → [BN] → ReLU → linear."""

    pool_stride: int
    bn_after_768: bool

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=self.pool_stride, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), *([nn.BatchNorm2d(768)] if self.bn_after_768 else []),
            nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class AuxiliaryHeadCIFAR(_AuxiliaryHead):
    """DARTS' CIFAR auxiliary classifier (expects an 8×8 map): pool stride 3, BN after the 768 conv."""

    pool_stride = 3
    bn_after_768 = True


class AuxiliaryHeadImageNet(_AuxiliaryHead):
    """DARTS' ImageNet auxiliary classifier: pool stride 2 and no BN after the 768 conv (DARTS omits it "for
    consistency with the paper")."""

    pool_stride = 2
    bn_after_768 = False


class CellNetwork(nn.Module):
    """Stem → one ``Cell`` per ``plan`` entry → global average pool → linear (plus an optional auxiliary head).

    ``imagenet_stem`` selects DARTS' ImageNet stems (three stride-2 convs, ``C`` channels) instead of the CIFAR
    stem (``stem_multiplier·C`` channels). The cell width starts at ``C`` and doubles at every reduction cell.
    The auxiliary head reads the output of cell ``auxiliary_position`` (default: the last reduction cell).
    Set ``drop_path_prob`` (attribute) per epoch; drop path acts in training mode only.
    """

    def __init__(self, plan: Sequence[LayerSpec], C: int, num_classes: int, *, in_channels: int = 3,
                 auxiliary: bool = False, auxiliary_position: int | None = None, imagenet_stem: bool = False,
                 stem_multiplier: int = 3, drop_path_prob: float = 0.0):
        super().__init__()
        plan = [LayerSpec(*spec) for spec in plan]
        if not plan:
            raise ConfigError("a network plan needs at least one cell")
        for name, value in (("C", C), ("num_classes", num_classes), ("in_channels", in_channels),
                            ("stem_multiplier", stem_multiplier)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive integer")
        self.plan = tuple(plan)
        self.layers = len(plan)
        self.C = C
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.imagenet_stem = imagenet_stem
        self.drop_path_prob = drop_path_prob
        reductions = [i for i, spec in enumerate(plan) if spec.reduction]
        self.reduction_positions = tuple(reductions)
        self.auxiliary = auxiliary
        if auxiliary_position is None and auxiliary:
            if not reductions:
                raise ConfigError("the auxiliary head follows the last reduction cell, but the plan has none; "
                                  "set auxiliary_position")
            auxiliary_position = reductions[-1]
        if auxiliary and not 0 <= auxiliary_position < len(plan):
            raise ConfigError(f"auxiliary_position={auxiliary_position} is not a cell index 0..{len(plan) - 1}")
        self.auxiliary_position = auxiliary_position if auxiliary else None

        if imagenet_stem:
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
                nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
            c_prev_prev = c_prev = C
            reduction_prev = True
        else:
            c_stem = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(c_stem))
            c_prev_prev = c_prev = c_stem
            reduction_prev = False

        self.cells = nn.ModuleList()
        c_curr = C
        c_to_auxiliary = 0
        for i, spec in enumerate(plan):
            if spec.reduction:
                c_curr *= 2
            cell = Cell(spec.cell, c_prev_prev, c_prev, c_curr, spec.reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = spec.reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.auxiliary_position:
                c_to_auxiliary = c_prev
        if auxiliary:
            head = AuxiliaryHeadImageNet if imagenet_stem else AuxiliaryHeadCIFAR
            self.auxiliary_head = head(c_to_auxiliary, num_classes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits_aux = None
        if self.imagenet_stem:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.auxiliary_position and self.training:
                logits_aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, logits_aux

    def feature_sizes(self, resolution: int) -> list[int]:
        """Side length of every cell's output for ``resolution``×``resolution`` inputs; raises ``ConfigError``
        where DARTS' stride-2 ops would need an even size and get an odd one."""
        size = resolution

        def halve(where: str) -> int:
            if size % 2:
                raise ConfigError(f"input resolution {resolution}: the {where} gets a {size}x{size} map, but "
                                  "DARTS' stride-2 ops (FactorizedReduce) need even sizes; use a resolution "
                                  "divisible by 2 at every reduction (e.g. a multiple of "
                                  f"{2 ** (len(self.reduction_positions) + (3 if self.imagenet_stem else 0))})")
            return size // 2

        if self.imagenet_stem:
            for where in ("first ImageNet stem conv", "second ImageNet stem conv", "third ImageNet stem conv"):
                size = halve(where)
        sizes = []
        for i, spec in enumerate(self.plan):
            if spec.reduction:
                size = halve(f"reduction cell {i}")
            sizes.append(size)
        return sizes

    def check_resolution(self, resolution: int) -> None:
        """Raise ``ConfigError`` unless ``resolution``×``resolution`` inputs run through this network."""
        if not isinstance(resolution, int) or resolution < 1:
            raise ConfigError(f"resolution={resolution!r} must be a positive integer")
        sizes = self.feature_sizes(resolution)
        if self.auxiliary_position is not None:
            size = sizes[self.auxiliary_position]
            head: Any = self.auxiliary_head
            pooled = (size - 5) // head.pool_stride + 1 if size >= 5 else 0
            if pooled != 2:
                want = "8x8" if head.pool_stride == 3 else "7x7 or 8x8"
                raise ConfigError(f"the auxiliary head after cell {self.auxiliary_position} gets a {size}x{size} map "
                                  f"at resolution {resolution}; DARTS' head needs {want} there (its 5x5 pool and "
                                  "2x2 conv leave 1x1). Turn the auxiliary head off or change the resolution")


class NetworkCIFAR(CellNetwork):
    """DARTS' CIFAR network: ``layers`` cells of ``genotype`` (defaults: reductions at ``layers//3``,
    ``2*layers//3``; auxiliary head after the last reduction cell, i.e. cell ``2*layers//3``)."""

    def __init__(self, C: int, num_classes: int, layers: int, auxiliary: bool, genotype: DartsGenotype, *,
                 in_channels: int = 3, reduction_positions: Sequence[int] | None = None, stem_multiplier: int = 3,
                 auxiliary_position: int | None = None, drop_path_prob: float = 0.0):
        super().__init__(darts_plan(genotype, layers, reduction_positions), C, num_classes, in_channels=in_channels,
                         auxiliary=auxiliary, auxiliary_position=auxiliary_position, stem_multiplier=stem_multiplier,
                         drop_path_prob=drop_path_prob)
        self.genotype = genotype


class NetworkImageNet(CellNetwork):
    """DARTS' ImageNet (mobile) network: stride-2 stems, 14 cells, C=48 by default, ImageNet auxiliary head."""

    def __init__(self, C: int = 48, num_classes: int = 1000, layers: int = 14, auxiliary: bool = False,
                 genotype: DartsGenotype | None = None, *, in_channels: int = 3,
                 reduction_positions: Sequence[int] | None = None, auxiliary_position: int | None = None,
                 drop_path_prob: float = 0.0):
        if genotype is None:
            raise GenotypeError("NetworkImageNet needs a darts genotype")
        super().__init__(darts_plan(genotype, layers, reduction_positions), C, num_classes, in_channels=in_channels,
                         auxiliary=auxiliary, auxiliary_position=auxiliary_position, imagenet_stem=True,
                         drop_path_prob=drop_path_prob)
        self.genotype = genotype


def count_parameters(model: nn.Module) -> int:
    """DARTS' count: every parameter whose name does not contain ``auxiliary`` (and no architecture parameter)."""
    arch_fn = getattr(model, "arch_parameters", None)
    arch = {id(p) for p in arch_fn()} if callable(arch_fn) else set()
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name and id(p) not in arch)


def build_darts_network(genotype: DartsGenotype, *, resolution: int = 32, channels: int = 3, width: int | None = None,
                        layers: int | None = None, num_classes: int | None = None, auxiliary: bool = False,
                        reduction_positions: Sequence[int] | None = None, imagenet: bool = False,
                        drop_path_prob: float = 0.0, stem_multiplier: int = 3,
                        latent_dim: int | None = None) -> CellNetwork:
    """``build_network`` builder for space ``darts``; checks that ``resolution`` runs through the network.

    Defaults: CIFAR 20 cells, C=36, 10 classes; ImageNet (``imagenet=True``) 14 cells, C=48, 1000 classes.
    ``channels`` is the number of image channels; ``latent_dim`` is accepted and ignored.
    """
    del latent_dim  # classifiers have no latent input
    if imagenet:
        net: CellNetwork = NetworkImageNet(_default(width, 48), _default(num_classes, 1000), _default(layers, 14),
                                           auxiliary, genotype, in_channels=channels,
                                           reduction_positions=reduction_positions, drop_path_prob=drop_path_prob)
    else:
        net = NetworkCIFAR(_default(width, 36), _default(num_classes, 10), _default(layers, 20), auxiliary, genotype,
                           in_channels=channels, reduction_positions=reduction_positions,
                           drop_path_prob=drop_path_prob, stem_multiplier=stem_multiplier)
    net.check_resolution(resolution)
    return net


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


register_network("darts", build_darts_network)


# ----------------------------------------------------------------------------------------------- summaries
class DatasetShape(NamedTuple):
    """What a network needs to know about a dataset: input side, image channels, classes, ImageNet stems."""

    resolution: int
    in_channels: int
    num_classes: int
    imagenet: bool = False


#: Datasets by name (MNIST and Fashion-MNIST as raynas loads them: zero-padded to 32×32).
DARTS_DATASETS: dict[str, DatasetShape] = {
    "cifar10": DatasetShape(32, 3, 10),
    "cifar100": DatasetShape(32, 3, 100),
    "imagenet": DatasetShape(224, 3, 1000, True),
    "mnist": DatasetShape(32, 1, 10),
    "fashion-mnist": DatasetShape(32, 1, 10),
    "embedded": DatasetShape(32, 1, 10),
}


def resolve_dataset_shape(dataset: str | DatasetShape | Sequence[Any]) -> DatasetShape:
    """A ``DatasetShape`` from a dataset name (``DARTS_DATASETS``) or a ``(resolution, in_channels,
    num_classes[, imagenet])`` tuple."""
    if isinstance(dataset, str):
        if dataset not in DARTS_DATASETS:
            raise ConfigError(f"unknown dataset {dataset!r} for a darts network; known: {', '.join(DARTS_DATASETS)}")
        return DARTS_DATASETS[dataset]
    return DatasetShape(*dataset)


def summarize_darts(genotype: DartsGenotype, *, dataset_shape: str | DatasetShape | Sequence[Any] = "cifar10",
                    layers: int | None = None, channels: int | None = None,
                    reduction_positions: Sequence[int] | None = None) -> dict[str, Any]:
    """Size and cost of ``genotype``'s evaluation network (``raynas arch show`` for darts genotypes).

    ``channels`` is the initial cell width C (defaults as ``build_darts_network``: 36 / 48). Keys: ``space``,
    ``resolution``, ``in_channels``, ``num_classes``, ``imagenet``, ``layers``, ``channels``,
    ``reduction_positions``, ``params`` (DARTS' count, without the auxiliary head), ``params_with_aux``
    (``None`` where DARTS' auxiliary head does not fit the resolution), ``flops`` (per image, forward, eval
    mode: ``raynas.nn.profile.count_flops``, 2 per multiply-add), ``cells`` (per cell: ``index``,
    ``reduction``, ``C``, ``out_channels``, ``size`` (output side), ``params``, ``ops`` ([op, input] pairs),
    ``concat``) and ``other_params`` (stems and classifier).
    """
    return summarize_cell_network(genotype, build_darts_network, dataset_shape=dataset_shape, layers=layers,
                                  channels=channels, reduction_positions=reduction_positions)


def summarize_cell_network(genotype: Any, build: Any, *, dataset_shape: str | DatasetShape | Sequence[Any] = "cifar10",
                           layers: int | None = None, channels: int | None = None,
                           reduction_positions: Sequence[int] | None = None) -> dict[str, Any]:
    """``summarize_darts`` for any genotype whose builder ``build(genotype, **build_network kwargs)`` returns a
    ``CellNetwork`` (darts, swd-nas): the same keys."""
    shape = resolve_dataset_shape(dataset_shape)
    kwargs: dict[str, Any] = {"resolution": shape.resolution, "channels": shape.in_channels, "width": channels,
                              "layers": layers, "num_classes": shape.num_classes, "imagenet": shape.imagenet,
                              "reduction_positions": reduction_positions}
    net = build(genotype, auxiliary=False, **kwargs)
    params = count_parameters(net)
    try:
        with torch.device("meta"):  # counted only: no memory, no initialisation
            with_aux: int | None = count_params(build(genotype, auxiliary=True, **kwargs))
    except ConfigError:
        with_aux = None
    flops = count_flops(net, torch.zeros(1, shape.in_channels, shape.resolution, shape.resolution))
    sizes = net.feature_sizes(shape.resolution)
    cells = []
    for i, (cell, spec) in enumerate(zip(net.cells, net.plan)):
        c = cell.preprocess1[1].out_channels
        cells.append({"index": i, "reduction": spec.reduction, "C": c, "out_channels": cell.multiplier * c,
                      "size": sizes[i], "params": count_parameters(cell), "ops": spec.cell.to_pairs(),
                      "concat": list(spec.cell.concat)})
    return {"space": genotype.space, "resolution": shape.resolution, "in_channels": shape.in_channels,
            "num_classes": shape.num_classes, "imagenet": shape.imagenet, "layers": net.layers, "channels": net.C,
            "reduction_positions": list(net.reduction_positions), "params": params, "params_with_aux": with_aux,
            "flops": flops, "cells": cells, "other_params": params - sum(c["params"] for c in cells)}


def _describe(genotype: DartsGenotype, *, dataset: str, layers: int | None, channels: int | None) -> dict[str, Any]:
    return summarize_darts(genotype, dataset_shape=dataset, layers=layers, channels=channels)


register_summary("darts", _describe, format_classifier_summary)
