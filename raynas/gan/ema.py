"""Exponential moving average of a generator's weights (used for evaluation and sampling).

The EMA copy follows the live model's parameters smoothly and copies its buffers verbatim, so
BatchNorm running statistics and spectral-norm power-iteration vectors always match the weights
they were computed for. Works for any ``nn.Module``, including weight-sharing supernets.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """Shadow copy of ``model`` updated as ``ema = decay * ema + (1 - decay) * param``."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1], got {decay}")
        self.decay = float(decay)
        self.num_updates = 0
        self.module = copy.deepcopy(model)
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def _pairs(self, model: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        ema_params = list(self.module.parameters())
        src_params = list(model.parameters())
        if len(ema_params) != len(src_params):
            raise ValueError(
                f"EMA.update got a model with {len(src_params)} parameters but the EMA copy has "
                f"{len(ema_params)}; pass the same model (architecture) the EMA was built from")
        return ema_params, src_params

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Blend float parameters into the shadow copy and copy every buffer."""
        ema_params, src_params = self._pairs(model)
        d = self.decay
        dst: list[torch.Tensor] = []
        src: list[torch.Tensor] = []
        for e, p in zip(ema_params, src_params):
            if e.shape != p.shape:
                raise ValueError(
                    f"EMA.update: parameter shape {tuple(p.shape)} != EMA shape {tuple(e.shape)}")
            if e.is_floating_point():
                dst.append(e)
                src.append(p.detach().to(device=e.device, dtype=e.dtype))
            else:
                e.copy_(p)
        if dst:
            if all(t.device == dst[0].device for t in dst):
                torch._foreach_mul_(dst, d)
                torch._foreach_add_(dst, src, alpha=1.0 - d)
            else:
                for e, p in zip(dst, src):
                    e.mul_(d).add_(p, alpha=1.0 - d)
        ema_bufs = list(self.module.buffers())
        src_bufs = list(model.buffers())
        if len(ema_bufs) != len(src_bufs):
            raise ValueError(f"EMA.update: model has {len(src_bufs)} buffers, EMA copy has {len(ema_bufs)}")
        for e, b in zip(ema_bufs, src_bufs):
            e.copy_(b)
        self.num_updates += 1

    def to(self, device: torch.device | str) -> EMA:
        self.module.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state.get("num_updates", 0))
        self.module.load_state_dict(state["module"])
