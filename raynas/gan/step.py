"""The one GAN training step shared by fixed-network training, EAGAN supernet rounds and DAMGAN.

One call performs one discriminator update and, every ``n_critic`` calls, one generator update
(followed by the EMA update). An optional ``augment`` (:mod:`raynas.gan.augment`: DiffAugment, ADA, APA)
transforms every batch D sees and reads D's real logits. Optional ``g_hooks`` (see :class:`GStepHooks`,
e.g. Re-GAN's masks in :mod:`raynas.gan.regan`) are called around the generator's optimiser step and after
the EMA update.
``g_forward`` / ``d_forward`` let a caller train one path of a weight-sharing supernet
(e.g. ``lambda z: supernet(z, genotype)``) with the same code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from raynas.device import Precision, at_least_float32
from raynas.distributed import Replicas
from raynas.errors import TrainingDiverged
from raynas.gan.augment import Augment
from raynas.gan.ema import EMA
from raynas.gan.recipe import Recipe, r1_penalty


class BatchSource(Protocol):
    """Anything that hands out real image batches in [-1, 1] on the training device."""

    def sample(self, n: int) -> torch.Tensor: ...


@dataclass(frozen=True)
class StepConfig:
    """Batch sizes and critic ratio of the adversarial step."""

    gen_batch_size: int
    dis_batch_size: int
    latent_dim: int
    n_critic: int = 1
    lr_section: str = "train"  # config section whose lr_g/lr_d drive this step (named in divergence advice)
    recipe: Recipe = Recipe()  # loss and lazy regularisers (default: hinge, none)

    def __post_init__(self) -> None:
        for name in ("gen_batch_size", "dis_batch_size", "latent_dim", "n_critic"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"StepConfig.{name} must be >= 1, got {getattr(self, name)}")


class GStepHooks(Protocol):
    """Callbacks around the generator update of :func:`gan_train_step`.

    Order within one G update: ``backward`` → ``before_g_step()`` → ``opt_g.step()`` →
    ``after_g_step()`` → ``ema.update(G)`` → ``after_ema_update(ema.module)`` (the last only when an EMA
    is given). None is called when the step raises ``TrainingDiverged`` or does not update G.
    """

    def before_g_step(self) -> None: ...

    def after_g_step(self) -> None: ...

    def after_ema_update(self, ema_module: nn.Module) -> None: ...


def sample_latent(n: int, latent_dim: int, device: torch.device | str,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard-normal latent codes, shape (n, latent_dim).

    A seeded ``generator`` may live on another device (e.g. a CPU generator for a fixed sample
    batch that must be identical on CPU and GPU); codes are drawn there and moved.
    """
    device = torch.device(device)
    if generator is not None and generator.device.type != device.type:
        return torch.randn(n, latent_dim, device=generator.device, generator=generator).to(device)
    return torch.randn(n, latent_dim, device=device, generator=generator)


def _trainable(params: Iterable) -> list:
    """Drop frozen tensors; parameter-group dicts pass through untouched."""
    return [p for p in params if isinstance(p, dict) or p.requires_grad]


def make_optimizers(G_params: Iterable[torch.Tensor], D_params: Iterable[torch.Tensor], lr_g: float,
                    lr_d: float, betas: tuple[float, float] = (0.0, 0.9)
                    ) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for both players with the GAN-NAS default betas (0, 0.9)."""
    opt_g = torch.optim.Adam(_trainable(G_params), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(_trainable(D_params), lr=lr_d, betas=betas)
    return opt_g, opt_d


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Skip weight-gradient work for ``module`` (D during the G update) and restore flags after."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _diverged(which: str, value: float, step: int, section: str = "train") -> TrainingDiverged:
    return TrainingDiverged(
        f"The {which} loss became {value} at step {step}; the update was skipped so the weights stay "
        "finite. Earlier checkpoints and results are kept. Lower the learning rates "
        f"(--set {section}.lr_g=... --set {section}.lr_d=...), check that the training images are finite and scaled "
        "to [-1, 1], or turn off bf16 autocast (--set train.amp=false).")


def gan_train_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                   real: BatchSource, cfg: StepConfig, *, step: int, precision: Precision,
                   ema: EMA | None = None,
                   g_forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   d_forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   g_hooks: GStepHooks | None = None,
                   augment: Augment | None = None,
                   replicas: Replicas | None = None,
                   ) -> dict[str, float | None]:
    """One D update (and a G update when ``step % n_critic == 0``) with ``cfg.recipe``'s loss (hinge by default)
    and, on their steps, its lazy R1 / path-length terms and style mixing (:mod:`raynas.gan.recipe`).

    Returns ``d_loss``, ``g_loss`` (None when G was not updated this step; both without the regularisers), ``d_real``
    and ``d_fake`` (mean logits), plus ``r1`` (the unweighted penalty) and ``pl_mean`` (the path lengths' running
    mean) on the steps that add them. Raises TrainingDiverged before any optimiser step on a non-finite loss.
    Modules are used in whatever train/eval mode the caller set. ``g_hooks`` (optional, see :class:`GStepHooks`)
    wrap the G optimiser step and follow the EMA update. ``augment`` (optional) picks D's real batch (APA),
    transforms every image D sees, real and fake, in both updates, and observes D's real logits after D's update
    (the adaptive probability of ADA / APA).

    Data-parallel (``replicas`` of several processes, :mod:`raynas.distributed`): every process draws the global
    real batch and latents and trains on its slice; gradients are summed over the processes before each
    optimiser step, and the returned losses and logit means are the global batch's.
    """
    g_fwd = g_forward if g_forward is not None else G
    d_fwd = d_forward if d_forward is not None else D
    device = precision.device
    aug = augment if augment is not None else Augment()
    rc = cfg.recipe
    styled = rc.styled and g_forward is None  # a supernet path (g_forward) has no style inputs
    extra: dict[str, float] = {}

    # Discriminator: real batch vs detached fakes (no graph through G at all).
    opt_d.zero_grad(set_to_none=True)
    rep = replicas if replicas is not None and replicas.parallel else None
    x_real = precision.images(real.sample(cfg.dis_batch_size).to(device, non_blocking=True))
    z = sample_latent(cfg.dis_batch_size, cfg.latent_dim, device)
    if rep is not None:
        x_real, z = rep.part(x_real, z)
    r1 = rc.r1_step(step)
    if r1:
        x_real = x_real.detach().requires_grad_(True)
    with precision.autocast():
        with torch.no_grad():
            x_fake = precision.images(G.synthesis(rc.styles(G, z)) if styled else g_fwd(z))
        real_logits = d_fwd(aug.images(aug.reals_for_d(x_real, x_fake)))
        fake_logits = d_fwd(aug.images(x_fake.detach()))
        d_loss = rc.d_loss(real_logits, fake_logits)
        d_total = d_loss
        critic = rc.critic_terms(d_fwd, x_real, x_fake, real_logits)  # wgan-gp's penalty and drift, else None
        if critic is not None:
            d_total = d_total + critic
        if r1:
            penalty = r1_penalty(x_real, real_logits)
            d_total = d_total + (rc.r1_gamma / 2 * rc.r1_every) * penalty
    # One host sync for all the statistics; the check precedes opt_d.step().
    d_loss_v, d_real_v, d_fake_v, d_total_v = _backward(
        d_total, opt_d, rep, cfg.dis_batch_size,
        [d_loss.detach(), at_least_float32(real_logits.detach()).mean(),
         at_least_float32(fake_logits.detach()).mean(), d_total.detach()])
    if r1:
        extra["r1"] = float(penalty.detach())
    if not math.isfinite(d_total_v):
        opt_d.zero_grad(set_to_none=True)
        raise _diverged("discriminator", d_total_v, step, cfg.lr_section)
    opt_d.step()
    opt_d.zero_grad(set_to_none=True)  # free D's gradients while G trains
    aug.observe(real_logits)

    g_loss_v: float | None = None
    if step % cfg.n_critic == 0:
        opt_g.zero_grad(set_to_none=True)
        z = sample_latent(cfg.gen_batch_size, cfg.latent_dim, device)
        if rep is not None:
            (z,) = rep.part(z)
        pl = styled and rc.pl_step(step // cfg.n_critic)
        with _frozen(D):
            with precision.autocast():
                if styled:
                    ws = rc.styles(G, z)
                    images = G.synthesis(ws)
                else:
                    images = g_fwd(z)
                g_loss = rc.g_loss(d_fwd(aug.images(precision.images(images))))
                g_total = g_loss + rc.path_length_term(G, images, ws) if pl else g_loss
            g_loss_v, g_total_v = _backward(g_total, opt_g, rep, cfg.gen_batch_size,
                                            [g_loss.detach(), g_total.detach()])
        if pl:
            extra["pl_mean"] = float(G.pl_mean)
        if not math.isfinite(g_total_v):
            opt_g.zero_grad(set_to_none=True)
            raise _diverged("generator", g_total_v, step, cfg.lr_section)
        if g_hooks is not None:
            g_hooks.before_g_step()
        opt_g.step()
        if g_hooks is not None:
            g_hooks.after_g_step()
        opt_g.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(G)
            if g_hooks is not None:
                g_hooks.after_ema_update(ema.module)

    return {"d_loss": d_loss_v, "g_loss": g_loss_v, "d_real": d_real_v, "d_fake": d_fake_v, **extra}


def _backward(total: torch.Tensor, optimizer: torch.optim.Optimizer, replicas: Replicas | None, batch: int,
              stats: list[torch.Tensor]) -> list[float]:
    """``total.backward()`` and ``stats`` as floats (one host sync); data-parallel: this process's share of
    the global batch's loss, the gradients of ``optimizer``'s parameters and the stats summed over processes."""
    if replicas is None:
        total.backward()
        return torch.stack(stats).tolist()
    share = replicas.share(batch)
    (total * share).backward()
    return replicas.reduce_grads([p for g in optimizer.param_groups for p in g["params"]],
                                 *(s * share for s in stats))
