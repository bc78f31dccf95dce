"""DAMGAN search for one trial (Algorithm 3), in plain PyTorch, on the generic differentiable loop.

The generator supernet (:class:`~raynas.nn.damgan_g.DamganSupernet`, width ``damgan.search_gf_dim``)
and an AutoGAN discriminator (``model.df_dim``) are trained with THE shared step
(:func:`~raynas.gan.step.gan_train_step`): hinge loss, Adam(β = train.beta1/beta2), ``n_critic`` D
steps per G step. How the architecture is learned depends on ``damgan.selector``:

* ``da`` (the paper): single level. One Adam trains every generator weight (ops and both attention
  MLPs); α is read off the down-attention weights, averaged over the epoch (reset at its start).
* ``darts`` (the baseline): softmax architecture vectors with their own Adam (``damgan.arch_lr``,
  DARTS' betas (0.5, 0.999) and weight decay 1e-3). Single level (``damgan.bilevel=false``): they are
  stepped together with the weights on the same G loss. Bilevel: first-order DARTS alternation
  (``searchers.architect``), i.e. after every G weight step one architecture step on a separate, freshly
  drawn latent batch (the G loss uses no real images, so "held-out" means new noise against the
  current D).

The derived subnet is scored inside the supernet (:class:`~raynas.nn.damgan_g.SupernetSubnet`, every
edge on its α* op, eval mode) because a derived network built at ``C`` channels cannot inherit the
supernet's ``C / k'``-channel ops.

The search phase reads its own hyper-parameters from ``damgan.*`` (epochs, iters_per_epoch, batches,
n_critic, learning rates, eval_every); the retrain phase reads ``train.*``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from raynas.build import build_discriminator
from raynas.config import RaynasConfig
from raynas.errors import ConfigError
from raynas.gan.augment import search_augment
from raynas.gan.losses import g_hinge_loss
from raynas.gan.setup import fixed_latents, gan_setup
from raynas.gan.step import StepConfig, gan_train_step, make_optimizers, sample_latent
from raynas.nn.attention import check_kprime
from raynas.nn.damgan_g import DamganSupernet, SupernetSubnet
from raynas.spaces import Genotype
from searchers.architect import Architect
from searchers.differentiable import DifferentiableSearch


# ====================================================================== checks
def check_search_config(cfg: RaynasConfig, section: Any = None) -> None:
    """The checks that must fail before any trial starts: k' divides C, selector/bilevel agree (``section``:
    the search's settings, ``cfg.damgan`` unless another method trains this supernet)."""
    dg = section if section is not None else cfg.damgan
    check_kprime(dg.search_gf_dim, dg.kprime)
    search_augment(cfg.train, "DAMGAN")
    if dg.bilevel and dg.selector != "darts":
        raise ConfigError("damgan.bilevel=true applies to the darts selector only (DA search is single-level "
                          "by design); set damgan.selector=darts or damgan.bilevel=false")


def check_search(cfg: RaynasConfig) -> None:
    """Everything a search command checks before anything is written: the search settings, the dataset and
    the metrics' extractor (the model section is the retrain's, checked once a genotype exists)."""
    from raynas.gan.preflight import preflight

    check_search_config(cfg)
    preflight(cfg, check_model=False)


def smoke(cfg: RaynasConfig) -> Genotype:
    """One search epoch in-process (the contract test's route to a genotype)."""
    search = DamganSearch(cfg, device=torch.device("cpu"))
    search.train_epoch()
    return search.derive_genotype()


# ====================================================================== helpers
class _JointOptimizer:
    """Weights and architecture vectors stepped together on one backward (single-level DARTS)."""

    def __init__(self, *optimizers: torch.optim.Optimizer):
        self.optimizers = optimizers

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()


def network_sizes(cfg: RaynasConfig, genotype: Genotype | None = None) -> dict[str, int]:
    """``Method.network_sizes``: the sizes a search counts a found generator at (``model.gf_dim`` wide, the
    config's latent and bottom width), as ``build_network`` takes them."""
    m, d = cfg.model, cfg.data
    return {"resolution": d.resolution, "channels": d.channels, "width": m.gf_dim, "latent_dim": m.latent_dim,
            "bottom_width": m.bottom_width}


def derived_params(genotype: Genotype, cfg: RaynasConfig) -> int:
    """Parameters of the network the genotype retrains as (``model.gf_dim`` wide), built without memory."""
    from raynas.nn.registry import build_network

    with torch.device("meta"):
        net = build_network(genotype, **network_sizes(cfg, genotype))
    return net.num_params()


# ====================================================================== search
class DamganSearch(DifferentiableSearch):
    """Supernet, discriminator, optimisers and real data of one DAMGAN search trial."""

    headline_metrics = ("is_mean", "fid")

    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None, section: Any = None):
        super().__init__()
        self.section = section if section is not None else cfg.damgan  # random-gan trains it with its own
        check_search_config(cfg, self.section)
        self.cfg = cfg
        d, m, dg, t = cfg.data, cfg.model, self.section, cfg.train  # dg: the search's settings
        setup = gan_setup(cfg, dis_batch_size=dg.dis_batch_size, iters_per_epoch=dg.iters_per_epoch, device=device)
        self.device, self.precision, self.real = setup.device, setup.precision, setup.real
        self.num_images, self.iters_per_epoch = setup.num_images, setup.iters_per_epoch
        self.epochs = dg.epochs
        self.G: DamganSupernet = self.precision.prepare(DamganSupernet(
            latent_dim=m.latent_dim, gf_dim=dg.search_gf_dim, resolution=d.resolution, out_channels=d.channels,
            kprime=dg.kprime, selector=dg.selector, reduction=dg.reduction, bottom_width=m.bottom_width))
        self.D: nn.Module = self.precision.prepare(build_discriminator(m, d))
        self.latent_dim = m.latent_dim
        betas = (t.beta1, t.beta2)
        self.opt_g, self.opt_d = make_optimizers(self.G.weight_parameters(), self.D.parameters(), dg.lr_g, dg.lr_d,
                                                 betas=betas)
        arch = self.G.arch_parameters()
        # The darts selector's α: DARTS' Adam (betas (0.5, 0.999), wd 1e-3) in the one architect
        self.architect = Architect(self.G, order=1, lr=dg.arch_lr) if arch else None
        self.opt_arch = self.architect.optimizer if self.architect else None
        self.bilevel = bool(arch) and dg.bilevel
        if self.bilevel:  # weight steps must not accumulate gradients into α
            for p in arch:
                p.requires_grad_(False)
        self.g_step_opt = _JointOptimizer(self.opt_g, self.opt_arch) if arch and not self.bilevel else self.opt_g
        self.step_cfg = StepConfig(gen_batch_size=dg.gen_batch_size, dis_batch_size=dg.dis_batch_size,
                                   n_critic=dg.n_critic, latent_dim=self.latent_dim,
                                   lr_section=cfg.method.replace("-", "_") if section is not None else "damgan")
        self.augment = search_augment(t, "DAMGAN")  # train.augment=diffaugment: as in fixed training
        self.images_per_step = dg.dis_batch_size
        self.metric_keys = ("d_loss", "g_loss", "arch_loss") if self.bilevel else ("d_loss", "g_loss")
        self.fixed_z = fixed_latents(64, self.latent_dim, self.device, t.seed)

    # ------------------------------------------------------------------ training
    def modules(self) -> list[nn.Module]:
        return [self.G, self.D]

    def begin_epoch(self) -> None:
        self.G.reset_alpha()  # α statistics cover exactly this epoch

    def train_step(self) -> dict[str, float | None]:
        """One D step (a G step every ``n_critic``; in bilevel mode an α step after each G step)."""
        out = gan_train_step(self.G, self.D, self.g_step_opt, self.opt_d, self.real, self.step_cfg,
                             step=self.step, precision=self.precision, augment=self.augment)
        result = {"d_loss": out["d_loss"], "g_loss": out["g_loss"]}
        if self.bilevel and out["g_loss"] is not None:
            result["arch_loss"] = self._arch_step()
        return result

    def _arch_step(self) -> float:
        """First-order DARTS step of the architecture vectors on a fresh latent batch (D fixed)."""
        z = sample_latent(self.step_cfg.gen_batch_size, self.latent_dim, self.device)

        def generator_loss() -> torch.Tensor:
            with self.precision.autocast():
                return g_hinge_loss(self.D(self.precision.images(self.G(z))))

        return self.architect.step(generator_loss)

    # ------------------------------------------------------------------ architecture
    def alpha_table(self) -> dict[str, list[float]]:
        return self.G.alpha_table()

    def derive_genotype(self) -> Genotype:
        return self.G.derive_genotype()

    def subnet(self, genotype: Genotype | None = None) -> SupernetSubnet:
        """The (current) derived subnet as a generator module sharing the supernet's weights."""
        return SupernetSubnet(self.G, genotype or self.derive_genotype())

    def evaluate_subnet(self, genotype: Genotype | None = None, progress: bool = False):
        """IS/FID/KID of the derived subnet on the configured protocol (``eval.*``), in eval mode."""
        from raynas.metrics import DatasetSource, evaluate_generator

        e, d = self.cfg.eval, self.cfg.data
        real = DatasetSource(d.name, e.real_split, root=d.root, resolution=d.resolution, channels=d.channels)
        return evaluate_generator(self.subnet(genotype), self.latent_dim, real, metrics=e.metrics,
                                  protocol=e.protocol, num_samples=e.num_samples or None, extractor=e.extractor,
                                  inception_weights=e.inception_weights, device=self.device,
                                  batch_size=e.batch_size, precision=self.precision, progress=progress)

    @torch.no_grad()
    def sample_grid(self, genotype: Genotype | None = None, n: int = 64) -> torch.Tensor:
        """Derived-subnet samples for the fixed latent batch, in [0, 1] for image logging."""
        sub = self.subnet(genotype)
        was_training = self.G.training
        sub.eval()
        try:
            with self.precision.autocast():
                x = sub(self.fixed_z[:n])
        finally:
            self.G.train(was_training)
        return (x.float().clamp(-1, 1) + 1) / 2

    def eval_due(self) -> bool:
        """After the last epoch, and every ``eval_every`` epochs (0 = last only)."""
        every = self.section.eval_every
        return self.done() or (every > 0 and self.epoch % every == 0)

    # ------------------------------------------------------------------ what the search trainables read
    def evaluate(self, genotype: Genotype) -> dict[str, Any]:
        """The epoch's scores of the derived subnet (a result row's IS/FID/KID columns)."""
        return self.evaluate_subnet(genotype).as_row()

    def derived_params(self, genotype: Genotype) -> int:
        return derived_params(genotype, self.cfg)

    def row_fields(self) -> dict[str, Any]:
        """Columns every result row of this search carries (the grid axes of the k' ablation)."""
        return {"kprime": self.section.kprime, "selector": self.section.selector, "seed": self.cfg.train.seed}

    def stateful(self) -> dict[str, Any]:
        out = {"G": self.G, "D": self.D, "opt_g": self.opt_g, "opt_d": self.opt_d}
        if self.opt_arch is not None:
            out["opt_arch"] = self.opt_arch
        return out
