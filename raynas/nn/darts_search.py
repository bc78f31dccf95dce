"""The DARTS search supernet (DARTS' ``cnn/model_search.py``, without its traps).

``layers`` cells (default 8, C=16); cell ``i`` reduces at ``reduction_positions`` (default ``layers//3``,
``2*layers//3``). A cell has ``steps`` intermediate nodes (default 4); node ``i`` sums one mixed op per
earlier state (``2 + i`` of them), so a cell has ``Σ (2 + i)`` edges (14). Every normal cell shares
``alphas_normal`` and every reduction cell ``alphas_reduce`` (edges × ops, init ``1e-3·randn``). The cell
outputs the last ``multiplier`` nodes. BatchNorm is non-affine in the cells; every pool op is followed by
``BatchNorm2d(C, affine=False)`` as in DARTS' ``MixedOp``.

Mixed op: ``Σ_o w_o · o(x)`` with ``w = softmax(α)`` per edge; the ``none`` op is never computed (its term
is exactly zero; its α still enters the softmax). ``forward(x, weights=(normal, reduce))`` runs the
supernet with explicit per-edge weights instead, e.g. one-hot rows.

``derive_genotype()`` is DARTS' rule: per node, the two incoming edges whose strongest op other than
``none`` is largest, and on each the argmax op other than ``none``. ``export(genotype)`` builds the
evaluation network (``raynas.nn.darts_net.NetworkCIFAR``, same sizes, no auxiliary head) with this
supernet's weights, so that with one-hot weights the supernet and the exported net compute the same
function. Pools are the exception: the exported cell has no BN after a pool (DARTS' evaluation cells
do not), so a genotype with pool ops is not the same function.

``count_parameters`` (``raynas.nn.darts_net``) leaves out α, as DARTS does: 1,930,618 at the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.darts_net import NetworkCIFAR, reduction_positions_for
from raynas.nn.darts_ops import FactorizedReduce, ReLUConvBN
from raynas.nn.ops import build_op
from raynas.nn.registry import register_supernet
from raynas.spaces.darts import DARTS_OP_NAMES, PRIMITIVES, CellGenotype, DartsGenotype


def edge_index(node: int, state: int) -> int:
    """Index of the edge from ``state`` to intermediate ``node`` in a cell's edge list (and α's rows)."""
    return 2 * node + node * (node - 1) // 2 + state


def search_op(name: str, c: int, stride: int) -> nn.Module:
    """A candidate op on a search edge: non-affine BN, and a pool followed by one (as DARTS' MixedOp)."""
    op = build_op("darts", name, c, stride=stride, affine=False)
    return nn.Sequential(op, nn.BatchNorm2d(c, affine=False)) if "pool" in name else op


class MixedOp(nn.Module):
    """One edge: every candidate op (a ``ModuleDict`` keyed by op name; ``none`` has no module)."""

    def __init__(self, c: int, stride: int, primitives: Sequence[str]):
        super().__init__()
        self.ops = nn.ModuleDict()
        for name in primitives:
            if name != "none":
                self.ops[name] = search_op(name, c, stride)
        self._columns = tuple(i for i, name in enumerate(primitives) if name != "none")

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        out = None
        for column, op in zip(self._columns, self.ops.values()):
            y = weights[column] * op(x)
            out = y if out is None else out + y
        return out


class SearchCell(nn.Module):
    """A search cell: its two input preprocessings and one edge per (node, earlier state), in ``edge_index``
    order. ``edge(c, stride)`` builds an edge (default: DARTS' ``MixedOp`` over ``primitives``, which the
    forward gives the cell's α weights; SWD-NAS's attention edges weigh themselves)."""

    def __init__(self, steps: int, multiplier: int, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool, primitives: Sequence[str] = (),
                 edge: Callable[[int, int], nn.Module] | None = None):
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_prev_prev, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        make = edge or (lambda c, stride: MixedOp(c, stride, primitives))
        self.edges = nn.ModuleList(make(c, 2 if reduction and j < 2 else 1) for i in range(steps) for j in range(2 + i))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            node = None
            for j, h in enumerate(states):
                e = offset + j
                y = self.edges[e](h) if weights is None else self.edges[e](h, weights[e])
                node = y if node is None else node + y
            offset += len(states)
            states.append(node)
        return torch.cat(states[-self.multiplier:], dim=1)


def check_search_args(primitives: Sequence[str], **sizes: int) -> tuple[str, ...]:
    """The candidate ops as a tuple, after refusing sizes that are not positive integers, more concatenated
    nodes than the cell has, and op lists a DARTS-style search cannot use (shared by every cell search network)."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}={value!r} must be a positive integer")
    if "multiplier" in sizes and "steps" in sizes and sizes["multiplier"] > sizes["steps"]:
        raise ConfigError(f"multiplier={sizes['multiplier']} concatenates more nodes than the cell has "
                          f"(steps={sizes['steps']})")
    primitives = tuple(primitives)
    unknown = [p for p in primitives if p not in DARTS_OP_NAMES]
    if unknown or len(set(primitives)) != len(primitives) or not set(primitives) - {"none"}:
        raise ConfigError(f"primitives {list(primitives)}: need distinct darts ops, at least one besides 'none'"
                          + (f"; unknown: {unknown}; valid: {', '.join(DARTS_OP_NAMES)}" if unknown else ""))
    return primitives


class DartsSupernet(nn.Module):
    """DARTS' search network; see the module docstring. ``loss(x, y)`` is the cross-entropy of ``forward(x)``."""

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, *, steps: int = 4, multiplier: int = 4,
                 stem_multiplier: int = 3, in_channels: int = 3, reduction_positions: Sequence[int] | None = None,
                 primitives: Sequence[str] = PRIMITIVES):
        super().__init__()
        primitives = check_search_args(primitives, C=C, num_classes=num_classes, steps=steps, multiplier=multiplier,
                                       stem_multiplier=stem_multiplier, in_channels=in_channels)
        self.C = C
        self.num_classes = num_classes
        self.layers = layers
        self.steps = steps
        self.multiplier = multiplier
        self.stem_multiplier = stem_multiplier
        self.in_channels = in_channels
        self.primitives = primitives
        self.reduction_positions = reduction_positions_for(layers, reduction_positions)

        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in self.reduction_positions
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(steps, multiplier, c_prev_prev, c_prev, c_curr, reduction, reduction_prev,
                                         primitives))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

        self.num_edges = sum(2 + i for i in range(steps))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(self.num_edges, len(primitives)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(self.num_edges, len(primitives)))

    # ------------------------------------------------------------------ parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # ------------------------------------------------------------------ forward
    def mixing_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``softmax(α)`` per edge, for the normal and the reduction cells."""
        return F.softmax(self.alphas_normal, dim=-1), F.softmax(self.alphas_reduce, dim=-1)

    def forward(self, x: torch.Tensor, weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits; ``weights=(normal, reduce)`` (each edges × ops) replaces ``softmax(α)``."""
        if weights is None:
            weights = self.mixing_weights()
        w_normal, w_reduce = weights
        for w in (w_normal, w_reduce):
            if tuple(w.shape) != (self.num_edges, len(self.primitives)):
                raise ValueError(f"mixing weights must be {self.num_edges}x{len(self.primitives)}, got "
                                 f"{tuple(w.shape)}")
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(x), y)

    # ------------------------------------------------------------------ architecture read-outs
    def edge_names(self) -> list[str]:
        """``"<normal|reduce>.<node state>.<input state>"`` (state numbering as in genotypes: node i is state i+2)."""
        return [f"{kind}.{i + 2}.{j}" for kind in ("normal", "reduce") for i in range(self.steps) for j in range(2 + i)]

    def alpha_table(self) -> dict[str, list[float]]:
        """Per edge (``edge_names``), ``softmax(α)`` in the order of ``self.primitives``."""
        w_normal, w_reduce = (w.detach().cpu() for w in self.mixing_weights())
        rows = [*w_normal.tolist(), *w_reduce.tolist()]
        return dict(zip(self.edge_names(), rows))

    def derive_genotype(self) -> DartsGenotype:
        """DARTS' discretisation of the current α (see the module docstring); concat = the last ``multiplier``
        nodes."""
        w_normal, w_reduce = (w.detach().cpu() for w in self.mixing_weights())
        concat = tuple(range(2 + self.steps - self.multiplier, 2 + self.steps))
        return DartsGenotype(CellGenotype(derive_cell(w_normal, self.steps, self.primitives), concat),
                             CellGenotype(derive_cell(w_reduce, self.steps, self.primitives), concat)).validate()

    # ------------------------------------------------------------------ derived networks
    def derive(self, genotype: DartsGenotype | None = None) -> NetworkCIFAR:
        """A fresh evaluation network of ``genotype`` (default: ``derive_genotype()``) with this supernet's sizes."""
        genotype = genotype or self.derive_genotype()
        self._check_exportable(genotype)
        return NetworkCIFAR(self.C, self.num_classes, self.layers, False, genotype, in_channels=self.in_channels,
                            reduction_positions=self.reduction_positions, stem_multiplier=self.stem_multiplier)

    def export(self, genotype: DartsGenotype | None = None) -> NetworkCIFAR:
        """``derive(genotype)`` carrying this supernet's weights and BN statistics (BN affine parameters, which the
        supernet lacks, stay at 1 and 0; pools lose the supernet's BN)."""
        net = self.derive(genotype).to(device=self.alphas_normal.device, dtype=self.alphas_normal.dtype)
        _copy_state(self.stem, net.stem)
        _copy_state(self.classifier, net.classifier)
        for cell, target in zip(self.cells, net.cells):
            _copy_state(cell.preprocess0, target.preprocess0)
            _copy_state(cell.preprocess1, target.preprocess1)
            for k, (name, state) in enumerate(target.genotype.ops):
                if name == "none" or "pool" in name:
                    continue
                _copy_state(cell.edges[edge_index(k // 2, state)].ops[name], target.ops[k])
        return net

    def _check_exportable(self, genotype: DartsGenotype) -> None:
        genotype.validate()
        for kind in ("normal", "reduce"):
            cell: CellGenotype = getattr(genotype, kind)
            if cell.steps != self.steps or cell.multiplier != self.multiplier:
                raise GenotypeError(f"{kind} cell has {cell.steps} nodes and concatenates {cell.multiplier}; this "
                                    f"supernet has {self.steps} nodes and concatenates {self.multiplier}")
            missing = sorted({op for op, _ in cell.ops} - set(self.primitives) - {"none"})
            if missing:
                raise GenotypeError(f"{kind} cell uses {missing}, which this supernet does not search")


def derive_cell(weights: torch.Tensor, steps: int, primitives: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """DARTS' rule on one cell's mixing weights (edges × ops): per node the two input states whose best op other
    than ``none`` is strongest (ties: the lower state), and on each that op (ties: the earlier op)."""
    columns = [k for k, name in enumerate(primitives) if name != "none"]
    pairs: list[tuple[str, int]] = []
    for i in range(steps):
        rows = weights[edge_index(i, 0): edge_index(i, 0) + 2 + i]
        best = [max(columns, key=lambda k, r=row: (float(r[k]), -k)) for row in rows]
        strength = [float(row[k]) for row, k in zip(rows, best)]
        top = sorted(range(2 + i), key=lambda j: -strength[j])[:2]
        pairs.extend((primitives[best[j]], j) for j in top)
    return tuple(pairs)


def _copy_state(source: nn.Module, target: nn.Module) -> None:
    state = source.state_dict()
    missing, unexpected = target.load_state_dict(state, strict=False)
    # only the affine parameters of BNs the supernet keeps non-affine may be missing
    extra = [k for k in missing if k.rpartition(".")[2] not in ("weight", "bias")
             or not isinstance(target.get_submodule(k.rpartition(".")[0]), nn.BatchNorm2d)]
    if unexpected or extra:
        raise RuntimeError(f"cannot copy {type(source).__name__} into {type(target).__name__}: "
                           f"missing {extra}, unexpected {unexpected}")


def build_darts_supernet(*, resolution: int = 32, channels: int = 3, width: int | None = None,
                         layers: int | None = None, num_classes: int = 10,
                         reduction_positions: Sequence[int] | None = None, latent_dim: Any = None,
                         **kwargs: Any) -> DartsSupernet:
    """``build_supernet("darts", ...)``: defaults 8 cells, C=16; ``kwargs`` go to ``DartsSupernet`` (steps, …)."""
    del latent_dim
    net = DartsSupernet(16 if width is None else width, num_classes, 8 if layers is None else layers,
                        in_channels=channels, reduction_positions=reduction_positions, **kwargs)
    check_supernet_resolution(net, resolution)
    return net


def check_supernet_resolution(net: nn.Module, resolution: int) -> None:
    """Every reduction cell of a search network (``net.reduction_positions``) must get an even-sized map."""
    size = resolution
    for i in net.reduction_positions:
        if size % 2:
            raise ConfigError(f"input resolution {resolution}: reduction cell {i} gets a {size}x{size} map, but "
                              "the stride-2 ops need even sizes")
        size //= 2


register_supernet("darts", build_darts_supernet)
