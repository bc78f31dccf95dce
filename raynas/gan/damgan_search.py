"""DAMGAN search for one trial (Algorithm 3), in plain PyTorch: the Tune trainables only wrap it.

The generator supernet (:class:`~raynas.nn.damgan_g.DamganSupernet`, width ``damgan.search_gf_dim``)
and an AutoGAN discriminator (``model.df_dim``) are trained with THE shared step
(:func:`~raynas.gan.step.gan_train_step`): hinge loss, Adam(β = train.beta1/beta2), ``n_critic`` D
steps per G step. How the architecture is learned depends on ``damgan.selector``:

* ``da`` (the paper): single level. One Adam trains every generator weight (ops and both attention
  MLPs); α is read off the down-attention weights, averaged over the epoch (reset at its start).
* ``darts`` (the baseline): softmax architecture vectors with their own Adam (``damgan.arch_lr``,
  DARTS' betas (0.5, 0.999) and weight decay 1e-3). Single level (``damgan.bilevel=false``): they are
  stepped together with the weights on the same G loss. Bilevel: first-order DARTS alternation, i.e.
  after every G weight step one architecture step on a separate, freshly drawn latent batch (the G
  loss uses no real images, so "held-out" means new noise against the current D).

The derived subnet is scored inside the supernet (:class:`~raynas.nn.damgan_g.SupernetSubnet`, every
edge on its α* op, eval mode) because a derived network built at ``C`` channels cannot inherit the
supernet's ``C / k'``-channel ops.

The search phase reads its own hyper-parameters from ``damgan.*`` (epochs, iters_per_epoch, batches,
n_critic, learning rates, eval_every); the retrain phase reads ``train.*``.

The edge ablation of the paper's Figs. 9–10 needs a few plain helpers, also here: :func:`parse_edge`
(``cell0:1->3`` → ``cell0.normal[0]``), :func:`with_edge_op` and :func:`edge_correlation`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from raynas.build import build_discriminator
from raynas.config import RaynasConfig
from raynas.data import load_images, make_batch_source
from raynas.device import resolve_device
from raynas.errors import ConfigError, GenotypeError, TrainingDiverged
from raynas.gan.checkpoint import capture_sampling_state, restore_sampling_state
from raynas.gan.losses import g_hinge_loss
from raynas.gan.step import StepConfig, gan_train_step, make_optimizers, sample_latent
from raynas.gan.trainer import precision_for, seed_everything
from raynas.nn.attention import check_kprime
from raynas.nn.damgan_g import DamganGenerator, DamganSupernet, SupernetSubnet
from raynas.spaces import Genotype
from raynas.spaces.damgan import N_CELLS, NORMAL_EDGES, SPACE, UP_EDGES

ARCH_BETAS = (0.5, 0.999)
ARCH_WEIGHT_DECAY = 1e-3


# ====================================================================== checks
def check_search_config(cfg: RaynasConfig) -> None:
    """The checks that must fail before any trial starts: k' divides C, selector/bilevel agree."""
    check_kprime(cfg.damgan.search_gf_dim, cfg.damgan.kprime)
    if cfg.damgan.bilevel and cfg.damgan.selector != "darts":
        raise ConfigError("damgan.bilevel=true applies to the darts selector only (DA search is single-level "
                          "by design); set damgan.selector=darts or damgan.bilevel=false")


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


def alpha_means(stats: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean per-edge entropy and top1 − top2 margin: one number each for how decided the search is."""
    n = max(1, len(stats))
    return {"alpha_entropy_mean": sum(s["entropy"] for s in stats.values()) / n,
            "alpha_margin_mean": sum(s["margin"] for s in stats.values()) / n}


def derived_params(genotype: Genotype, cfg: RaynasConfig) -> int:
    """Parameters of the network the genotype retrains as (``model.gf_dim`` wide), built without memory."""
    m, d = cfg.model, cfg.data
    with torch.device("meta"):
        net = DamganGenerator(genotype, latent_dim=m.latent_dim, gf_dim=m.gf_dim, resolution=d.resolution,
                              out_channels=d.channels, bottom_width=m.bottom_width)
    return net.num_params()


# ====================================================================== search
class DamganSearch:
    """Supernet, discriminator, optimisers and real data of one DAMGAN search trial."""

    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None):
        check_search_config(cfg)
        self.cfg = cfg
        self.device = device or resolve_device(cfg.train.device)
        self.precision = precision_for(cfg, self.device)
        seed_everything(cfg.train.seed)
        d, m, dg, t = cfg.data, cfg.model, cfg.damgan, cfg.train  # dg: the search's settings
        images = load_images(d.name, d.split, root=d.root, resolution=d.resolution, channels=d.channels,
                             limit=d.limit)
        self.num_images = len(images)
        self.real = make_batch_source(images, self.device, mode=d.loader, batch_size=dg.dis_batch_size,
                                      num_workers=d.num_workers, seed=t.seed,
                                      channels_last=self.precision.channels_last)
        self.G: DamganSupernet = self.precision.prepare(DamganSupernet(
            latent_dim=m.latent_dim, gf_dim=dg.search_gf_dim, resolution=d.resolution, out_channels=d.channels,
            kprime=dg.kprime, selector=dg.selector, reduction=dg.reduction, bottom_width=m.bottom_width))
        self.D: nn.Module = self.precision.prepare(build_discriminator(m, d))
        self.latent_dim = m.latent_dim
        betas = (t.beta1, t.beta2)
        self.opt_g, self.opt_d = make_optimizers(self.G.weight_parameters(), self.D.parameters(), dg.lr_g, dg.lr_d,
                                                 betas=betas)
        arch = self.G.arch_parameters()
        self.opt_arch = (torch.optim.Adam(arch, lr=dg.arch_lr, betas=ARCH_BETAS, weight_decay=ARCH_WEIGHT_DECAY)
                         if arch else None)
        self.bilevel = bool(arch) and dg.bilevel
        if self.bilevel:  # weight steps must not accumulate gradients into α
            for p in arch:
                p.requires_grad_(False)
        self.g_step_opt = _JointOptimizer(self.opt_g, self.opt_arch) if arch and not self.bilevel else self.opt_g
        self.step_cfg = StepConfig(gen_batch_size=dg.gen_batch_size, dis_batch_size=dg.dis_batch_size,
                                   n_critic=dg.n_critic, latent_dim=self.latent_dim, lr_section="damgan")
        self.iters_per_epoch = dg.iters_per_epoch or max(1, self.num_images // dg.dis_batch_size)
        self.epoch = 0
        self.step = 0
        self.fixed_z = sample_latent(64, self.latent_dim, self.device,
                                     torch.Generator(device="cpu").manual_seed(t.seed + 1))

    # ------------------------------------------------------------------ training
    def train_epoch(self) -> dict[str, float]:
        """One epoch of D steps (a G step every ``n_critic``); α statistics cover exactly this epoch."""
        self.G.train()
        self.D.train()
        self.G.reset_alpha()
        sums = {"d_loss": 0.0, "g_loss": 0.0, "arch_loss": 0.0}
        g_updates = 0
        start = time.perf_counter()
        for _ in range(self.iters_per_epoch):
            out = gan_train_step(self.G, self.D, self.g_step_opt, self.opt_d, self.real, self.step_cfg,
                                 step=self.step, precision=self.precision)
            sums["d_loss"] += out["d_loss"]
            if out["g_loss"] is not None:
                sums["g_loss"] += out["g_loss"]
                g_updates += 1
                if self.bilevel:
                    sums["arch_loss"] += self._arch_step()
            self.step += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        self.epoch += 1
        out = {"epoch": self.epoch, "d_loss": sums["d_loss"] / self.iters_per_epoch,
               "g_loss": sums["g_loss"] / max(1, g_updates), "train_seconds": seconds,
               "images_per_s": self.iters_per_epoch * self.step_cfg.dis_batch_size / max(seconds, 1e-9)}
        if self.bilevel:
            out["arch_loss"] = sums["arch_loss"] / max(1, g_updates)
        return out

    def _arch_step(self) -> float:
        """First-order DARTS step of the architecture vectors on a fresh latent batch (D fixed)."""
        arch = self.G.arch_parameters()
        z = sample_latent(self.step_cfg.gen_batch_size, self.latent_dim, self.device)
        for p in arch:
            p.requires_grad_(True)
        try:
            with self.precision.autocast():
                loss = g_hinge_loss(self.D(self.precision.images(self.G(z))))
            grads = torch.autograd.grad(loss, arch)
        finally:
            for p in arch:
                p.requires_grad_(False)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(f"the architecture loss became {value} at step {self.step}; lower "
                                   "damgan.arch_lr or the learning rates, or set train.amp=false")
        self.opt_arch.zero_grad(set_to_none=True)
        for p, g in zip(arch, grads):
            p.grad = g
        self.opt_arch.step()
        self.opt_arch.zero_grad(set_to_none=True)
        return value

    # ------------------------------------------------------------------ architecture
    def alpha_table(self) -> dict[str, list[float]]:
        return self.G.alpha_table()

    def alpha_stats(self) -> dict[str, dict[str, float]]:
        return self.G.alpha_stats()

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
        every = self.cfg.damgan.eval_every
        return self.epoch >= self.cfg.damgan.epochs or (every > 0 and self.epoch % every == 0)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state = {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                 "opt_d": self.opt_d.state_dict(), "epoch": self.epoch, "step": self.step,
                 "sampling": capture_sampling_state(self.real)}
        if self.opt_arch is not None:
            state["opt_arch"] = self.opt_arch.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.opt_arch is not None:
            self.opt_arch.load_state_dict(state["opt_arch"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        restore_sampling_state(state["sampling"], self.real)


# ====================================================================== edge ablation (Figs. 9–10)
_EDGE_SPEC = re.compile(r"^cell(\d+):(\d+)->(\d+)$")


def parse_edge(spec: str) -> str:
    """``cell0:1->3`` (nodes inside a cell) or a space edge name (``cell1.skip[0]``) → the edge name."""
    names = SPACE.edge_names()
    spec = spec.strip()
    if spec in names:
        return spec
    m = _EDGE_SPEC.match(spec)
    if m:
        cell, src, dst = (int(v) for v in m.groups())
        for group, pairs in (("up", UP_EDGES), ("normal", NORMAL_EDGES)):
            if (src, dst) in pairs and f"cell{cell}.{group}[0]" in names:
                return f"cell{cell}.{group}[{pairs.index((src, dst))}]"
    nodes = ", ".join(f"{s}->{d}" for s, d in (*UP_EDGES, *NORMAL_EDGES))
    raise ConfigError(f"unknown edge {spec!r}; write cellI:S->D with I in 0..{N_CELLS - 1} and S->D one of "
                      f"{nodes} (e.g. cell0:1->3, the paper's example), or an edge name such as "
                      f"{', '.join(n for n in names if 'skip' in n)}")


def edge_candidates(edge: str) -> tuple[str, ...]:
    """The candidate ops of edge ``edge`` (a name from :func:`parse_edge`)."""
    for name, (*_, cands) in zip(SPACE.edge_names(), SPACE.edges()):
        if name == edge:
            return cands
    raise ConfigError(f"unknown edge {edge!r}; edges: {', '.join(SPACE.edge_names())}")


def check_edge_ops(edge: str, ops: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate a subset of an edge's candidates (unknown names raise GenotypeError listing the valid ones)."""
    cands = edge_candidates(edge)
    bad = [op for op in ops if op not in cands]
    if bad:
        raise GenotypeError(f"unknown op {bad[0]!r} for edge {edge}; its candidates are: {', '.join(cands)}")
    if len(set(ops)) != len(ops) or not ops:
        raise ConfigError(f"give each op of edge {edge} at most once, and at least one; got {list(ops)}")
    return tuple(ops)


def with_edge_op(genotype: Genotype, edge: str, op: str) -> Genotype:
    """``genotype`` with edge ``edge`` switched to ``op`` (validated)."""
    m = re.match(r"^cell(\d+)\.(\w+)\[(\d+)\]$", edge)
    if m is None:
        raise ConfigError(f"unknown edge {edge!r}; edges: {', '.join(SPACE.edge_names())}")
    check_edge_ops(edge, [op])
    ci, group, j = int(m.group(1)), m.group(2), int(m.group(3))
    d = genotype.to_dict()
    d["cells"][ci][group][j] = op
    out = Genotype.from_dict(d)
    SPACE.validate(out)
    return out


def edge_correlation(weights: list[float], scores: list[float]) -> dict[str, float]:
    """Pearson and Spearman correlation of an edge's architecture weights with retrained scores.

    NaN where undefined (fewer than three finite pairs, or a constant input), never a made-up number.
    """
    import warnings

    from scipy import stats

    pairs = [(float(w), float(s)) for w, s in zip(weights, scores, strict=True)
             if math.isfinite(float(w)) and math.isfinite(float(s))]
    nan = float("nan")
    out = {"n": float(len(pairs)), "pearson": nan, "pearson_p": nan, "spearman": nan, "spearman_p": nan}
    if len(pairs) < 3:
        return out
    w, s = zip(*pairs)
    if len(set(w)) < 2 or len(set(s)) < 2:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = stats.pearsonr(w, s)
        rho = stats.spearmanr(w, s)
    out.update(pearson=float(r[0]), pearson_p=float(r[1]), spearman=float(rho[0]), spearman_p=float(rho[1]))
    return out
