"""The StyleGAN2 training recipe as settings: non-saturating logistic loss, lazy R1, path-length regularisation
and style mixing (Karras et al., CVPR 2020; the Re-GAN authors' StyleGAN2 code uses R1 γ = 10 every 16 D steps,
path-length weight 2 every 4 G steps, mixing 0.9).

**Lazy regularisation**: on every ``r1_every``-th discriminator step the R1 term ``γ/2 · E‖∇_x D(x)‖²`` on the real
batch, multiplied by ``r1_every``, is added to that step's D loss; on every ``pl_every``-th generator update the
path-length term ``E(‖J_wᵀ y‖ − a)²`` (y ~ N(0, I)/sqrt(H·W), ``a`` a running mean of the lengths with decay
``pl_decay``), multiplied by ``pl_weight · pl_every``, is added to that update's G loss. The StyleGAN2 code runs
the terms as extra optimiser steps (and rescales Adam's lr and betas by ``every / (every + 1)`` for it); adding them
to the regular step keeps one optimiser step per update, so Re-GAN's masks and the EMA see every update, and needs
no rescaling. The path-length running mean lives in G (``G.pl_mean``, a buffer) so checkpoints carry it.

**Style mixing**: with probability ``style_mixing`` a batch uses two latents, switching at a random layer.

**WGAN-GP** (``loss="wgan-gp"``, the ProGAN authors' recipe): critic loss ``mean D(G(z)) − mean D(x)`` plus, on every
D step, ``gp_lambda`` (10) times the gradient penalty at random real–fake interpolates and ``drift`` (0.001) times
``mean D(x)²``; generator loss ``−mean D(G(z))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from raynas.device import at_least_float32 as _up
from raynas.errors import ConfigError
from raynas.gan.losses import d_hinge_loss, g_hinge_loss

LOSSES = ("hinge", "nonsaturating", "wgan-gp")


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator logistic loss: mean(softplus(-D(x))) + mean(softplus(D(G(z))))."""
    return F.softplus(-_up(real_logits)).mean() + F.softplus(_up(fake_logits)).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: mean(softplus(-D(G(z))))."""
    return F.softplus(-_up(fake_logits)).mean()


def d_wgan_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Critic loss of WGAN: mean(D(G(z))) - mean(D(x)) (the gradient penalty and drift come on top)."""
    return _up(fake_logits).mean() - _up(real_logits).mean()


def g_wgan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss of WGAN: -mean(D(G(z)))."""
    return -_up(fake_logits).mean()


def gradient_penalty(inputs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's ``E(‖∇ D(x̂)‖₂ − 1)²`` at ``inputs`` (which require grad; ``logits = D(inputs)``), with graph."""
    (grad,) = torch.autograd.grad(_up(logits).sum(), inputs, create_graph=True)
    return (_up(grad).flatten(1).norm(dim=1) - 1.0).pow(2).mean()


def r1_penalty(real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """``E_x ‖∇_x D(x)‖²`` over the batch; ``real`` must require grad and ``real_logits = D(real)``. The graph is
    kept, so the penalty trains D."""
    (grad,) = torch.autograd.grad(_up(real_logits).sum(), real, create_graph=True)
    return _up(grad).pow(2).flatten(1).sum(1).mean()


def path_lengths(images: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """Per-sample ``‖J_wᵀ y‖`` (y ~ N(0, I) / sqrt(H·W)) averaged over the ``num_ws`` style inputs, with graph."""
    h, w = images.shape[2], images.shape[3]
    noise = torch.randn_like(images) / (h * w) ** 0.5
    (grad,) = torch.autograd.grad((_up(images) * noise).sum(), ws, create_graph=True)
    return _up(grad).pow(2).sum(2).mean(1).sqrt()


@dataclass(frozen=True)
class Recipe:
    """Loss and regularisers of the GAN step (defaults: plain hinge, none of StyleGAN2's extras)."""

    loss: str = "hinge"
    r1_gamma: float = 0.0
    r1_every: int = 16
    pl_weight: float = 0.0
    pl_every: int = 4
    pl_decay: float = 0.01
    style_mixing: float = 0.0
    gp_lambda: float = 10.0  # wgan-gp: gradient-penalty weight (the ProGAN authors' 10)
    drift: float = 0.001  # wgan-gp: weight of mean(D(x)²), which keeps the critic's output near 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.r1_every < 1 or self.pl_every < 1:
            raise ValueError("r1_every and pl_every must be >= 1")
        if min(self.r1_gamma, self.pl_weight, self.gp_lambda, self.drift) < 0 or not 0.0 <= self.style_mixing <= 1.0:
            raise ValueError("r1_gamma, pl_weight, gp_lambda and drift must be >= 0 and style_mixing in [0, 1]")

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return _D_LOSSES[self.loss](real_logits, fake_logits)

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return _G_LOSSES[self.loss](fake_logits)

    def critic_terms(self, d_forward: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor | None:
        """wgan-gp's per-step terms ``gp_lambda · GP + drift · mean(D(x)²)``, GP at a uniform random point on each
        real–fake segment; None for the other losses."""
        if self.loss != "wgan-gp":
            return None
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
        mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        gp = gradient_penalty(mixed, d_forward(mixed))
        return self.gp_lambda * gp + self.drift * _up(real_logits).pow(2).mean()

    def r1_step(self, step: int) -> bool:
        """Whether D step ``step`` (0-based) carries the R1 term."""
        return self.r1_gamma > 0 and step % self.r1_every == 0

    def pl_step(self, g_update: int) -> bool:
        """Whether G update ``g_update`` (0-based) carries the path-length term."""
        return self.pl_weight > 0 and g_update % self.pl_every == 0

    @property
    def styled(self) -> bool:
        """Whether G must expose ``mapping`` / ``synthesis`` (style mixing or path-length regularisation)."""
        return self.style_mixing > 0 or self.pl_weight > 0

    def check_generator(self, G: nn.Module, name: str = "this generator") -> None:
        if self.styled and not all(hasattr(G, a) for a in ("mapping", "synthesis", "num_ws", "pl_mean")):
            raise ConfigError(f"train.style_mixing and train.pl_weight need a style-based generator (model.generator="
                              f"stylegan2); {name} has no mapping/synthesis networks; set both to 0")

    def styles(self, G: nn.Module, z: torch.Tensor) -> torch.Tensor:
        """Per-layer styles ``(batch, num_ws, dim)`` for latents ``z``, mixed with a second latent batch with
        probability ``style_mixing`` (the switch layer drawn uniformly from 1 … num_ws − 1)."""
        from raynas.nn.stylegan2 import mix_styles

        w = G.mapping(z)
        if self.style_mixing > 0 and G.num_ws > 1 and float(torch.rand(())) < self.style_mixing:
            index = int(torch.randint(1, G.num_ws, ()))
            return mix_styles(w, G.mapping(torch.randn_like(z)), G.num_ws, index)
        return G.broadcast(w)

    def path_length_term(self, G: nn.Module, images: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        """``pl_weight · pl_every · E(‖J_wᵀ y‖ − a)²``, updating G's running mean ``a`` (``G.pl_mean``)."""
        lengths = path_lengths(images, ws)
        with torch.no_grad():
            mean = G.pl_mean.lerp(lengths.mean().to(G.pl_mean.dtype), self.pl_decay)
            G.pl_mean.copy_(mean)
        return self.pl_weight * self.pl_every * (lengths - mean).pow(2).mean()


_D_LOSSES = {"hinge": d_hinge_loss, "nonsaturating": d_logistic_loss, "wgan-gp": d_wgan_loss}
_G_LOSSES = {"hinge": g_hinge_loss, "nonsaturating": g_nonsaturating_loss, "wgan-gp": g_wgan_loss}


def recipe_from(train: object) -> Recipe:
    """The recipe a ``train`` config section sets (fields ``loss``, ``r1_*``, ``pl_*``, ``style_mixing``; a section
    without them gives the default recipe)."""
    fields = ("loss", "r1_gamma", "r1_every", "pl_weight", "pl_every", "style_mixing", "gp_lambda")
    return Recipe(**{f: getattr(train, f) for f in fields if hasattr(train, f)})


def check_recipe(cfg: object) -> None:
    """Style mixing and path-length regularisation need the stylegan2 generator: a ConfigError up front."""
    recipe = recipe_from(cfg.train)  # type: ignore[attr-defined]
    generator = cfg.model.generator  # type: ignore[attr-defined]
    if recipe.styled and generator != "stylegan2":
        raise ConfigError(f"train.style_mixing and train.pl_weight need model.generator=stylegan2 (a style-based "
                          f"generator), not {generator!r}; set both to 0 or use stylegan2")
