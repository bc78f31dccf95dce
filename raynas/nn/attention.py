"""DAMGAN's two attention mechanisms and the searchable edge that wires them (paper §II, Figs. 2–3).

On every searchable edge, in order:

1. **UA** (up-attention, eq. 7–8) weighs the departure node's ``C`` maps; the top ``k = C / k'``
   by batch-summed weight form ``F^k`` (eq. 9, Algorithm 2). Choosing one set per batch lets the
   candidate ops (built for ``k`` channels) see a fixed channel set; the set is kept in ascending
   channel order, as Algorithm 2 scans it.
2. all ``r`` candidate ops run on ``F^k``; their outputs are concatenated to ``F^con`` (``r·k`` maps).
3. **DA** (down-attention, eq. 2–3, 5) weighs ``F^con``; the ``r`` weighted groups are summed to
   ``F^out``. ``α_j`` = sum of op ``j``'s ``k`` DA weights (eq. 4), averaged over recorded batches.
4. the arrival node gets ``F^out`` back at the selected channel positions and the ``C − k``
   unselected UA-weighted maps elsewhere (nearest-neighbour resampled on up edges), so every node
   holds ``C`` maps.

``selector="darts"`` keeps steps 1, 2 and 4 and replaces DA by one softmax-weighted architecture
vector per edge (the DARTS baseline of the paper's ablation).

**Fixed-op mode** (``edge.fix(name)``) evaluates one derived path inside the supernet: steps 1 and 4
are unchanged and ``F^out`` is only the chosen op's selector-weighted group (DA: that op's ``k`` maps
times their DA weights, DA still computed on the full ``F^con`` because its input is the concatenation;
DARTS: ``softmax(α)_j · op_j``). Nothing is recorded in this mode. The derived network itself cannot
inherit these weights (its ops have ``C`` channels, the supernet's ``C / k'``), so this is how the
search scores its current subnet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raynas.device import at_least_float32
from raynas.errors import ConfigError, GenotypeError
from raynas.nn.ops import REGISTRY, build_op
from raynas.spaces.swd import POOLINGS

SELECTORS = ("da", "darts")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_kprime(channels: int, kprime: int) -> int:
    """``k = C / k'`` maps go through the candidate ops; ``k'`` must divide ``C``."""
    if not isinstance(kprime, int) or kprime < 1 or channels % kprime != 0:
        raise ConfigError(f"kprime={kprime!r} does not divide the {channels} feature maps per node; "
                          f"allowed values are the divisors of {channels}: "
                          f"{', '.join(map(str, divisors(channels)))}")
    return channels // kprime


def check_ops(kind: str, names: Sequence[str]) -> None:
    table = REGISTRY.get(kind)
    if table is None:
        raise GenotypeError(f"unknown op kind {kind!r}; kinds: {', '.join(REGISTRY)}")
    for name in names:
        if name not in table:
            raise GenotypeError(f"unknown {kind} op {name!r}; valid {kind} ops: {', '.join(table)}")


class Repeat(nn.Module):
    """Apply one module ``times`` times with shared weights (a ×4 skip = a ×2 up op twice, as AlphaGAN)."""

    def __init__(self, op: nn.Module, times: int):
        super().__init__()
        self.op = op
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.times):
            x = self.op(x)
        return x


def build_edge_op(kind: str, name: str, channels: int, scale: int = 1) -> nn.Module:
    """One candidate of an edge: a normal op (``scale`` 1) or an up op reaching ``scale`` = 2**n.

    Shared by the supernet and the derived network so a derived edge equals its supernet path.
    """
    check_ops(kind, [name])
    if kind == "up":
        times = int(round(math.log2(scale))) if scale > 1 else 0
        if times < 1 or 2 ** times != scale:
            raise ValueError(f"an up edge must scale by a power of two >= 2, got {scale}")
        op = build_op("up", name, channels)
        return op if times == 1 else Repeat(op, times)
    if scale != 1:
        raise ValueError(f"a {kind} edge keeps the resolution; got scale {scale}")
    return build_op(kind, name, channels)


def check_pool(pool: str, key: str = "pool") -> str:
    if pool not in POOLINGS:
        raise ConfigError(f"{key}={pool!r} is not a pooling mode; choose one of: {', '.join(POOLINGS)}")
    return pool


def _hidden(channels: int, reduction: int) -> int:
    if reduction < 1:
        raise ConfigError(f"attention reduction ratio must be >= 1, got {reduction}")
    return max(1, channels // reduction)


class ChannelAttention(nn.Module):
    """``σ(MLP(GAP x) [+ MLP(GMP x)])`` with one shared two-layer MLP (``channels → channels // reduction →
    channels``, ReLU) → ``(b, channels)`` weights: DAMGAN's up- and down-attention and SWD-NAS's UA and LA
    (eqs. 5–6 there; the paper's MLP has biases, the SWD-NAS authors' code has none: ``bias``)."""

    def __init__(self, channels: int, reduction: int, pool: str = "gap", bias: bool = True):
        super().__init__()
        self.pool = check_pool(pool)
        hidden = _hidden(channels, reduction)
        self.fc1 = nn.Linear(channels, hidden, bias=bias)
        self.fc2 = nn.Linear(hidden, channels, bias=bias)

    def mlp(self, v: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(v)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(x.mean(dim=(2, 3)))
        if self.pool == "gap+gmp":
            logits = logits + self.mlp(x.amax(dim=(2, 3)))
        return torch.sigmoid(logits)


class UpAttention(ChannelAttention):
    """Eq. 7: σ(MLP(avgpool F) + MLP(maxpool F)) with ONE shared bottleneck MLP → (b, C) weights."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__(channels, reduction, pool="gap+gmp")


class DownAttention(ChannelAttention):
    """Eq. 2–3: σ(F2(ReLU(F1(GAP F^con)))) → (b, r·k) weights, one per concatenated map."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__(channels, reduction, pool="gap")


def select_top_k(weights: torch.Tensor, k: int) -> torch.Tensor:
    """Algorithm 2 for a batch: indices of the ``k`` largest batch-summed weights, ascending."""
    summed = at_least_float32(weights.detach()).sum(dim=0)
    return torch.topk(summed, k).indices.sort().values


class AttentionEdge(nn.Module):
    """One searchable edge: UA → top-k → ``r`` candidate ops → DA (or DARTS softmax) → ``C`` maps."""

    def __init__(self, kind: str, candidates: Sequence[str], channels: int, *, kprime: int = 4,
                 reduction: int = 16, scale: int = 1, selector: str = "da"):
        super().__init__()
        if selector not in SELECTORS:
            raise ConfigError(f"unknown selector {selector!r}; choose one of: {', '.join(SELECTORS)}")
        if not candidates:
            raise GenotypeError(f"a {kind} edge needs at least one candidate op")
        check_ops(kind, candidates)
        if len(set(candidates)) != len(candidates):
            raise GenotypeError(f"duplicate candidate ops on a {kind} edge: {list(candidates)}")
        self.kind = kind
        self.candidates = tuple(candidates)
        self.channels = channels
        self.k = check_kprime(channels, kprime)
        self.scale = scale
        self.selector = selector
        r = len(self.candidates)
        self.ua = UpAttention(channels, reduction)
        self.ops = nn.ModuleDict({n: build_edge_op(kind, n, self.k, scale) for n in self.candidates})
        if selector == "da":
            self.da: DownAttention | None = DownAttention(r * self.k, reduction)
            self.arch: nn.Parameter | None = None
        else:
            self.da = None
            self.arch = nn.Parameter(1e-3 * torch.randn(r))
        self.register_buffer("alpha_sum", torch.zeros(r, dtype=torch.float64))
        self.register_buffer("alpha_count", torch.zeros((), dtype=torch.float64))
        self.last_selected: torch.Tensor | None = None
        self.fixed: int | None = None

    def fix(self, name: str | None) -> None:
        """Use only candidate ``name`` from now on (``None``: back to the full mixture)."""
        if name is None:
            self.fixed = None
            return
        if name not in self.candidates:
            raise GenotypeError(f"unknown {self.kind} op {name!r} for this edge; candidates: "
                                f"{', '.join(self.candidates)}")
        self.fixed = self.candidates.index(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ua = self.ua(x)                                             # (b, C)
        x_w = x * ua[:, :, None, None].to(x.dtype)                  # eq. 8
        idx = select_top_k(ua, self.k)                              # eq. 9
        self.last_selected = idx
        fk = x_w.index_select(1, idx)
        j = self.fixed
        if self.da is not None:
            outs = [op(fk) for op in self.ops.values()]
            f_con = torch.cat(outs, dim=1)                          # (b, r·k, H, W)
            att = self.da(f_con)                                    # eq. 3
            f_new = f_con * att[:, :, None, None].to(f_con.dtype)   # eq. 5
            groups = f_new.unflatten(1, (len(outs), self.k))
            f_out = groups.sum(dim=1) if j is None else groups[:, j]
            if self.training and j is None:
                self._record(att)
        elif j is not None:
            f_out = torch.softmax(self.arch, dim=0)[j] * self.ops[self.candidates[j]](fk)
        else:
            w = torch.softmax(self.arch, dim=0)
            f_out = sum(wj * op(fk) for wj, op in zip(w, self.ops.values()))
        if self.k == self.channels:                                 # idx is 0..C-1: nothing left over
            return f_out
        rest = x_w if self.scale == 1 else F.interpolate(x_w, scale_factor=self.scale, mode="nearest")
        return rest.index_copy(1, idx, f_out.to(rest.dtype))

    @torch.no_grad()
    def _record(self, att: torch.Tensor) -> None:
        per_sample = att.detach().double().unflatten(1, (len(self.candidates), self.k)).sum(dim=2)  # eq. 4
        self.alpha_sum += per_sample.mean(dim=0)
        self.alpha_count += 1

    # ------------------------------------------------------------------ architecture weights
    def alpha(self) -> list[float]:
        """DA: mean over recorded batches of eq. 4 (zeros before any); DARTS: softmax(α)."""
        if self.arch is not None:
            return torch.softmax(self.arch.detach().double(), dim=0).tolist()
        if float(self.alpha_count) == 0:
            return [0.0] * len(self.candidates)
        return (self.alpha_sum / self.alpha_count).tolist()

    def reset_alpha(self) -> None:
        self.alpha_sum.zero_()
        self.alpha_count.zero_()

    @property
    def recorded(self) -> bool:
        return self.arch is not None or float(self.alpha_count) > 0

    def best(self) -> str:
        """Eq. 6: the candidate with the largest α."""
        a = self.alpha()
        return self.candidates[max(range(len(a)), key=a.__getitem__)]


def alpha_summary(alpha: Sequence[float]) -> dict[str, float]:
    """Entropy (nats) and top1 − top2 margin of α normalised to sum 1: how decided an edge is."""
    t = torch.tensor(list(alpha), dtype=torch.float64).clamp_min(0)
    total = float(t.sum())
    p = t / total if total > 0 else torch.full_like(t, 1.0 / len(t))
    nz = p[p > 0]
    entropy = float(-(nz * nz.log()).sum())
    top = torch.topk(p, min(2, len(p))).values.tolist()
    margin = top[0] - top[1] if len(top) > 1 else top[0]
    return {"entropy": entropy, "margin": margin}
