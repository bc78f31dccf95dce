"""EAGAN / AdversarialNAS generator: the weight-sharing supernet and the derived fixed network.

Both are the same module tree (see :mod:`raynas.spaces.eagan` for the cell wiring): every edge is
an ``nn.ModuleDict`` keyed by op name at ``cells.<i>.<up|normal>.<j>.<op>``. The supernet builds
every candidate on every edge; the derived network builds only the genotype's op (and nothing for
``none`` edges, which are skipped rather than computed as zeros, in both). One forward code path
serves both, so a derived net loaded with ``supernet.subnet_state_dict(g)`` computes exactly
``supernet(z, g)``.

A cell's node2 that later cells receive as a cross-scale skip is node2 *including* the skips that
cell itself received (AdversarialNAS adds them in place, so its ``h_skip_out`` aliases that sum).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.discriminators import xavier_init
from raynas.nn.generators import ToRGB
from raynas.nn.ops import build_op
from raynas.nn.registry import Supernet, register_network, register_supernet
from raynas.spaces.eagan import G_NORMAL_EDGES, G_SKIP_MODES, G_UP_EDGES, N_CELLS, NORMAL_CANDIDATES, UP_CANDIDATES
from raynas.spaces.genotype import Cell, Genotype

# per cell: group -> per edge, the op names to build
Choices = Sequence[dict[str, Sequence[Sequence[str]]]]

DEFAULT_LATENT_DIM = 120
DEFAULT_GF_DIM = 256


def edge_dict(kind: str, names: Sequence[str], channels: int, *, sn: bool = False) -> nn.ModuleDict:
    """One edge: its candidate ops by name (``none`` has no module: the edge is skipped)."""
    return nn.ModuleDict({n: build_op(kind, n, channels, sn=sn) for n in names if n != "none"})


def apply_edge(edge: nn.ModuleDict, op: str, x: torch.Tensor) -> torch.Tensor | None:
    """Run ``op`` on ``x``; ``None`` for a ``none`` edge."""
    if op == "none":
        return None
    if op not in edge:
        raise GenotypeError(f"op {op!r} was not built on this edge (built: {', '.join(edge) or 'none'}); "
                            "a derived network only runs the genotype it was built for")
    return edge[op](x)


def sum_terms(terms: Sequence[torch.Tensor | None], like: torch.Tensor) -> torch.Tensor:
    """Sum the non-``None`` terms in order; all-zero map shaped like ``like`` if there are none."""
    out: torch.Tensor | None = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return torch.zeros_like(like) if out is None else out


class UpCell(nn.Module):
    """One Up-Cell; returns (node2, node3): node2 is the cross-scale skip later cells receive."""

    def __init__(self, channels: int, up_choices: Sequence[Sequence[str]],
                 normal_choices: Sequence[Sequence[str]], num_skip_in: int, skip_mode: str):
        super().__init__()
        self.up = nn.ModuleList(edge_dict("up", names, channels) for names in up_choices)
        self.normal = nn.ModuleList(edge_dict("normal", names, channels) for names in normal_choices)
        self.skip_in = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(num_skip_in))
        self.skip_mode = skip_mode

    def forward(self, x: torch.Tensor, cell: Cell,
                skips: Sequence[torch.Tensor] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        if len(skips) != len(self.skip_in):
            raise ValueError(f"this cell takes {len(self.skip_in)} skip inputs, got {len(skips)}")
        up, normal = cell["up"], cell["normal"]
        n0 = apply_edge(self.up[0], up[0], x)
        n1 = apply_edge(self.up[1], up[1], x)
        assert n0 is not None and n1 is not None  # up ops are never 'none'
        size = n0.shape[-2:]
        kwargs = {"align_corners": False} if self.skip_mode == "bilinear" else {}
        terms = [apply_edge(self.normal[0], normal[0], n0), apply_edge(self.normal[1], normal[1], n1)]
        terms += [conv(F.interpolate(ft, size=size, mode=self.skip_mode, **kwargs))
                  for ft, conv in zip(skips, self.skip_in)]
        n2 = sum_terms(terms, n0)
        n3 = sum_terms([apply_edge(self.normal[2], normal[2], n0), apply_edge(self.normal[3], normal[3], n1),
                        apply_edge(self.normal[4], normal[4], n2)], n0)
        return n2, n3


def _all_choices() -> list[dict[str, list[tuple[str, ...]]]]:
    return [{"up": [UP_CANDIDATES] * len(G_UP_EDGES), "normal": [NORMAL_CANDIDATES] * len(G_NORMAL_EDGES)}
            for _ in range(N_CELLS)]


def _genotype_choices(genotype: Genotype) -> list[dict[str, list[tuple[str, ...]]]]:
    return [{g: [(op,) for op in cell[g]] for g in ("up", "normal")} for cell in genotype.cells]


class _GeneratorBody(nn.Module):
    """Latent split → three Up-Cells → to_rgb, building the ops listed in ``choices``."""

    def __init__(self, choices: Choices, latent_dim: int, gf_dim: int, resolution: int,
                 bottom_width: int, out_channels: int):
        super().__init__()
        bw = bottom_width or resolution // 2 ** N_CELLS
        if bw < 1 or bw * 2 ** N_CELLS != resolution:
            raise ConfigError(f"eagan-g has {N_CELLS} up-sampling cells, so resolution ({resolution}) must be "
                              f"8 × bottom_width ({bottom_width or 'auto'}); e.g. 32 with 4, 48 with 6")
        if latent_dim < N_CELLS or latent_dim % N_CELLS:
            raise ConfigError(f"eagan-g splits the latent into {N_CELLS} equal chunks; latent_dim={latent_dim} "
                              f"is not a positive multiple of {N_CELLS} (use 120)")
        if gf_dim < 1 or out_channels not in (1, 3):
            raise ConfigError(f"eagan-g needs gf_dim >= 1 and 1 or 3 output channels, got {gf_dim}, {out_channels}")
        self.config = {"latent_dim": latent_dim, "gf_dim": gf_dim, "resolution": resolution,
                       "bottom_width": bw, "out_channels": out_channels}
        self.latent_dim, self.gf_dim, self.bottom_width = latent_dim, gf_dim, bw
        self.chunk = latent_dim // N_CELLS
        self.fc = nn.ModuleList(nn.Linear(self.chunk, (bw * 2 ** i) ** 2 * gf_dim) for i in range(N_CELLS))
        self.cells = nn.ModuleList(
            UpCell(gf_dim, choices[i]["up"], choices[i]["normal"], num_skip_in=i, skip_mode=G_SKIP_MODES[i])
            for i in range(N_CELLS)
        )
        self.to_rgb = ToRGB(gf_dim, out_channels)
        xavier_init(self)

    def example_input(self, batch_size: int = 1, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.randn(batch_size, self.latent_dim, device=device)

    def _run(self, z: torch.Tensor, genotype: Genotype) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents of shape (batch, {self.latent_dim}), got {tuple(z.shape)}")
        chunks = z.split(self.chunk, dim=1)
        c = self.gf_dim
        h: torch.Tensor | None = None
        skips: list[torch.Tensor] = []
        for i, (fc, cell) in enumerate(zip(self.fc, self.cells)):
            w = self.bottom_width * 2 ** i
            latent_map = fc(chunks[i]).view(-1, c, w, w)
            h = latent_map if h is None else h + latent_map
            skip, h = cell(h, genotype.cells[i], skips)
            skips.append(skip)
        assert h is not None
        return self.to_rgb(h)


class GeneratorSupernet(_GeneratorBody, Supernet):
    """Every candidate op on every edge, weights shared by all genotypes; ``forward(z, genotype)``."""

    space_name = "eagan-g"

    def __init__(self, latent_dim: int = DEFAULT_LATENT_DIM, gf_dim: int = DEFAULT_GF_DIM, resolution: int = 32,
                 bottom_width: int = 0, out_channels: int = 3):
        super().__init__(_all_choices(), latent_dim, gf_dim, resolution, bottom_width, out_channels)

    def forward(self, z: torch.Tensor, genotype: Genotype) -> torch.Tensor:
        return self._run(z, self.check_genotype(genotype))

    def derive(self, genotype: Genotype) -> EaganGenerator:
        return EaganGenerator(self.check_genotype(genotype), **self.config)


class EaganGenerator(_GeneratorBody):
    """The fixed generator of one genotype (only its ops); ``forward(z)``."""

    def __init__(self, genotype: Genotype, latent_dim: int = DEFAULT_LATENT_DIM, gf_dim: int = DEFAULT_GF_DIM,
                 resolution: int = 32, bottom_width: int = 0, out_channels: int = 3):
        if genotype.space != "eagan-g":
            raise GenotypeError(f"EaganGenerator builds 'eagan-g' genotypes, got one for {genotype.space!r}")
        genotype.validate()
        super().__init__(_genotype_choices(genotype), latent_dim, gf_dim, resolution, bottom_width, out_channels)
        self.genotype = genotype

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self._run(z, self.genotype)


def build_generator(genotype: Genotype, *, resolution: int = 32, channels: int = 3, width: int | None = None,
                    latent_dim: int | None = None, bottom_width: int = 0) -> EaganGenerator:
    """Registry builder: ``width`` is gf_dim (default 256, the paper's retraining width)."""
    return EaganGenerator(genotype, latent_dim=latent_dim or DEFAULT_LATENT_DIM, gf_dim=width or DEFAULT_GF_DIM,
                          resolution=resolution, bottom_width=bottom_width, out_channels=channels)


def build_generator_supernet(*, resolution: int = 32, channels: int = 3, width: int | None = None,
                             latent_dim: int | None = None, bottom_width: int = 0) -> GeneratorSupernet:
    return GeneratorSupernet(latent_dim=latent_dim or DEFAULT_LATENT_DIM, gf_dim=width or DEFAULT_GF_DIM,
                             resolution=resolution, bottom_width=bottom_width, out_channels=channels)


register_network("eagan-g", build_generator)
register_supernet("eagan-g", build_generator_supernet)
