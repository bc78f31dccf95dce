"""Re-GAN (Saxena et al., CVPR 2023): prune and regrow the generator's weights while the GAN trains.

Plain PyTorch, works for any generator raynas builds (SNGAN, EAGAN and DAMGAN genotypes, or any
``nn.Module``). Only the generator is pruned; the discriminator stays dense. This module is the
controller the trainer drives (:class:`Regan`: phases, masking, regrowth, its saved state);
:class:`raynas.gan.trainer.GANTrainer` drives it in every fixed GAN run with ``regan.enabled``. The config
section (:class:`~raynas.gan.regan_schedule.ReganConfig`) and the schedule are
:mod:`raynas.gan.regan_schedule`; the masks :mod:`raynas.gan.regan_masks`; the FLOPs estimate
:mod:`raynas.gan.training_flops`.

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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from raynas.errors import CheckpointError
from raynas.gan.regan_masks import exclude_patterns, magnitude_mask, num_pruned, select_parameters
from raynas.gan.regan_schedule import ReganConfig

__all__ = ["STATE_FORMAT", "Regan"]

STATE_FORMAT = "raynas.regan/1"


class Regan:
    """Re-GAN masks + schedule for one generator (see the module docstring for the call order).

    Also a :class:`~raynas.gan.step.GStepHooks`: pass it as ``gan_train_step(..., g_hooks=regan)``.
    """

    def __init__(self, G: nn.Module, cfg: ReganConfig | None = None) -> None:
        self.G = G
        self.cfg = cfg or ReganConfig()
        self.schedule = self.cfg.schedule
        self.params: dict[str, nn.Parameter] = select_parameters(G, self.cfg.include,
                                                                 exclude_patterns(G, self.cfg.exclude))
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

    def masked_fraction(self) -> float:
        """Fraction of the pruned tensors' elements masked right now: ``regan.sparsity`` in a sparse unit, 0 in
        every other (the schedule's sparsity, where ``measured_sparsity`` counts exact zeros)."""
        if not self.active:
            return 0.0
        sizes = {n: self.params[n].numel() for n in self._names}
        return sum((1.0 - self._density[n]) * sizes[n] for n in self._names) / max(1, sum(sizes.values()))

    @torch.no_grad()
    def regrown_zero(self) -> dict[str, float] | None:
        """After a regrowth (a dense unit that follows a sparse one): the fraction of the regrown weights that are
        still exactly 0, overall and the largest per tensor; None before any regrowth and inside sparse units.

        Regrown weights restart at 0 and move only where their gradient is non-zero. A weight whose gradient is
        exactly 0 stays 0 through the whole dense phase: a pruned BatchNorm scale γ whose channel then outputs
        its constant shift β ≤ 0 into a ReLU (dead: no gradient reaches γ, β or the weights reading the
        channel), or a parameter that takes no part in the forward pass. So ``regan_sparsity_max`` after a dense
        epoch counts such stuck weights, not masking."""
        if self.active or not self._names:
            return None
        zeros, counts = [], []
        for n in self._names:
            regrown = ~self.masks[n]
            zeros.append((self.params[n][regrown] == 0).sum())
            counts.append(int(regrown.sum()))
        z = torch.stack(zeros).tolist() if zeros else []  # one host sync
        per = [a / c for a, c in zip(z, counts) if c]
        return {"overall": sum(z) / max(1, sum(counts)), "max": max(per, default=0.0)}

    def stats(self) -> dict[str, Any]:
        """Per-epoch row values: phase, unit, G lr, the measured sparsity of G (exact zeros: overall, min, max
        over tensors), the masked fraction (``regan_masked``: what the schedule holds at 0 now) and, in dense
        units after a regrowth, the fraction of regrown weights still exactly 0 (``regan_regrown_zero``, largest
        per tensor ``regan_regrown_zero_max``; see ``regrown_zero``)."""
        s = self.measured_sparsity()
        lr = self.base_lrs[0] * self._lr_factor if self.base_lrs else None
        stuck = self.regrown_zero()
        return {"regan_phase": self.phase or "", "regan_unit": -1 if self.unit is None else self.unit,
                "regan_lr_g": lr, "regan_sparsity": s["overall"], "regan_sparsity_min": s["min"],
                "regan_sparsity_max": s["max"], "regan_masked": self.masked_fraction(),
                "regan_regrown_zero": None if stuck is None else stuck["overall"],
                "regan_regrown_zero_max": None if stuck is None else stuck["max"]}

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
