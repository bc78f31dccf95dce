"""DARTS-GAL networks (plain PyTorch): a ``darts-gal`` genotype's stacked cells, optionally with one scalar soft
mask per intermediate node (the GAL student), and the network of a pruned genotype.

Everything is DARTS' evaluation network (``raynas.nn.darts_net``: the same ``Cell``, stem, pooling and classifier,
with the same parameter names, so a darts network's checkpoint loads into the unpruned network and back) except:

* ``MaskedCell``: ``state_{i+2} = s_i · (op_a(h_a) + op_b(h_b))``; the scaled state feeds later nodes and the
  concat. Without masks it is ``Cell`` itself.
* a pruned cell is the ``Cell`` of its pruned genotype (fewer nodes, shorter concat); the next cells'
  preprocessing takes the channels it now outputs.
* a cell with no kept node is ``PassThrough``: it returns its ``s1`` input. A pass-through reduction cell does
  not reduce, so the resolution there stays (later cells keep their width); whether the following cell's
  ``s0`` needs ``FactorizedReduce`` follows the resolutions actually present.
* no auxiliary head and no ImageNet stems (DARTS-GAL uses neither).

The masked and the pruned network compute the same function (in eval mode) when the kept masks are 1 and the
pruned ones 0, as long as every op reading a pruned node maps 0 to 0 (pools, skip, and conv ops whose last BN
has ``β − γ·μ/√(σ²+ε) = 0``): pruning drops those edges, while the masked network still adds a conv edge's
BN offset. ``transfer_weights`` copies a masked network's weights into its pruned network. The pipeline
retrains the pruned network from scratch (GAL-D §3.4), so the offsets never matter there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from raynas.errors import ConfigError, GenotypeError
from raynas.methods.dartsgal.genotype import DartsGalGenotype
from raynas.nn.darts_net import Cell, count_parameters, resolve_dataset_shape
from raynas.nn.profile import _human, count_flops, register_summary
from raynas.nn.registry import register_network
from raynas.spaces.darts import CellGenotype


def mask_values(mask_init: float | str, steps: int) -> torch.Tensor:
    """Initial masks: the constant ``mask_init``, or ``"normal"`` for GAL's N(0, 1) sample per mask."""
    if isinstance(mask_init, str) and mask_init.strip().lower() == "normal":
        return torch.randn(steps)
    try:
        value = float(mask_init)
    except (TypeError, ValueError):
        raise ConfigError(f"mask_init={mask_init!r}: use a number (e.g. 1.0) or 'normal' (GAL's N(0,1))") from None
    return torch.full((steps,), value)


class MaskedCell(Cell):
    """A DARTS ``Cell`` with one scalar soft mask per intermediate node (``mask``; None = an ordinary cell)."""

    def __init__(self, genotype: CellGenotype, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool, mask_init: float | str | None = None):
        super().__init__(genotype, c_prev_prev, c_prev, c, reduction, reduction_prev)
        self.mask = None if mask_init is None else nn.Parameter(mask_values(mask_init, self.steps))

    def node_output(self, i: int, total: torch.Tensor) -> torch.Tensor:
        return total if self.mask is None else self.mask[i] * total


class PassThrough(nn.Module):
    """A cell with no kept node: its output is its ``s1`` input."""

    multiplier = 0
    steps = 0
    mask = None

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        return s1


class GalNetwork(nn.Module):
    """Stem → one cell per layer of ``genotype`` (kept nodes only) → global average pool → linear.

    ``mask_init`` (a number or ``"normal"``) gives every cell one soft mask per node (the GAL student); None
    builds the plain network. ``forward`` returns ``(logits, None)`` like DARTS' networks.
    """

    def __init__(self, genotype: DartsGalGenotype, num_classes: int = 10, *, mask_init: float | str | None = None,
                 drop_path_prob: float = 0.0):
        super().__init__()
        if not isinstance(genotype, DartsGalGenotype):
            raise GenotypeError(f"a darts-gal network needs a darts-gal genotype, got "
                                f"{getattr(genotype, 'space', type(genotype).__name__)!r}")
        genotype.validate()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes={num_classes!r} must be a positive integer")
        self.genotype = genotype
        self.num_classes = num_classes
        self.drop_path_prob = drop_path_prob
        C, stem = genotype.channels, genotype.stem_multiplier * genotype.channels
        self.C = C
        self.layers = genotype.layers
        self.stem = nn.Sequential(nn.Conv2d(genotype.in_channels, stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(stem))
        c_pp = c_p = stem
        level_pp = level_p = 0  # reductions applied to s0 / s1 so far
        c_curr = C
        self.cells = nn.ModuleList()
        self.live_reductions: list[int] = []
        for i, cell in enumerate(genotype.pruned_cells()):
            reduction = genotype.is_reduction(i)
            if reduction:
                c_curr *= 2  # later cells keep their width even when this one passes through
            if cell is None:
                self.cells.append(PassThrough())
                c_pp, level_pp = c_p, level_p
                continue
            module = MaskedCell(cell, c_pp, c_p, c_curr, reduction, level_pp < level_p, mask_init)
            self.cells.append(module)
            if reduction:
                self.live_reductions.append(i)
            c_pp, level_pp = c_p, level_p
            c_p, level_p = module.multiplier * c_curr, level_p + int(reduction)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
        return self.classifier(self.global_pooling(s1).flatten(1)), None

    # ------------------------------------------------------------------ masks
    def masks(self) -> list[nn.Parameter]:
        """The soft masks, one tensor per masked cell."""
        return [c.mask for c in self.cells if c.mask is not None]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the masks."""
        masks = {id(m) for m in self.masks()}
        return [p for p in self.parameters() if id(p) not in masks]

    def mask_table(self) -> list[list[float]]:
        """Per cell, its mask values (an empty list for a pass-through cell)."""
        return [[float(v) for v in c.mask.detach().cpu()] if c.mask is not None else [] for c in self.cells]

    # ------------------------------------------------------------------ sizes
    def feature_sizes(self, resolution: int) -> list[int]:
        """Side of every cell's output for square inputs; ConfigError where a reduction gets an odd side."""
        size, sizes = resolution, []
        for i in range(self.layers):
            if i in self.live_reductions:
                if size % 2:
                    raise ConfigError(f"input resolution {resolution}: reduction cell {i} gets a {size}x{size} map, "
                                      "but DARTS' stride-2 ops need even sides; use a resolution divisible by "
                                      f"{2 ** len(self.live_reductions)}")
                size //= 2
            sizes.append(size)
        return sizes

    def check_resolution(self, resolution: int) -> None:
        if not isinstance(resolution, int) or resolution < 1:
            raise ConfigError(f"resolution={resolution!r} must be a positive integer")
        self.feature_sizes(resolution)


# ============================================================================ weights: masked → pruned
def _output_map(genotype: CellGenotype, kept: Sequence[int], c: int) -> list[int]:
    """Channels of a masked cell's output that its pruned cell keeps, in the pruned cell's order."""
    out: list[int] = []
    for k, state in enumerate(genotype.concat):
        if state - 2 in kept:
            out += list(range(k * c, (k + 1) * c))
    return out


def _copy_sliced(dst: nn.Module, src: nn.Module, in_map: list[int]) -> None:
    """Copy ``src``'s state into ``dst``, keeping the ``in_map`` input channels of every tensor whose input
    dimension shrank (the 1×1 convs of ReLUConvBN / FactorizedReduce, a linear layer's weight)."""
    src_state, dst_state = src.state_dict(), dst.state_dict()
    for key, target in dst_state.items():
        value = src_state[key]
        if value.dim() >= 2 and value.shape[1] != target.shape[1]:
            value = value[:, in_map]
        target.copy_(value)


@torch.no_grad()
def transfer_weights(masked: GalNetwork, pruned: GalNetwork) -> GalNetwork:
    """Copy a masked (unpruned) network's weights into the network of its pruned genotype: kept ops, the
    preprocessing and classifier columns of the kept channels, the stem. Needs every cell to keep a node (a
    pass-through cell has no counterpart in the masked network). Returns ``pruned``."""
    g = pruned.genotype
    if any(not k for k in g.kept):
        raise GenotypeError("transfer_weights needs every cell to keep a node; a pass-through cell computes "
                            "something the masked network does not")
    pruned.stem.load_state_dict(masked.stem.state_dict())
    stem = masked.stem[0].out_channels
    map_pp = map_p = list(range(stem))
    for src, dst, full, kept in zip(masked.cells, pruned.cells, g.layer_cells(), g.kept):
        c = dst.preprocess1[1].out_channels
        _copy_sliced(dst.preprocess0, src.preprocess0, map_pp)
        _copy_sliced(dst.preprocess1, src.preprocess1, map_p)
        for j, node in enumerate(kept):
            for side in (0, 1):
                op_name, _ = dst.genotype.ops[2 * j + side]
                if op_name != "none" or full.ops[2 * node + side][0] == "none":
                    dst.ops[2 * j + side].load_state_dict(src.ops[2 * node + side].state_dict())
        map_pp, map_p = map_p, _output_map(full, kept, c)
    _copy_sliced(pruned.classifier, masked.classifier, map_p)
    return pruned


# ============================================================================ builder, summary
def build_dartsgal_network(genotype: DartsGalGenotype, *, resolution: int = 32, channels: int | None = None,
                           width: int | None = None, layers: int | None = None, num_classes: int | None = None,
                           auxiliary: bool = False, reduction_positions: Sequence[int] | None = None,
                           imagenet: bool = False, drop_path_prob: float = 0.0, stem_multiplier: int | None = None,
                           latent_dim: int | None = None) -> GalNetwork:
    """``build_network`` builder for space ``darts-gal``. The genotype fixes cells, C, image channels, reduction
    cells and stem: a caller's different value is a ConfigError (e.g. a retrain preset for another network)."""
    del latent_dim
    g = genotype
    given = {"image channels (data.channels)": (channels, g.in_channels), "C (model.channels)": (width, g.channels),
             "cells (model.layers)": (layers, g.layers),
             "reduction cells (model.reduction_positions)": (tuple(sorted(reduction_positions))
                                                             if reduction_positions else None, g.reduction_positions),
             "stem multiplier (model.stem_multiplier)": (stem_multiplier, g.stem_multiplier)}
    wrong = [f"{what} {want!r}, not {got!r}" for what, (got, want) in given.items() if got is not None and got != want]
    if wrong:
        raise ConfigError(f"this darts-gal genotype fixes its network: {'; '.join(wrong)}. Use the preset it was "
                          "pruned with, or --set the values to match")
    if auxiliary:
        raise ConfigError("darts-gal networks have no auxiliary head; set model.auxiliary=false")
    if imagenet:
        raise ConfigError("darts-gal networks use the CIFAR stem; set model.imagenet=false")
    net = GalNetwork(g, num_classes or 10, drop_path_prob=drop_path_prob)
    net.check_resolution(resolution)
    return net


register_network("darts-gal", build_dartsgal_network)


def summarize_dartsgal(genotype: DartsGalGenotype, *, dataset: str = "cifar10", layers: int | None = None,
                       channels: int | None = None) -> dict[str, Any]:
    """``raynas arch show`` for darts-gal genotypes: the darts summary keys (``params`` etc.) plus ``kept``,
    ``kept_nodes``, ``total_nodes`` and ``unpruned_params`` (the network with every node). The dataset sets the
    resolution and classes; the image channels are the genotype's."""
    g = genotype
    for what, given, want in (("--layers", layers, g.layers), ("--channels", channels, g.channels)):
        if given is not None and given != want:
            raise ConfigError(f"{what} {given}: this darts-gal genotype fixes {what.lstrip('-')}={want}")
    shape = resolve_dataset_shape(dataset)
    net = GalNetwork(g, shape.num_classes)
    net.check_resolution(shape.resolution)
    with torch.device("meta"):  # counted only: no memory, no initialisation
        full = GalNetwork(DartsGalGenotype.full(g.source, g.layers, g.channels, g.in_channels,
                                                g.reduction_positions, g.stem_multiplier), shape.num_classes)
    params = count_parameters(net)
    flops = count_flops(net, torch.zeros(1, g.in_channels, shape.resolution, shape.resolution))
    sizes = net.feature_sizes(shape.resolution)
    cells = []
    c_curr = g.channels
    for i, (module, cell) in enumerate(zip(net.cells, g.pruned_cells())):
        if g.is_reduction(i):
            c_curr *= 2
        cells.append({"index": i, "reduction": g.is_reduction(i), "C": c_curr,
                      "out_channels": module.multiplier * c_curr if cell is not None else None, "size": sizes[i],
                      "params": count_parameters(module), "ops": cell.to_pairs() if cell is not None else [],
                      "concat": list(cell.concat) if cell is not None else [], "kept": list(g.kept[i]),
                      "pass_through": cell is None})
    unpruned = count_parameters(full)
    return {"space": g.space, "source": g.source.space, "resolution": shape.resolution, "in_channels": g.in_channels,
            "num_classes": shape.num_classes, "imagenet": False, "layers": g.layers, "channels": g.channels,
            "reduction_positions": list(g.reduction_positions), "params": params, "params_with_aux": None,
            "flops": flops, "cells": cells, "other_params": params - sum(c["params"] for c in cells),
            "kept": [list(k) for k in g.kept], "kept_nodes": g.kept_nodes, "total_nodes": g.total_nodes,
            "unpruned_params": unpruned}


def format_dartsgal_summary(s: dict[str, Any]) -> str:
    ratio = 1 - s["params"] / s["unpruned_params"] if s["unpruned_params"] else 0.0
    lines = [f"darts-gal ({s['source']} cells)  {s['layers']} cells, C={s['channels']}, "
             f"{s['resolution']}x{s['resolution']}x{s['in_channels']}, {s['num_classes']} classes, "
             f"reductions at {s['reduction_positions']}",
             f"params {s['params']:,} ({_human(s['params'])}); unpruned {s['unpruned_params']:,} "
             f"({ratio:.1%} pruned)   kept nodes {s['kept_nodes']} of {s['total_nodes']}",
             f"FLOPs/image {s['flops']:,} ({_human(s['flops'])}; 2 per multiply-add)", "",
             f"{'cell':<6}{'type':<8}{'C':>5}{'size':>6}{'params':>12}  kept  ops"]
    for c in s["cells"]:
        kind = "reduce" if c["reduction"] else "normal"
        ops = ("passes its input through" if c["pass_through"] else
               ", ".join(f"{op}<-{src}" for op, src in c["ops"]) + f"  concat {c['concat']}")
        lines.append(f"{c['index']:<6}{kind:<8}{c['C']:>5}{c['size']:>6}{c['params']:>12,}  "
                     f"{','.join(map(str, c['kept'])) or '-':<5} {ops}")
    lines.append(f"{'other':<6}{'':<8}{'':>5}{'':>6}{s['other_params']:>12,}  (stem, classifier)")
    return "\n".join(lines)


register_summary("darts-gal", summarize_dartsgal, format_dartsgal_summary)
