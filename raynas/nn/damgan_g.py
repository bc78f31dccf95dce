"""The ``damgan-g`` generator: the dual-attention supernet (search) and the derived fixed network.

Wiring (see :mod:`raynas.spaces.damgan`): latent → linear → ``bottom_width``² map → three cells
(each ×2) → ``ToRGB``. In a cell, node1/node2 = up(node0), node3 = normal(node1), node4 =
normal(node2) + normal(node3) + skips from every earlier cell's node1 (×2 per cell spanned).

The supernet puts an :class:`~raynas.nn.attention.AttentionEdge` on every edge; the derived network
puts the one chosen op, built by the same ``build_edge_op`` at ``C`` channels, with no attention.

While searching, the current derived subnet is scored *inside* the supernet
(:class:`SupernetSubnet`: every edge in fixed-op mode, see :mod:`raynas.nn.attention`), because the
derived network's ops have ``C`` channels and cannot inherit the supernet's ``C / k'``-channel ops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.attention import SELECTORS, AttentionEdge, alpha_summary, build_edge_op, check_kprime
from raynas.nn.discriminators import xavier_init
from raynas.nn.generators import ToRGB
from raynas.nn.registry import register_network, register_supernet
from raynas.spaces.damgan import (
    N_CELLS,
    NORMAL_CANDIDATES,
    NORMAL_EDGES,
    SPACE,
    UP_CANDIDATES,
    UP_EDGES,
    skip_scale,
)
from raynas.spaces.genotype import Genotype

SPACE_NAME = SPACE.name
DEFAULT_LATENT_DIM = 120
DEFAULT_GF_DIM = 256


def resolve_bottom_width(resolution: int, bottom_width: int = 0) -> int:
    """Three ×2 cells: the latent map is ``resolution / 8`` wide (4 at 32×32, 6 at 48×48)."""
    bw = bottom_width or resolution // 2 ** N_CELLS
    if bw < 1 or bw * 2 ** N_CELLS != resolution:
        raise ConfigError(f"damgan-g has {N_CELLS} up-sampling cells, so resolution must be "
                          "8 × bottom_width; "
                          f"got resolution {resolution} with bottom_width {bottom_width or 'auto'} "
                          "(use e.g. 32 or 48, or leave bottom_width at 0)")
    return bw


def _check_channels(gf_dim: int) -> None:
    if not isinstance(gf_dim, int) or gf_dim < 1:
        raise ConfigError(f"gf_dim (feature maps per node) must be a positive integer, got {gf_dim!r}")


# ====================================================================== supernet
class SearchCell(nn.Module):
    """One supernet cell: 2 up edges, 3 normal edges, ``index`` skip edges."""

    def __init__(self, index: int, channels: int, *, kprime: int, reduction: int, selector: str):
        super().__init__()
        kw = {"kprime": kprime, "reduction": reduction, "selector": selector}
        self.index = index
        self.up = nn.ModuleList(AttentionEdge("up", UP_CANDIDATES, channels, scale=2, **kw) for _ in UP_EDGES)
        self.normal = nn.ModuleList(AttentionEdge("normal", NORMAL_CANDIDATES, channels, **kw)
                                    for _ in NORMAL_EDGES)
        self.skip = nn.ModuleList(
            AttentionEdge("up", UP_CANDIDATES, channels, scale=skip_scale(index, j), **kw)
            for j in range(index))

    def forward(self, x: torch.Tensor, prev_node1: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return _cell_forward(self, x, prev_node1)


def _cell_forward(cell: nn.Module, x: torch.Tensor,
                  prev_node1: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Shared by the search and derived cells so both wire the nodes identically."""
    nodes = [x, None, None, None, None]
    for (s, d), edge in zip(UP_EDGES, cell.up):
        nodes[d] = edge(nodes[s])
    for (s, d), edge in zip(NORMAL_EDGES, cell.normal):
        out = edge(nodes[s])
        nodes[d] = out if nodes[d] is None else nodes[d] + out
    node4 = nodes[4]
    for edge, src in zip(cell.skip, prev_node1, strict=True):
        node4 = node4 + edge(src)
    return nodes[1], node4


class _GeneratorBody(nn.Module):
    """Latent → bottom_width² map → three cells (joined directly and by node1 skips) → to_rgb.

    The supernet and the derived generator differ only in their cells, so they share this stem/head.
    """

    def _build(self, latent_dim: int, gf_dim: int, resolution: int, bottom_width: int, out_channels: int,
               cells: list[nn.Module]) -> None:
        self.bottom_width = resolve_bottom_width(resolution, bottom_width)
        self.l1 = nn.Linear(latent_dim, self.bottom_width ** 2 * gf_dim)
        self.cells = nn.ModuleList(cells)
        self.to_rgb = ToRGB(gf_dim, out_channels)
        xavier_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.l1(z).view(-1, self.gf_dim, self.bottom_width, self.bottom_width)
        node1s: list[torch.Tensor] = []
        for cell in self.cells:
            n1, h = cell(h, node1s)
            node1s.append(n1)
        return self.to_rgb(h)


class DamganSupernet(_GeneratorBody):
    """Generator supernet of DAMGAN: dual attention on every edge; ``forward(z)`` → images in [-1, 1].

    ``selector="da"`` is the paper's single-level search (α from DA weights); ``"darts"`` swaps DA for
    softmax architecture parameters (``arch_parameters()``) for a DARTS baseline on the same space.
    """

    def __init__(self, latent_dim: int = DEFAULT_LATENT_DIM, gf_dim: int = DEFAULT_GF_DIM,
                 resolution: int = 32, out_channels: int = 3, kprime: int = 4, selector: str = "da",
                 reduction: int = 16, bottom_width: int = 0):
        super().__init__()
        _check_channels(gf_dim)
        check_kprime(gf_dim, kprime)
        if selector not in SELECTORS:
            raise ConfigError(f"unknown selector {selector!r}; choose one of: {', '.join(SELECTORS)}")
        self.latent_dim = latent_dim
        self.gf_dim = gf_dim
        self.kprime = kprime
        self.selector = selector
        self.config = {"latent_dim": latent_dim, "gf_dim": gf_dim, "resolution": resolution,
                       "out_channels": out_channels, "bottom_width": bottom_width}
        self._build(latent_dim, gf_dim, resolution, bottom_width, out_channels,
                    [SearchCell(i, gf_dim, kprime=kprime, reduction=reduction, selector=selector)
                     for i in range(N_CELLS)])

    # ------------------------------------------------------------------ edges
    def named_edges(self) -> Iterator[tuple[str, AttentionEdge]]:
        """Edges in the space's encoding order, named as ``SPACE.edge_names()`` (``cell1.skip[0]``)."""
        for ci, cell in enumerate(self.cells):
            for group in ("up", "normal", "skip"):
                for j, edge in enumerate(getattr(cell, group)):
                    yield f"cell{ci}.{group}[{j}]", edge

    def edge_names(self) -> list[str]:
        return [name for name, _ in self.named_edges()]

    # ------------------------------------------------------------------ architecture weights
    def alpha_table(self) -> dict[str, list[float]]:
        """Per edge, α per candidate (in the space's candidate order)."""
        return {name: edge.alpha() for name, edge in self.named_edges()}

    def reset_alpha(self) -> None:
        """Start a new averaging window (e.g. per epoch) for the DA α statistics."""
        for _, edge in self.named_edges():
            edge.reset_alpha()

    def alpha_stats(self) -> dict[str, dict[str, float]]:
        """Per edge, entropy and top1 − top2 margin of the normalised α (nested; Tune flattens it)."""
        return {name: alpha_summary(edge.alpha()) for name, edge in self.named_edges()}

    def derive_genotype(self) -> Genotype:
        """Eq. 6 on every edge: the candidate with the largest α."""
        missing = [name for name, edge in self.named_edges() if not edge.recorded]
        if missing:
            raise GenotypeError("no DA attention weights recorded yet (edges "
                                f"{', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); run the "
                                "supernet in training mode (model.train()) on at least one batch first")
        best = {name: edge.best() for name, edge in self.named_edges()}
        vector = [cands.index(best[name]) for name, (*_, cands) in zip(SPACE.edge_names(), SPACE.edges())]
        g = SPACE.decode(vector)
        SPACE.validate(g)
        return g

    def fix_ops(self, genotype: Genotype | None) -> None:
        """Put every edge in fixed-op mode on the genotype's op (``None``: back to the full mixture)."""
        if genotype is None:
            for _, edge in self.named_edges():
                edge.fix(None)
            return
        SPACE.validate(genotype)
        for ci, cell in enumerate(genotype.cells):
            for group in ("up", "normal", "skip"):
                for edge, op in zip(getattr(self.cells[ci], group), cell[group], strict=True):
                    edge.fix(op)

    @contextlib.contextmanager
    def fixed(self, genotype: Genotype) -> Iterator[DamganSupernet]:
        """Run the supernet as the ``genotype`` subnet for the duration of the block."""
        self.fix_ops(genotype)
        try:
            yield self
        finally:
            self.fix_ops(None)

    def derive(self, genotype: Genotype | None = None) -> DamganGenerator:
        """A fresh derived generator (this supernet's configuration; ``derive_genotype()`` by default)."""
        return DamganGenerator(genotype or self.derive_genotype(), **self.config)

    def arch_parameters(self) -> list[nn.Parameter]:
        """DARTS architecture vectors (empty for the DA selector, whose α is not a parameter)."""
        return [edge.arch for _, edge in self.named_edges() if edge.arch is not None]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Everything trained by the generator's weight optimiser (attention MLPs included)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]


class SupernetSubnet(nn.Module):
    """A genotype's path through a (shared, not copied) supernet, as a generator module ``G(z)``.

    For scoring the derived subnet during search (e.g. ``evaluate_generator``, which switches it to
    eval mode, so no DA weights are recorded); the supernet returns to the full mixture after each call.
    """

    def __init__(self, supernet: DamganSupernet, genotype: Genotype):
        super().__init__()
        SPACE.validate(genotype)
        self.supernet = supernet
        self.genotype = genotype
        self.latent_dim = supernet.latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        with self.supernet.fixed(self.genotype):
            return self.supernet(z)


# ====================================================================== derived network
class FixedEdge(nn.ModuleDict):
    """The chosen op of one derived edge, keyed by its name (state-dict paths
    ``cells.<i>.<group>.<j>.<op>``, the registry's convention)."""

    def __init__(self, kind: str, name: str, channels: int, scale: int = 1):
        super().__init__({name: build_edge_op(kind, name, channels, scale)})
        self.op_name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self[self.op_name](x)


class FixedCell(nn.Module):
    """One derived cell: the chosen op on each edge at ``C`` channels, no attention."""

    def __init__(self, index: int, channels: int, up: tuple[str, ...], normal: tuple[str, ...],
                 skip: tuple[str, ...]):
        super().__init__()
        self.index = index
        self.up = nn.ModuleList(FixedEdge("up", n, channels, 2) for n in up)
        self.normal = nn.ModuleList(FixedEdge("normal", n, channels) for n in normal)
        self.skip = nn.ModuleList(FixedEdge("up", n, channels, skip_scale(index, j))
                                  for j, n in enumerate(skip))

    def forward(self, x: torch.Tensor, prev_node1: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return _cell_forward(self, x, prev_node1)


class DamganGenerator(_GeneratorBody):
    """The generator a ``damgan-g`` genotype describes, trained from scratch after the search."""

    def __init__(self, genotype: Genotype, latent_dim: int = DEFAULT_LATENT_DIM, gf_dim: int = DEFAULT_GF_DIM,
                 resolution: int = 32, out_channels: int = 3, bottom_width: int = 0):
        super().__init__()
        _check_channels(gf_dim)
        SPACE.validate(genotype)
        self.genotype = genotype
        self.latent_dim = latent_dim
        self.gf_dim = gf_dim
        self._build(latent_dim, gf_dim, resolution, bottom_width, out_channels,
                    [FixedCell(i, gf_dim, c["up"], c["normal"], c["skip"]) for i, c in enumerate(genotype.cells)])

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_generator(genotype: Genotype, *, resolution: int = 32, channels: int = 3, width: int | None = None,
                    latent_dim: int | None = None, bottom_width: int = 0) -> DamganGenerator:
    """Registry builder: ``width`` is gf_dim (default 256, the paper's node width)."""
    return DamganGenerator(genotype, latent_dim=latent_dim or DEFAULT_LATENT_DIM,
                           gf_dim=width or DEFAULT_GF_DIM, resolution=resolution, out_channels=channels,
                           bottom_width=bottom_width)


def build_generator_supernet(*, resolution: int = 32, channels: int = 3, width: int | None = None,
                             latent_dim: int | None = None, bottom_width: int = 0, kprime: int = 4,
                             selector: str = "da", reduction: int = 16) -> DamganSupernet:
    """Registry builder of the attention supernet (``kprime``/``selector``/``reduction`` as in the paper)."""
    return DamganSupernet(latent_dim=latent_dim or DEFAULT_LATENT_DIM, gf_dim=width or DEFAULT_GF_DIM,
                          resolution=resolution, out_channels=channels, kprime=kprime, selector=selector,
                          reduction=reduction, bottom_width=bottom_width)


register_network(SPACE_NAME, build_generator)
register_supernet(SPACE_NAME, build_generator_supernet)

