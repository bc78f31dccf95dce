"""DARTS' architecture (α) updates for any model with ``arch_parameters()`` and ``weight_parameters()``.

Plain PyTorch (no Ray). ``Architect(model, order=1|2)`` owns an Adam optimiser over α (DARTS' lr 3e-4,
betas (0.5, 0.999), weight decay 1e-3) and ``step(val, train, w_optimizer=...)`` makes one α update:

* **first order**: ``∇α L_val(w, α)`` at the current weights;
* **second order** (DARTS' unrolled step): with ``w' = w − ξ(m·buf + ∇w L_train(w, α) + wd·w)`` (the SGD
  step the weight optimiser would take next: its momentum buffers, momentum, weight decay and, unless
  ``lr_w`` is given, its current learning rate ξ),
  ``∇α L_val(w', α) − ξ·[∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)] / (2ε)`` with ``w± = w ± ε·∇w' L_val(w', α)``
  and ``ε = 0.01 / ‖∇w' L_val‖``. Per parameter group learning rates scale the direction: ``d = ξ_p·∇w'``,
  ``w± = w ± ε·d``, ``ε = 0.01/‖d‖``, which is DARTS' formula when all groups share one ξ. Parameters with
  no gradient in ``L_train`` (or outside the optimiser) do not move, as in an SGD step.

Losses are given either as a batch ``(x, y)``, evaluated as ``model.loss(x, y)``, or as a closure
``() -> loss tensor`` that runs the model at its current parameters (a GAN's generator loss, an autocast
region, ...). Closures are called several times per second-order step, at different weights.

No model copy is made: the weights are moved in place under ``no_grad`` and restored from a saved copy,
bit for bit; the second-order step also restores every buffer (BN running statistics), since its forward
passes run at weights the model never takes. Weights' ``requires_grad`` flags and ``.grad`` are left as
found (gradients come from ``torch.autograd.grad``); α's ``requires_grad`` is switched on for the step
and restored afterwards, so a caller may keep α frozen during its weight steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from raynas.errors import ConfigError, TrainingDiverged

Batch = Sequence[torch.Tensor]
LossSource = Callable[[], torch.Tensor] | Batch  # a closure, or a batch (x, y) for model.loss

#: DARTS' α optimiser settings.
ARCH_LR = 3e-4
ARCH_BETAS = (0.5, 0.999)
ARCH_WEIGHT_DECAY = 1e-3


@contextmanager
def _requires_grad(params: Sequence[torch.Tensor]) -> Iterator[None]:
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class Architect:
    """α optimiser for ``model`` (see the module docstring).

    ``order``: 1 or 2. ``r``: DARTS' finite-difference scale (ε = r/‖d‖). The Adam state is in
    ``state_dict()`` for checkpoints.
    """

    def __init__(self, model: nn.Module, *, order: int = 1, lr: float = ARCH_LR,
                 betas: tuple[float, float] = ARCH_BETAS, weight_decay: float = ARCH_WEIGHT_DECAY, r: float = 0.01):
        if order not in (1, 2):
            raise ConfigError(f"order={order!r}: DARTS' architecture step is first (1) or second (2) order")
        self.model = model
        self.order = order
        self.r = r
        self.arch = list(model.arch_parameters())  # type: ignore[operator]
        if not self.arch:
            raise ConfigError(f"{type(model).__name__} has no architecture parameters to optimise")
        self.optimizer = torch.optim.Adam(self.arch, lr=lr, betas=betas, weight_decay=weight_decay)

    # ------------------------------------------------------------------ public API
    def step(self, val: LossSource, train: LossSource | None = None, *,
             w_optimizer: torch.optim.Optimizer | None = None, lr_w: float | None = None) -> float:
        """One Adam step on α; returns the validation loss (second order: at the unrolled weights w').

        ``train`` and ``w_optimizer`` are needed by the second-order step only (the first ignores them).
        """
        grads, loss = self.arch_gradient(val, train, w_optimizer=w_optimizer, lr_w=lr_w)
        self.optimizer.zero_grad(set_to_none=True)
        for p, g in zip(self.arch, grads):
            p.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    def arch_gradient(self, val: LossSource, train: LossSource | None = None, *,
                      w_optimizer: torch.optim.Optimizer | None = None,
                      lr_w: float | None = None) -> tuple[list[torch.Tensor], float]:
        """The α gradient ``step`` would apply (one tensor per arch parameter) and the validation loss."""
        if self.order == 1:
            return self._first_order(val)
        if train is None or w_optimizer is None:
            raise ConfigError("the second-order architecture step needs the training batch (train=) and the SGD "
                              "weight optimiser (w_optimizer=) whose next step it unrolls")
        return self._second_order(val, train, w_optimizer, lr_w)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    # ------------------------------------------------------------------ internals
    def _loss(self, source: LossSource) -> torch.Tensor:
        if callable(source):
            loss = source()
        else:
            x, y = source
            loss = self.model.loss(x, y)  # type: ignore[operator]
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            raise TypeError(f"a loss must be a scalar tensor, got {type(loss).__name__}")
        return loss

    def _grad(self, loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if not loss.requires_grad:
            raise ConfigError("the loss does not depend on the architecture parameters (or on anything that "
                              "requires grad); check what the loss closure computes")
        grads = torch.autograd.grad(loss, list(params), allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]

    @staticmethod
    def _value(loss: torch.Tensor, what: str) -> float:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(f"the {what} loss of the architecture step is {value}; lower the learning "
                                   "rates or turn mixed precision off")
        return value

    def _first_order(self, val: LossSource) -> tuple[list[torch.Tensor], float]:
        with _requires_grad(self.arch):
            loss = self._loss(val)
            if not loss.requires_grad:
                raise ConfigError("the validation loss does not depend on the architecture parameters; check what "
                                  "the loss closure computes")
            raw = torch.autograd.grad(loss, self.arch, allow_unused=True)
        if all(g is None for g in raw):
            raise ConfigError("the validation loss does not depend on the architecture parameters; check what the "
                              "loss closure computes")
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(self.arch, raw)]
        return grads, self._value(loss, "validation")

    def _sgd_settings(self, w_optimizer: torch.optim.Optimizer, lr_w: float | None) -> dict[int, tuple[float, ...]]:
        """Per weight (by id): (lr, momentum, weight decay) of its SGD parameter group."""
        if not isinstance(w_optimizer, torch.optim.SGD):
            raise ConfigError(f"the second-order architecture step unrolls an SGD weight step; got "
                              f"{type(w_optimizer).__name__}")
        out: dict[int, tuple[float, ...]] = {}
        for group in w_optimizer.param_groups:
            if group.get("nesterov") or group.get("dampening", 0) or group.get("maximize"):
                raise ConfigError("the second-order architecture step supports plain momentum SGD (no nesterov, "
                                  "dampening or maximize), as DARTS uses")
            lr = float(group["lr"]) if lr_w is None else float(lr_w)
            for p in group["params"]:
                out[id(p)] = (lr, float(group.get("momentum", 0.0)), float(group.get("weight_decay", 0.0)))
        return out

    def _second_order(self, val: LossSource, train: LossSource, w_optimizer: torch.optim.Optimizer,
                      lr_w: float | None) -> tuple[list[torch.Tensor], float]:
        model, arch = self.model, self.arch
        weights = [p for p in model.weight_parameters() if p.requires_grad]  # type: ignore[operator]
        settings = self._sgd_settings(w_optimizer, lr_w)
        saved = [p.detach().clone() for p in weights]
        buffers = [(b, b.detach().clone()) for b in model.buffers()]
        try:
            with _requires_grad(arch):
                # w' = the weight optimiser's next step on L_train, taken in place
                g_train = torch.autograd.grad(self._loss(train), weights, allow_unused=True)
                lrs: list[float | None] = []
                with torch.no_grad():
                    for p, g in zip(weights, g_train):
                        if g is None or id(p) not in settings:
                            lrs.append(None)  # SGD would not move it
                            continue
                        lr, momentum, wd = settings[id(p)]
                        update = g.add(p, alpha=wd) if wd else g
                        buf = w_optimizer.state.get(p, {}).get("momentum_buffer") if momentum else None
                        if buf is not None:
                            update = update.add(buf, alpha=momentum)
                        p.sub_(update, alpha=lr)
                        lrs.append(lr)
                del g_train
                # ∇α L_val(w', α) and ∇w' L_val(w', α)
                val_loss = self._loss(val)
                grads = self._grad(val_loss, [*arch, *weights])
                d_alpha, v = grads[:len(arch)], grads[len(arch):]
                direction = [None if lr is None else vp.mul(lr) for vp, lr in zip(v, lrs)]
                del grads, v
                norm = math.sqrt(sum(float(d.pow(2).sum()) for d in direction if d is not None))
                if norm > 0.0:
                    eps = self.r / norm
                    g_plus = self._perturbed_arch_grad(train, weights, saved, direction, eps)
                    g_minus = self._perturbed_arch_grad(train, weights, saved, direction, -eps)
                    d_alpha = [ga - (gp - gm) / (2 * eps) for ga, gp, gm in zip(d_alpha, g_plus, g_minus)]
        finally:
            with torch.no_grad():
                for p, s in zip(weights, saved):
                    p.copy_(s)
                for b, s in buffers:
                    b.copy_(s)
        return d_alpha, self._value(val_loss, "validation")

    def _perturbed_arch_grad(self, train: LossSource, weights: list[torch.Tensor], saved: list[torch.Tensor],
                             direction: list[torch.Tensor | None], eps: float) -> list[torch.Tensor]:
        """∇α L_train(w + eps·d, α)."""
        with torch.no_grad():
            for p, s, d in zip(weights, saved, direction):
                p.copy_(s)
                if d is not None:
                    p.add_(d, alpha=eps)
        return self._grad(self._loss(train), self.arch)
