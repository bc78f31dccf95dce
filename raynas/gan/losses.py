"""Hinge adversarial losses (SNGAN / AutoGAN / EAGAN / AlphaGAN all train with these).

Logits are cast to at least float32 before reduction so bf16 autocast cannot round a small loss to zero or
make the divergence check miss an overflow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from raynas.device import at_least_float32 as _up


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))."""
    return F.relu(1.0 - _up(real_logits)).mean() + F.relu(1.0 + _up(fake_logits)).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean(D(G(z)))."""
    return -_up(fake_logits).mean()
