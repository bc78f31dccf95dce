"""Which generator weights Re-GAN prunes, and how many: parameter selection by name patterns, the magnitude
masks, the exact pruned count, and the checks a run config gets before any trial starts.

**Masks** (:func:`magnitude_mask`): unstructured magnitude pruning, uniform per tensor. For each pruned
tensor of ``n`` elements exactly ``k = floor(s * n)`` elements are masked (``s`` read as the decimal the user
wrote, so ``0.29 * 100`` gives 29, not 28): those with the smallest ``|w|``, ties at the threshold broken by
the lower flat (row-major) index first. ``k < n`` whenever ``s < 1``, so no tensor is ever fully pruned and a
1-element tensor is never pruned. The threshold comes from ``torch.kthvalue`` on the flattened magnitudes,
which works at any tensor size (the authors' ``torch.quantile`` refuses more than 2**24 elements in the
torch releases they used). Masks are bool tensors,
**True = kept**, keyed by ``named_parameters()`` name. They are recomputed at the start of every sparse
unit. Note that pruned weights are exactly 0 during a sparse phase and thus stay among the smallest, so
a recomputation inside one sparse phase only changes which exact zeros are masked when a tensor holds
more zeros than ``k`` (e.g. zero-initialised biases).

Which parameters: every ``G.named_parameters()`` name matched by one ``include`` pattern and by no
``exclude`` pattern. Patterns are shell globs on the dotted name (``fnmatch``, ``*`` crosses dots, e.g.
``*to_rgb*``), or regular expressions when prefixed by ``re:`` (``re.search``, e.g. ``re:\\.bias$``). By
default (``regan.exclude`` unset) every parameter of G is pruned, biases and BN affines included, as in the
authors' code, except those the generator itself declares unprunable in its ``regan_exclude`` attribute (a
tuple of patterns; StyleGAN2 declares its toRGB layers, which the authors' StyleGAN2 code never prunes); an
explicit ``regan.exclude`` (``[]`` included) replaces that default (:func:`exclude_patterns`). A pattern set
that selects nothing raises :class:`~raynas.errors.ConfigError` listing G's parameter names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from raynas.errors import ConfigError
from raynas.gan.regan_schedule import check_pattern

__all__ = ["check_config", "check_generator", "exclude_patterns", "magnitude_mask", "num_pruned",
           "select_parameters"]


def _matches(pattern: str, name: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return fnmatchcase(name, pattern)


def exclude_patterns(G: nn.Module, exclude: Iterable[str] | None) -> tuple[str, ...]:
    """The exclude patterns Re-GAN uses for ``G``: ``exclude`` when the user set it (``regan.exclude``, even
    ``[]``), else the generator's own default, its ``regan_exclude`` attribute (none when it has none), so a
    family states what its authors never prune without the shared code naming families."""
    if exclude is not None:
        return tuple(exclude)
    return tuple(getattr(G, "regan_exclude", ()))


def select_parameters(G: nn.Module, include: Iterable[str] = ("*",),
                      exclude: Iterable[str] = ()) -> dict[str, nn.Parameter]:
    """G's parameters matched by an ``include`` pattern and by no ``exclude`` pattern, by name, in order.

    Raises ConfigError listing every parameter name of G when nothing is selected.
    """
    include, exclude = tuple(include), tuple(exclude)
    for key, patterns in (("include", include), ("exclude", exclude)):
        for pattern in patterns:
            check_pattern(pattern, f"regan.{key}")
    named = list(G.named_parameters())
    chosen = {n: p for n, p in named
              if any(_matches(pat, n) for pat in include) and not any(_matches(pat, n) for pat in exclude)}
    if not chosen:
        names = ", ".join(n for n, _ in named) or "(none: the generator has no parameters)"
        raise ConfigError(f"regan.include={list(include)} with regan.exclude={list(exclude)} selects no parameter "
                          f"of the generator ({type(G).__name__}); its parameters are: {names}. Patterns are "
                          "globs on these names (e.g. '*weight', '*to_rgb*') or 're:REGEX'.")
    return chosen


def check_generator(cfg: Any) -> dict[str, int]:
    """Build ``cfg``'s generator on the meta device (no memory, no weights drawn) and select its pruned
    parameters with ``cfg.regan``: patterns that select nothing raise ConfigError listing G's parameter
    names, before any trial starts. Returns ``{name: numel}`` of the parameters Re-GAN would prune."""
    from raynas.build import build_generator

    with torch.device("meta"):
        G = build_generator(cfg.model, cfg.data)
    exclude = exclude_patterns(G, cfg.regan.exclude)
    return {n: p.numel() for n, p in select_parameters(G, cfg.regan.include, exclude).items()}


def check_config(cfg: Any) -> None:
    """Re-GAN's checks of a run config before any trial starts: the patterns select parameters of this
    generator (:func:`check_generator`) and lose at least one weight at regan.sparsity, and a warning when the
    run never reaches a sparse unit."""
    import sys

    selected = check_generator(cfg)
    r, t = cfg.regan, cfg.train
    if r.sparsity > 0 and not any(num_pruned(n, r.sparsity) for n in selected.values()):
        raise ConfigError(f"regan.sparsity={r.sparsity} prunes no weight of the selected parameters "
                          f"({', '.join(f'{k}: {n}' for k, n in selected.items())} weights): each is too small to "
                          "lose one. Select larger tensors with regan.include/regan.exclude, or raise regan.sparsity")
    if r.unit == "epoch":
        units, what = t.epochs, f"train.epochs={t.epochs}"
    elif t.iters_per_epoch:
        units = -(-t.epochs * t.iters_per_epoch // t.n_critic)
        what = f"the run's {units} generator updates"
    else:
        return  # one pass over the data per epoch: the count is known once the data is loaded
    if r.warmup >= units:
        print(f"raynas: warning: regan.warmup={r.warmup} {r.unit}s >= {what}, so the run never leaves the dense "
              f"warm-up and nothing is pruned; lower regan.warmup (e.g. --set regan.warmup={units // 4})",
              file=sys.stderr, flush=True)


def num_pruned(numel: int, sparsity: float) -> int:
    """``floor(s * n)`` with ``s`` taken as the decimal it prints as (so 0.29 * 100 = 29)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
    return math.floor(Fraction(repr(float(sparsity))) * int(numel))


@torch.no_grad()
def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask shaped (and laid out) like ``w``, True = kept; ``floor(s * n)`` smallest ``|w|`` are False.

    Ties at the threshold are pruned lowest flat (row-major) index first, so the count is exact and the
    result deterministic. Uses ``kthvalue`` (no size limit, unlike older ``torch.quantile``) and no host sync.
    """
    keep = torch.ones_like(w, dtype=torch.bool)
    k = num_pruned(w.numel(), sparsity)
    if k == 0:
        return keep
    mag = w.detach().reshape(-1).abs()
    if mag.dtype not in (torch.float32, torch.float64):
        mag = mag.float()
    threshold = torch.kthvalue(mag, k).values
    below = mag < threshold
    at = mag == threshold
    need = k - below.sum()  # >= 1: the k-th smallest value itself sits at the threshold
    rank = torch.cumsum(at, 0, dtype=torch.int32 if mag.numel() < 2**31 else torch.int64)  # 1-based among ties
    pruned = below | (at & (rank <= need))
    keep.copy_((~pruned).view(w.shape))
    return keep
