"""EAGAN / AdversarialNAS discriminator: the weight-sharing supernet and the derived fixed network.

Optimised first block (in_channels → C, ÷2) → three Down-Cells (wiring in
:mod:`raynas.spaces.eagan`; spectral norm on every conv) → ReLU → sum-pool → SN linear to one logit
(no bias, as in EAGAN). Which cells down-sample is a network setting, ``downsample``; the default
``(True, False, False)`` follows AutoGAN's discriminator (32×32 → 16 → 8). A cell that does not
down-sample has no down ops at all, in the supernet as in the derived net, and ignores its genotype's
``down`` edges. Searchable ops live at ``cells.<i>.<normal|down>.<j>.<op>`` in both networks, so
``supernet.subnet_state_dict(g)`` (spectral-norm ``u``/``v`` vectors included) loads strictly into
``EaganDiscriminator(g, ...)`` and the two compute the same logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.discriminators import OptimizedDisBlock, xavier_init
from raynas.nn.eagan_g import apply_edge, edge_dict, sum_terms
from raynas.nn.ops import maybe_sn
from raynas.nn.registry import Supernet, register_network, register_supernet
from raynas.spaces.eagan import (
    D_DOWN_EDGES,
    D_NORMAL_EDGES,
    DEFAULT_DOWNSAMPLE,
    DOWN_CANDIDATES,
    N_CELLS,
    NORMAL_CANDIDATES,
)
from raynas.spaces.genotype import Cell, Genotype

DEFAULT_DF_DIM = 128


class DownCell(nn.Module):
    """One Down-Cell; ``down_choices=None`` builds a cell that sums node2 and node3 instead."""

    def __init__(self, channels: int, normal_choices: Sequence[Sequence[str]],
                 down_choices: Sequence[Sequence[str]] | None):
        super().__init__()
        self.normal = nn.ModuleList(edge_dict("normal", names, channels, sn=True) for names in normal_choices)
        self.downsample = down_choices is not None
        self.down = nn.ModuleList(edge_dict("down", names, channels, sn=True) for names in (down_choices or ()))

    def forward(self, x: torch.Tensor, cell: Cell) -> torch.Tensor:
        normal = cell["normal"]
        n1 = sum_terms([apply_edge(self.normal[0], normal[0], x)], x)
        n2 = sum_terms([apply_edge(self.normal[1], normal[1], x), apply_edge(self.normal[2], normal[2], n1)], x)
        n3 = sum_terms([apply_edge(self.normal[3], normal[3], n1), apply_edge(self.normal[4], normal[4], x)], x)
        if not self.downsample:
            return n2 + n3
        down = cell["down"]
        out0, out1 = apply_edge(self.down[0], down[0], n2), apply_edge(self.down[1], down[1], n3)
        assert out0 is not None and out1 is not None  # down ops are never 'none'
        return out0 + out1


def _check_downsample(downsample: Sequence[bool]) -> tuple[bool, ...]:
    ds = tuple(downsample)
    if len(ds) != N_CELLS or not all(isinstance(d, bool) for d in ds):
        raise ConfigError(f"downsample must list {N_CELLS} booleans (one per Down-Cell), got {downsample!r}")
    return ds


class _DiscriminatorBody(nn.Module):
    def __init__(self, normal_choices: Sequence[Sequence[Sequence[str]]],
                 down_choices: Sequence[Sequence[Sequence[str]]], df_dim: int, in_channels: int,
                 downsample: Sequence[bool]):
        super().__init__()
        ds = _check_downsample(downsample)
        if df_dim < 1 or in_channels < 1:
            raise ConfigError(f"eagan-d needs df_dim >= 1 and in_channels >= 1, got {df_dim}, {in_channels}")
        self.config = {"df_dim": df_dim, "in_channels": in_channels, "downsample": ds}
        self.df_dim, self.in_channels, self.downsample = df_dim, in_channels, ds
        self.stem = OptimizedDisBlock(in_channels, df_dim, sn=True)
        self.cells = nn.ModuleList(
            DownCell(df_dim, normal_choices[i], down_choices[i] if ds[i] else None) for i in range(N_CELLS)
        )
        self.l5 = maybe_sn(nn.Linear(df_dim, 1, bias=False), True)
        xavier_init(self)

    def min_resolution_multiple(self) -> int:
        """Input sides must be multiples of this (stem ÷2, then ÷2 per down-sampling cell)."""
        return 2 ** (1 + sum(self.downsample))

    def example_input(self, batch_size: int = 1, device: torch.device | str | None = None,
                      resolution: int = 32) -> torch.Tensor:
        return torch.randn(batch_size, self.in_channels, resolution, resolution, device=device)

    def _run(self, x: torch.Tensor, genotype: Genotype) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected images of shape (batch, {self.in_channels}, H, W), got {tuple(x.shape)}")
        m = self.min_resolution_multiple()
        if x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"image sides {tuple(x.shape[2:])} must be multiples of {m} for downsample="
                             f"{self.downsample} (pool and strided-conv down ops disagree on odd sizes)")
        h = self.stem(x)
        for cell_module, cell in zip(self.cells, genotype.cells):
            h = cell_module(h, cell)
        return self.l5(F.relu(h).sum(dim=(2, 3)))


class DiscriminatorSupernet(_DiscriminatorBody, Supernet):
    """Every candidate op on every edge, weights shared by all genotypes; ``forward(x, genotype)``."""

    space_name = "eagan-d"

    def __init__(self, df_dim: int = DEFAULT_DF_DIM, in_channels: int = 3,
                 downsample: Sequence[bool] = DEFAULT_DOWNSAMPLE):
        normal = [[NORMAL_CANDIDATES] * len(D_NORMAL_EDGES)] * N_CELLS
        down = [[DOWN_CANDIDATES] * len(D_DOWN_EDGES)] * N_CELLS
        super().__init__(normal, down, df_dim, in_channels, downsample)

    def forward(self, x: torch.Tensor, genotype: Genotype) -> torch.Tensor:
        return self._run(x, self.check_genotype(genotype))

    def derive(self, genotype: Genotype) -> EaganDiscriminator:
        return EaganDiscriminator(self.check_genotype(genotype), **self.config)


class EaganDiscriminator(_DiscriminatorBody):
    """The fixed discriminator of one genotype (only its ops); ``forward(x)``."""

    def __init__(self, genotype: Genotype, df_dim: int = DEFAULT_DF_DIM, in_channels: int = 3,
                 downsample: Sequence[bool] = DEFAULT_DOWNSAMPLE):
        if genotype.space != "eagan-d":
            raise GenotypeError(f"EaganDiscriminator builds 'eagan-d' genotypes, got one for {genotype.space!r}")
        genotype.validate()
        normal = [[(op,) for op in cell["normal"]] for cell in genotype.cells]
        down = [[(op,) for op in cell["down"]] for cell in genotype.cells]
        super().__init__(normal, down, df_dim, in_channels, downsample)
        self.genotype = genotype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, self.genotype)


def _check_resolution(resolution: int, downsample: Sequence[bool]) -> None:
    m = 2 ** (1 + sum(_check_downsample(downsample)))
    if resolution < m or resolution % m:
        raise ConfigError(f"eagan-d with downsample={tuple(downsample)} halves the image {m.bit_length() - 1} "
                          f"times, so resolution must be a multiple of {m}; got {resolution}")


def build_discriminator(genotype: Genotype, *, resolution: int = 32, channels: int = 3, width: int | None = None,
                        latent_dim: int | None = None,
                        downsample: Sequence[bool] = DEFAULT_DOWNSAMPLE) -> EaganDiscriminator:
    """Registry builder: ``width`` is df_dim (default 128); ``latent_dim`` does not apply to D."""
    del latent_dim
    _check_resolution(resolution, downsample)
    return EaganDiscriminator(genotype, df_dim=width or DEFAULT_DF_DIM, in_channels=channels, downsample=downsample)


def build_discriminator_supernet(*, resolution: int = 32, channels: int = 3, width: int | None = None,
                                 latent_dim: int | None = None,
                                 downsample: Sequence[bool] = DEFAULT_DOWNSAMPLE) -> DiscriminatorSupernet:
    del latent_dim
    _check_resolution(resolution, downsample)
    return DiscriminatorSupernet(df_dim=width or DEFAULT_DF_DIM, in_channels=channels, downsample=downsample)


register_network("eagan-d", build_discriminator)
register_supernet("eagan-d", build_discriminator_supernet)
