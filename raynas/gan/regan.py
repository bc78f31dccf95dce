"""Re-GAN (Saxena et al., CVPR 2023): prune and regrow the generator's weights while the GAN trains.

Plain PyTorch, works for any generator raynas builds (SNGAN, EAGAN and DAMGAN genotypes, or any
``nn.Module``). Only the generator is pruned; the discriminator stays dense. The config section
(:class:`ReganConfig`) and the schedule (:class:`ReganSchedule`) are plain Python in :mod:`raynas.methods.regan`
(re-exported here); :class:`raynas.gan.trainer.GANTrainer` drives the controller below in every fixed GAN run
with ``regan.enabled``.

**Schedule** (:class:`ReganSchedule`, a pure function of a unit counter ``u = 0, 1, 2, ...``): ``warmup``
dense units at the base lr, then repeated cycles of ``interval`` (g) *sparse* units at the base lr and g
*dense* units at ``lr * dense_lr_factor``. So warmup 2, g 3 gives ``W W S S S D D D S S S D D D ...``.
The lr returns to the base lr at the first sparse unit of every cycle. What a unit is, the caller decides
and counts (``ReganConfig.unit``):

* ``"epoch"`` -- unit ``u`` is the trainer's epoch ``u`` (0-based), the authors' SNGAN/ProGAN/AutoGAN setting;
* ``"iter"`` -- unit ``u`` is the generator's update number ``u`` (0-based count of G optimiser steps, not
  of D steps: with ``n_critic = 5`` there are 5 D steps per unit), the authors' StyleGAN2 setting.

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
default every parameter of G is pruned, biases and BN affines included, as in the authors' code. A pattern
set that selects nothing raises :class:`~raynas.errors.ConfigError` listing G's parameter names.

**Truly sparse** (fixes the authors' T-R1): while a sparse unit runs, the gradient is masked before every G
optimiser step, the weight right after it, and the EMA copy of G right after the EMA update, so a masked
weight is exactly 0 in every forward pass of the sparse phase (masking multiplies by the 0/1 mask: a
finite value becomes ±0, which compares equal to 0). Parameters without a gradient are skipped (T-R4).

**Regrowth** is entering the dense phase: masking stops; regrown weights start at exactly 0 (they are 0
already, and are zeroed again for safety) and every per-element optimiser state tensor of a pruned
parameter (Adam's ``exp_avg``, ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq``; SGD's
``momentum_buffer``) is reset to 0 at the regrown positions. The EMA copy of a regrown weight starts at 0 too.

**Controller API** (:class:`Regan`). The trainer owns the unit counter and calls, in this order::

    regan = Regan(G, cfg)                        # after G is on its device, before training
    flops = TrainingFlops(G, D)                  # optional (also useful with Re-GAN off): FLOPs spent
    for each epoch e (0-based):
        if cfg.unit == "epoch": regan.begin_unit(e, opt_g, ema.module)
        for each D step (trainer counter `step`, 0-based, never reset):
            if cfg.unit == "iter" and step % n_critic == 0:     # this call updates G
                regan.begin_unit(ceil(step / n_critic), opt_g, ema.module)  # = G updates done so far
            out = gan_train_step(..., step=step, ema=ema, g_hooks=regan)
            flops.count_step(dis_batch_size, gen_batch_size if out["g_loss"] is not None else 0,
                             density=regan.densities())
        row.update(regan.stats()); row.update(flops.stats())
        ckpt["regan"] = regan.state_dict(); ckpt["flops"] = flops.state_dict()

``begin_unit`` sets the lr and (re)computes the masks (sparse) or regrows (first unit after a sparse one);
``gan_train_step`` calls ``before_g_step`` / ``after_g_step`` / ``after_ema_update`` (see
:class:`~raynas.gan.step.GStepHooks`).

Without :func:`~raynas.gan.step.gan_train_step` call ``before_g_step()`` between ``backward()`` and
``opt_g.step()``, ``after_g_step()`` right after it, and ``after_ema_update(ema.module)`` after the EMA
update. The base lr of each optimiser param group is taken from the optimiser at the first
``begin_unit`` and kept in the state dict, so a resumed run (whose optimiser may hold ``0.1 * lr``) sets
the right lr; Re-GAN owns the G learning rate while it is enabled.

**State**: ``state_dict()`` holds the masks, the phase, the unit counter, whether masks are applied and
the base lrs, as plain tensors, numbers, strings, lists and dicts (``torch.load(weights_only=True)``
reads it). Resume: build ``Regan(G, cfg)``, load G/optimiser/EMA and ``regan.load_state_dict(...)``, then
go on calling ``begin_unit`` with the next unit.

**Training FLOPs** (:class:`TrainingFlops`): the forward FLOPs per sample (2 per multiply-add, the
:mod:`raynas.nn.profile` convention) of every ``Conv*``/``ConvTranspose*``/``Linear`` layer of G are measured
once with forward hooks on one latent (and of every layer that reports its own through ``layer_flops``, such as
StyleGAN2's modulated convs); the rest of G's matmul/conv work (what
:func:`raynas.nn.profile.count_flops` counts beyond those layers, e.g. attention products) and all of D are
counted dense. With ``d_l`` the kept fraction of layer ``l``'s weight (1 outside sparse units):

* ``G_fwd = rest + sum_l F_l * d_l`` per sample; a pruned weight's multiply-adds are skipped;
* one G update with batch ``b``: ``3 * G_fwd * b`` (forward + backward, the backward about twice the
  forward and equally sparse) plus ``2 * D_fwd * b`` (D forward and its input-gradient backward; D is frozen);
* one D update with batch ``b``: ``G_fwd * b`` (fakes, no grad) plus ``3 * D_fwd * 2b`` (real and fake).

Element-wise work (activations, normalisation, bias adds, the optimisers, the masking itself) is not
counted. This is an estimate of the work a sparse kernel could skip, not of dense-GPU time.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from raynas.errors import CheckpointError, ConfigError
from raynas.methods.regan import PHASES, UNITS, ReganConfig, ReganSchedule, check_pattern

__all__ = ["PHASES", "UNITS", "Regan", "ReganConfig", "ReganSchedule", "TrainingFlops", "check_config",
           "check_generator", "magnitude_mask", "num_pruned", "select_parameters"]

STATE_FORMAT = "raynas.regan/1"


# ============================================================================ masks
def _matches(pattern: str, name: str) -> bool:
    if pattern.startswith("re:"):
        return re.search(pattern[3:], name) is not None
    return fnmatchcase(name, pattern)


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
    return {n: p.numel() for n, p in select_parameters(G, cfg.regan.include, cfg.regan.exclude).items()}


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


# ============================================================================ controller
class Regan:
    """Re-GAN masks + schedule for one generator (see the module docstring for the call order).

    Also a :class:`~raynas.gan.step.GStepHooks`: pass it as ``gan_train_step(..., g_hooks=regan)``.
    """

    def __init__(self, G: nn.Module, cfg: ReganConfig | None = None) -> None:
        self.G = G
        self.cfg = cfg or ReganConfig()
        self.schedule = self.cfg.schedule
        self.params: dict[str, nn.Parameter] = select_parameters(G, self.cfg.include, self.cfg.exclude)
        self.masks: dict[str, torch.Tensor] = {}  # True = kept; empty until the first sparse unit
        self.active = False  # masks are applied (inside a sparse unit)
        self.unit: int | None = None
        self.phase: str | None = None
        self.base_lrs: list[float] | None = None
        self._lr_factor = 1.0
        self._density: dict[str, float] = {}
        self._names: list[str] = []  # masked parameter names, aligned with the caches below
        self._keep: list[torch.Tensor] = []  # float 0/1 masks in each parameter's dtype
        self._ema_cache: tuple[int, list[torch.Tensor], list[torch.Tensor]] | None = None

    # ------------------------------------------------------------------ schedule / phases
    def begin_unit(self, unit: int, optimizer_g: torch.optim.Optimizer,
                   ema_module: nn.Module | None = None) -> str:
        """Enter unit ``unit``: set G's lr, recompute and apply the masks (sparse) or regrow (leaving sparse).

        Returns the phase. ``ema_module`` (the EMA copy of G), when given, is masked at once too.
        """
        unit = int(unit)
        phase = self.schedule.phase(unit)
        groups = optimizer_g.param_groups
        if self.base_lrs is None:
            self.base_lrs = [float(g["lr"]) for g in groups]
        elif len(self.base_lrs) != len(groups):
            raise ValueError(f"Re-GAN knows {len(self.base_lrs)} optimiser param groups but got an optimiser with "
                             f"{len(groups)}; pass the generator's optimiser")
        self._lr_factor = self.schedule.lr_factor(unit)
        for g, base in zip(groups, self.base_lrs):
            g["lr"] = base * self._lr_factor
        if phase == "sparse":
            s = self.cfg.sparsity  # magnitude_mask prunes exactly num_pruned(n, s): no host sync needed
            self._set_masks({n: magnitude_mask(p, s) for n, p in self.params.items()},
                            kept=[p.numel() - num_pruned(p.numel(), s) for p in self.params.values()])
            self.active = True
            self.after_g_step()
            if ema_module is not None:
                self.after_ema_update(ema_module)
        elif self.active:
            self._regrow(optimizer_g)
        self.unit, self.phase = unit, phase
        return phase

    def _set_masks(self, masks: dict[str, torch.Tensor], kept: list[int] | None = None) -> None:
        """Install ``masks``; ``kept`` (kept elements per mask) is counted on the device when not given."""
        self.masks = masks
        self._names = list(masks)
        self._keep = [masks[n].to(self.params[n].dtype) for n in self._names]
        self._ema_cache = None
        if kept is None:
            kept = torch.stack([m.sum() for m in masks.values()]).tolist() if masks else []  # one host sync
        self._density = {n: k / max(1, masks[n].numel()) for n, k in zip(self._names, kept)}

    @torch.no_grad()
    def _regrow(self, optimizer: torch.optim.Optimizer) -> None:
        """Stop masking; regrown weights (and their optimiser moments) restart at exactly 0."""
        for n in self._names:
            p, keep = self.params[n], self.masks[n]
            p.masked_fill_(~keep, 0.0)
            for value in optimizer.state.get(p, {}).values():
                if torch.is_tensor(value) and value.shape == p.shape:  # exp_avg, exp_avg_sq, max_exp_avg_sq, ...
                    value.masked_fill_(~keep.to(value.device), 0)
        self.active = False
        self._density = {}

    # ------------------------------------------------------------------ GStepHooks
    @torch.no_grad()
    def before_g_step(self) -> None:
        """Mask G's gradients (call between ``backward()`` and ``opt_g.step()``)."""
        if not self.active:
            return
        grads, keep = [], []
        for n, k in zip(self._names, self._keep):
            g = self.params[n].grad
            if g is not None:
                grads.append(g)
                keep.append(k if k.dtype == g.dtype else k.to(g.dtype))
        if grads:
            torch._foreach_mul_(grads, keep)

    @torch.no_grad()
    def after_g_step(self) -> None:
        """Mask G's weights (call right after ``opt_g.step()``)."""
        if self.active and self._names:
            torch._foreach_mul_([self.params[n] for n in self._names], self._keep)

    @torch.no_grad()
    def after_ema_update(self, ema_module: nn.Module) -> None:
        """Mask the EMA copy of G (same parameter names as G; call after ``ema.update(G)``)."""
        if not self.active or not self._names:
            return
        if self._ema_cache is None or self._ema_cache[0] != id(ema_module):
            named = dict(ema_module.named_parameters())
            missing = [n for n in self._names if n not in named]
            if missing:
                raise ValueError(f"the EMA module has no parameter {missing[0]!r}; pass the EMA copy of this G")
            params = [named[n] for n in self._names]
            keep = [self.masks[n].to(device=p.device, dtype=p.dtype) for n, p in zip(self._names, params)]
            self._ema_cache = (id(ema_module), params, keep)
        _, params, keep = self._ema_cache
        torch._foreach_mul_(params, keep)

    # ------------------------------------------------------------------ read-outs
    @property
    def lr_factor(self) -> float:
        return self._lr_factor

    def densities(self) -> dict[str, float]:
        """Kept fraction of every masked parameter while masks are applied; {} outside sparse units."""
        return self._density if self.active else {}

    @torch.no_grad()
    def measured_sparsity(self) -> dict[str, float]:
        """Fraction of exact zeros over the pruned tensors: overall, and min / max over tensors."""
        params = list(self.params.values())
        device = params[0].device
        zeros = torch.stack([(p == 0).sum().to(device) for p in params]).tolist()  # one host sync
        sizes = [p.numel() for p in params]
        fractions = [z / max(1, n) for z, n in zip(zeros, sizes)]
        return {"overall": sum(zeros) / max(1, sum(sizes)), "min": min(fractions), "max": max(fractions)}

    def stats(self) -> dict[str, Any]:
        """Per-epoch row values: phase, unit, G lr and the measured sparsity of G."""
        s = self.measured_sparsity()
        lr = self.base_lrs[0] * self._lr_factor if self.base_lrs else None
        return {"regan_phase": self.phase or "", "regan_unit": -1 if self.unit is None else self.unit,
                "regan_lr_g": lr, "regan_sparsity": s["overall"], "regan_sparsity_min": s["min"],
                "regan_sparsity_max": s["max"]}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Masks, phase, unit counter, base lrs (plain types; ``torch.load(weights_only=True)`` reads it)."""
        cfg = dataclasses.asdict(self.cfg)
        cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
        return {"format": STATE_FORMAT, "unit": -1 if self.unit is None else self.unit, "phase": self.phase or "",
                "active": self.active, "base_lrs": list(self.base_lrs or []), "lr_factor": self._lr_factor,
                "masks": {n: m.detach().clone() for n, m in self.masks.items()}, "config": cfg}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; masks move to their parameters' devices."""
        if state.get("format") != STATE_FORMAT:
            raise CheckpointError(f"not a Re-GAN state (format {state.get('format')!r}, expected {STATE_FORMAT!r})")
        masks = {}
        for n, m in state["masks"].items():
            if n not in self.params:
                raise CheckpointError(f"the Re-GAN state masks parameter {n!r}, which this generator does not prune "
                                      f"(pruned: {', '.join(self.params)}); resume with the same model and "
                                      "regan.include / regan.exclude")
            p = self.params[n]
            if tuple(m.shape) != tuple(p.shape):
                raise CheckpointError(f"Re-GAN mask {n!r} has shape {tuple(m.shape)}, the parameter {tuple(p.shape)}")
            masks[n] = torch.empty_like(p, dtype=torch.bool).copy_(m)
        if state["active"] and set(masks) != set(self.params):
            raise CheckpointError("the Re-GAN state does not mask every pruned parameter; resume with the same "
                                  "model and regan.include / regan.exclude")
        self._set_masks(masks)
        self.active = bool(state["active"])
        unit = int(state["unit"])
        self.unit = None if unit < 0 else unit
        self.phase = str(state["phase"]) or None
        self.base_lrs = [float(x) for x in state["base_lrs"]] or None
        self._lr_factor = float(state.get("lr_factor", 1.0))


# ============================================================================ FLOPs
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _weight_param(m: nn.Module) -> nn.Parameter:
    """The trainable tensor behind ``m.weight`` (the original under a spectral-norm parametrization)."""
    parametrizations = getattr(m, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations.weight.original
    return m.weight


def _counted(m: nn.Module) -> bool:
    """A layer whose FLOPs scale with its weight's density: torch's conv / linear layers, and any module with a
    ``weight`` parameter that reports its own FLOPs (``layer_flops``: equalised-lr and modulated convs)."""
    return isinstance(m, _LAYERS) or (callable(getattr(m, "layer_flops", None))
                                      and isinstance(getattr(m, "weight", None), nn.Parameter))


def _layer_flops(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Forward FLOPs (2 per multiply-add) of one call of a conv / linear layer, over the whole batch."""
    if not isinstance(m, _LAYERS):
        return int(m.layer_flops(x, y))
    if isinstance(m, nn.Linear):
        return 2 * y.numel() * m.in_features
    k = math.prod(m.kernel_size)
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        return 2 * x.numel() * (m.out_channels // m.groups) * k
    return 2 * y.numel() * (m.in_channels // m.groups) * k


class TrainingFlops:
    """Training FLOPs spent so far by a GAN run, counting pruned generator weights as skipped.

    See the module docstring for the approximation. ``layer_flops`` holds each conv / linear layer's forward
    FLOPs per sample keyed by its weight parameter's name (the keys of :meth:`Regan.densities`);
    ``g_rest`` the rest of G's forward FLOPs per sample, ``d_forward`` D's (0 without D).
    """

    def __init__(self, G: nn.Module, D: nn.Module | None = None, *, latent_dim: int | None = None,
                 example_latent: torch.Tensor | None = None) -> None:
        from raynas.nn.profile import count_flops

        if example_latent is None:
            dim = latent_dim if latent_dim is not None else getattr(G, "latent_dim", None)
            if not isinstance(dim, int):
                raise ValueError("TrainingFlops needs latent_dim (G has no integer latent_dim attribute)")
            device = next(iter(G.parameters())).device
            example_latent = torch.randn(1, dim, device=device)
        z = example_latent[:1]
        names = {id(p): n for n, p in G.named_parameters()}
        per_layer: dict[str, int] = {}
        handles = []

        def hook(name: str):
            def record(m: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
                per_layer[name] = per_layer.get(name, 0) + _layer_flops(m, inputs[0], output)
            return record

        for m in G.modules():
            if _counted(m):
                name = names.get(id(_weight_param(m)))
                if name is not None:
                    handles.append(m.register_forward_hook(hook(name)))
        flags = [(m, m.training) for m in G.modules()]
        G.eval()
        # a generator that draws random numbers in forward (StyleGAN2's noise inputs) must not move the run's RNG
        cuda = [z.device] if z.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            try:
                with torch.no_grad():
                    fake = G(z)
            finally:
                for h in handles:
                    h.remove()
                for m, training in flags:
                    m.training = training
            self.layer_flops: dict[str, int] = per_layer
            self.g_dense_forward = int(count_flops(G, z))
            self.g_rest = max(0, self.g_dense_forward - sum(per_layer.values()))
            self.d_forward = int(count_flops(D, fake)) if D is not None else 0
        self.g = 0.0  # FLOPs spent in G so far
        self.d = 0.0  # FLOPs spent in D so far

    def g_forward(self, density: Mapping[str, float] | None = None) -> float:
        """G's forward FLOPs per sample with layer weights kept at ``density`` (name → kept fraction)."""
        density = density or {}
        return self.g_rest + sum(f * density.get(n, 1.0) for n, f in self.layer_flops.items())

    def count_step(self, dis_batch_size: int, gen_batch_size: int = 0,
                   density: Mapping[str, float] | None = None) -> float:
        """Add one ``gan_train_step``: a D update with ``dis_batch_size`` and, when ``gen_batch_size`` > 0,
        a G update with that batch. Returns the FLOPs added."""
        g_fwd = self.g_forward(density)
        g = g_fwd * dis_batch_size + 3.0 * g_fwd * gen_batch_size
        d = 3.0 * self.d_forward * 2 * dis_batch_size + 2.0 * self.d_forward * gen_batch_size
        self.g += g
        self.d += d
        return g + d

    @property
    def total(self) -> float:
        return self.g + self.d

    def stats(self) -> dict[str, float]:
        return {"train_flops": self.total, "train_flops_g": self.g, "train_flops_d": self.d}

    def state_dict(self) -> dict[str, float]:
        return {"g": self.g, "d": self.d}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.g = float(state["g"])
        self.d = float(state["d"])
