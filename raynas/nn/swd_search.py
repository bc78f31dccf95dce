"""The SWD-NAS search network (Xue, Han, Wang, IEEE TII 2024, §III; the authors' ``model_search.py`` without its
traps, see the raynas spec §6.2).

DARTS' cell topology (two inputs, ``steps`` intermediate nodes, one edge from every earlier state) and its 8
ops, ``layers`` cells (default 5: N, R, N, R, N; C=16), and **no α**: every edge is an :class:`SwdEdge` whose
architecture weights are attention statistics read off the forward pass. Every cell has its own edges, so every
cell gets its own architecture. On each edge, in order:

1. **UA** (upper attention, eq. 5–6): ``σ(MLP(GAP x) + MLP(GMP x))`` with one shared two-layer MLP
   (``ua_pool="gap"`` drops the GMP term). The input is re-weighted by it, and the ``C/k`` channels with the
   largest **batch-summed** weights are selected: one channel set for the whole batch (Alg. 2 as the authors'
   code runs it), kept as a 1-D index in ascending order (never squeezed: ``C/k = 1`` works).
   ``ua=False`` (Table IV's "UA off") sends every channel, un-weighted, to the ops.
2. the 8 candidate ops (built for ``C/k`` channels, BN ``affine=False``, pools followed by BN) run on the
   selection; their outputs are concatenated (``8·C/k`` maps).
3. **LA** (lower attention): ``σ(MLP(GAP ·))`` over the concatenation (``la_pool="gap+gmp"`` adds the GMP
   term); eq. 8 re-weights every op's group by it, eq. 9 sums the 8 groups.
4. the sum is written back into the selected channel positions of the UA-weighted input; the other channels
   pass through (max-pooled 2×2 on stride-2 edges).
5. ``residual=True`` adds the authors' code-only ``auxiliary_op`` of the raw input (identity, or
   ``FactorizedReduce`` on stride-2 edges); the paper does not describe it.

**Eq. 7**: ``Atten^l`` = the sum of op ``l``'s ``C/k`` LA weights, per image. While ``recording`` is on, an edge
accumulates it over the images it sees; ``attention()`` is the **mean** per image (not the authors' sum over
batch and channels, which grows with batch size and steps, T-S2/T-S3). **AWN** (eq. 11) normalises an edge's
mean attention to sum 1; ``awn=False`` applies softmax instead (the authors' released parser; not invariant to
scaling the attention). The α-equivalent table is the normalised weights per edge.

**Derivation** (per genotype cell): per node the two incoming edges whose best AWN weight other than ``none``
is largest, on each the argmax op other than ``none`` (DARTS' rule, ``raynas.nn.darts_search.derive_cell``).
At depths other than 5 a genotype cell stands for the network cells the evaluation stacking assigns to it
(``raynas.spaces.swd.swd_cell_index``: at 8 cells, cells 0–1 → cell 0, 2 → 1, 3–4 → 2, 5 → 3, 6–7 → 4); its
attention is the mean over those cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.errors import ConfigError
from raynas.nn.attention import ChannelAttention, check_pool, divisors, select_top_k
from raynas.nn.darts_net import reduction_positions_for
from raynas.nn.darts_ops import FactorizedReduce
from raynas.nn.darts_search import SearchCell, check_search_args, check_supernet_resolution, derive_cell, search_op
from raynas.nn.primitives import Identity
from raynas.nn.registry import register_supernet
from raynas.spaces.darts import PRIMITIVES, CellGenotype
from raynas.spaces.swd import CELL_TYPES, SwdGenotype, swd_cell_index


def check_k(k: int, cell_channels: Sequence[int], key: str = "k") -> int:
    """``k`` must divide every cell's channel count (each edge keeps ``C/k`` channels); returns the smallest
    ``C/k``."""
    channels = sorted(set(cell_channels))
    if isinstance(k, bool) or not isinstance(k, int) or k < 1 or any(c % k for c in channels):
        valid = [d for d in divisors(channels[0]) if all(c % d == 0 for c in channels)]
        raise ConfigError(f"{key}={k!r} does not divide every cell's channel count ({', '.join(map(str, channels))}): "
                          f"each edge keeps C/k channels; valid k: {', '.join(map(str, valid))}")
    return channels[0] // k


class SwdEdge(nn.Module):
    """One searchable edge: UA → top ``C/k`` channels → the candidate ops → LA → eqs. 8–9 → ``C`` maps.

    ``record`` (attribute) turns eq.-7 accumulation on; ``attention()`` is the mean per image of what was
    recorded (``None`` before anything was), ``reset_attention()`` clears it."""

    def __init__(self, channels: int, stride: int, *, k: int = 4, primitives: Sequence[str] = PRIMITIVES,
                 ua: bool = True, ua_pool: str = "gap+gmp", la_pool: str = "gap", ua_reduction: int = 2,
                 la_reduction: int = 8, residual: bool = True, bias: bool = True):
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.primitives = tuple(primitives)
        self.width = check_k(k, [channels]) if ua else channels  # channels the ops see
        if stride == 2 and self.width % 2:
            raise ConfigError(f"a stride-2 edge of {channels} channels at k={k} gives its ops {self.width} channels; "
                              "skip_connect (FactorizedReduce) needs an even number")
        n = len(self.primitives)
        self.ua = ChannelAttention(channels, ua_reduction, ua_pool, bias) if ua else None
        self.ops = nn.ModuleList(search_op(name, self.width, stride) for name in self.primitives)
        self.la = ChannelAttention(n * self.width, la_reduction, la_pool, bias)
        if residual:
            self.residual: nn.Module | None = (Identity() if stride == 1 else
                                               FactorizedReduce(channels, channels, affine=False))
        else:
            self.residual = None
        self.register_buffer("atten_sum", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("atten_count", torch.zeros((), dtype=torch.float64))
        self.record = False
        self.last_selected: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = x
        idx = None
        if self.ua is not None:
            w = self.ua(x)                                            # (b, C), eq. 6
            x = x * w[:, :, None, None].to(x.dtype)
            idx = select_top_k(w, self.width)                         # Alg. 2, one set per batch, 1-D
            self.last_selected = idx
            selected = x if self.width == self.channels else x.index_select(1, idx)
        else:
            selected = x
        con = torch.cat([op(selected) for op in self.ops], dim=1)     # (b, n·C/k, h, w)
        att = self.la(con)                                            # (b, n·C/k)
        if self.record:
            self._record(att)
        groups = (con * att[:, :, None, None].to(con.dtype)).unflatten(1, (len(self.ops), self.width))  # eq. 8
        out = groups.sum(dim=1)                                       # eq. 9, (b, C/k, h', w')
        if idx is not None and self.width != self.channels:
            rest = x if self.stride == 1 else F.max_pool2d(x, 2, 2)
            out = rest.index_copy(1, idx, out.to(rest.dtype))
        if self.residual is not None:
            out = out + self.residual(raw)
        return out

    @torch.no_grad()
    def _record(self, att: torch.Tensor) -> None:
        self.atten_sum += op_attention(att.detach().double(), len(self.ops)).sum(dim=0)
        self.atten_count += att.shape[0]

    def attention(self) -> torch.Tensor | None:
        """Eq. 7 averaged over the recorded images: ``(n_ops,)`` float64 on the CPU, or ``None``."""
        if float(self.atten_count) == 0:
            return None
        return (self.atten_sum / self.atten_count).cpu()

    def reset_attention(self) -> None:
        self.atten_sum.zero_()
        self.atten_count.zero_()


def op_attention(att: torch.Tensor, n_ops: int) -> torch.Tensor:
    """Eq. 7 per image: LA weights ``(b, n_ops · C/k)`` → ``(b, n_ops)``, the sum of each op's ``C/k`` weights."""
    return att.unflatten(1, (n_ops, att.shape[1] // n_ops)).sum(dim=2)


def normalise(attention: torch.Tensor, awn: bool = True) -> torch.Tensor:
    """Per row (edge): AWN (eq. 11, ``A^l = Atten^l / Σ Atten^l'``) or, with ``awn=False``, softmax. A row with
    nothing recorded (all zero) is uniform."""
    attention = attention.double()
    if not awn:
        return torch.softmax(attention, dim=-1)
    total = attention.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(attention, 1.0 / attention.shape[-1])
    return torch.where(total > 0, attention / total.clamp_min(1e-300), uniform)


class SwdSearchCell(SearchCell):
    def __init__(self, steps: int, multiplier: int, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool, **edge_kwargs):
        super().__init__(steps, multiplier, c_prev_prev, c_prev, c, reduction, reduction_prev,
                         edge=lambda c, stride: SwdEdge(c, stride, **edge_kwargs))
        self.channels = c

    def attention(self) -> torch.Tensor | None:
        """(edges, ops) mean attention, or ``None`` before anything was recorded."""
        rows = [e.attention() for e in self.edges]
        return None if any(r is None for r in rows) else torch.stack(rows)


class SwdSupernet(nn.Module):
    """SWD-NAS's search network; see the module docstring. ``forward(x)`` returns logits."""

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 5, *, k: int = 4, steps: int = 4,
                 multiplier: int = 4, stem_multiplier: int = 3, in_channels: int = 3,
                 reduction_positions: Sequence[int] | None = None, ua: bool = True, ua_pool: str = "gap+gmp",
                 la_pool: str = "gap", ua_reduction: int = 2, la_reduction: int = 8, residual: bool = True,
                 attention_bias: bool = True, awn: bool = True, primitives: Sequence[str] = PRIMITIVES):
        super().__init__()
        primitives = check_search_args(primitives, C=C, num_classes=num_classes, steps=steps, multiplier=multiplier,
                                       stem_multiplier=stem_multiplier, in_channels=in_channels,
                                       ua_reduction=ua_reduction, la_reduction=la_reduction)
        check_pool(ua_pool, "ua_pool")
        check_pool(la_pool, "la_pool")
        self.reduction_positions = reduction_positions_for(layers, reduction_positions)
        if len(self.reduction_positions) != 2:
            raise ConfigError(f"reduction positions {list(self.reduction_positions)}: the SWD-NAS search network has "
                              "exactly two reduction cells")
        self.segments = [swd_cell_index(i, layers, self.reduction_positions) for i in range(layers)]
        missing = [c for c in range(len(CELL_TYPES)) if c not in self.segments]
        if missing:
            raise ConfigError(f"layers={layers}: a search network of SWD-NAS needs a normal cell before, between and "
                              f"after its two reductions (at {list(self.reduction_positions)}) so that each of the "
                              "five genotype cells is searched; use layers >= 5 (the paper: 5)")
        widths = [C * 2 ** sum(1 for r in self.reduction_positions if r <= i) for i in range(layers)]
        if ua:
            check_k(k, widths)
        self.C, self.num_classes, self.layers, self.k = C, num_classes, layers, k
        self.steps, self.multiplier, self.stem_multiplier, self.in_channels = steps, multiplier, stem_multiplier, \
            in_channels
        self.primitives = primitives
        self.awn = awn
        self.ua = ua
        edge_kwargs = {"k": k, "primitives": primitives, "ua": ua, "ua_pool": ua_pool, "la_pool": la_pool,
                       "ua_reduction": ua_reduction, "la_reduction": la_reduction, "residual": residual,
                       "bias": attention_bias}

        c_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev = c_curr, c_curr
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in self.reduction_positions
            self.cells.append(SwdSearchCell(steps, multiplier, c_prev_prev, c_prev, widths[i], reduction,
                                            reduction_prev, **edge_kwargs))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, multiplier * widths[i]
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.num_edges = sum(2 + i for i in range(steps))

    # ------------------------------------------------------------------ parameters and forward
    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter: single-level, the attention MLPs train with the weights in one optimiser."""
        return list(self.parameters())

    def arch_parameters(self) -> list[nn.Parameter]:
        return []  # no α

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(x), y)

    # ------------------------------------------------------------------ attention statistics
    def edges(self) -> list[SwdEdge]:
        return [e for cell in self.cells for e in cell.edges]

    def set_recording(self, on: bool) -> None:
        for e in self.edges():
            e.record = bool(on)

    def reset_attention(self) -> None:
        for e in self.edges():
            e.reset_attention()

    def cell_attention(self, index: int) -> torch.Tensor:
        """Genotype cell ``index``'s (edges × ops) mean attention: the mean over the network cells it stands for
        (zeros before anything was recorded)."""
        rows = [cell.attention() for cell, seg in zip(self.cells, self.segments) if seg == index]
        rows = [r for r in rows if r is not None]
        if not rows:
            return torch.zeros(self.num_edges, len(self.primitives), dtype=torch.float64)
        return torch.stack(rows).mean(dim=0)

    def architecture_weights(self) -> list[torch.Tensor]:
        """Per genotype cell, the (edges × ops) normalised weights (AWN, or softmax when ``awn`` is off)."""
        return [normalise(self.cell_attention(c), self.awn) for c in range(len(CELL_TYPES))]

    # ------------------------------------------------------------------ read-outs
    def edge_names(self) -> list[str]:
        """``"cell<c>.<node state>.<input state>"`` per genotype cell (node i is state i+2, as in genotypes)."""
        return [f"cell{c}.{i + 2}.{j}" for c in range(len(CELL_TYPES)) for i in range(self.steps)
                for j in range(2 + i)]

    def alpha_table(self) -> dict[str, list[float]]:
        """The α-equivalent table: per edge (``edge_names``), the normalised weights in ``self.primitives`` order."""
        rows = [row for w in self.architecture_weights() for row in w.tolist()]
        return dict(zip(self.edge_names(), rows))

    def derive_genotype(self) -> SwdGenotype:
        """Per genotype cell, DARTS' rule on the normalised weights (never ``none``); concat = the last
        ``multiplier`` nodes."""
        concat = tuple(range(2 + self.steps - self.multiplier, 2 + self.steps))
        return SwdGenotype(tuple(CellGenotype(derive_cell(w, self.steps, self.primitives), concat)
                                 for w in self.architecture_weights())).validate()


def build_swd_supernet(*, resolution: int = 32, channels: int = 3, width: int | None = None,
                       layers: int | None = None, num_classes: int = 10, latent_dim: int | None = None,
                       **kwargs) -> SwdSupernet:
    """``build_supernet("swd-nas", ...)``: defaults 5 cells, C=16, k=4; ``kwargs`` go to ``SwdSupernet``."""
    del latent_dim
    net = SwdSupernet(16 if width is None else width, num_classes, 5 if layers is None else layers,
                      in_channels=channels, **kwargs)
    check_supernet_resolution(net, resolution)
    return net


register_supernet("swd-nas", build_swd_supernet)
