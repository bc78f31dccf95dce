"""Epoch loop for one fixed (G, D) pair: plain PyTorch, driven by the Tune trainable or a script.

Keeping this free of Ray means the same loop runs in a unit test, in a Tune trial and in a
benchmark; the trainable only adds reporting and checkpoint plumbing around it.

With ``regan.enabled`` (the ``regan`` section of fixed GAN runs) the generator is pruned and regrown by
:class:`raynas.gan.regan.Regan` in the call order that module documents: ``begin_unit`` at the start of
every epoch (``regan.unit = epoch``, unit = the 0-based epoch) or before every D step that updates G
(``iter``, unit = G updates done so far), its hooks around every G step and after every EMA update. Re-GAN
owns G's learning rate then. Every run counts its training FLOPs (:class:`~raynas.gan.training_flops.TrainingFlops`,
pruned weights skipped), and the checkpoint holds Re-GAN's masks, phase and unit counter and the FLOPs
spent, so a run killed in a sparse phase resumes in that phase with the same masks. ``train.augment``
(:mod:`raynas.gan.augment`) transforms what D sees in every step; ADA's and APA's probability p and its
counters are in the checkpoint too, and a checkpoint resumes only a run with the same ``train.augment``.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from raynas.build import build_discriminator, build_generator, latent_dim_of
from raynas.checkpoints import capture_sampling_state, restore_sampling_state
from raynas.config import RaynasConfig
from raynas.distributed import SINGLE, Replicas, convert_sync_bn
from raynas.errors import CheckpointError, ConfigError
from raynas.gan.augment import Augment, make_augment
from raynas.gan.ema import EMA
from raynas.gan.recipe import recipe_from
from raynas.gan.regan import Regan
from raynas.gan.setup import fixed_latents, gan_setup
from raynas.gan.step import StepConfig, gan_train_step, make_optimizers
from raynas.gan.training_flops import TrainingFlops

ROW_KEYS = ("d_loss", "g_loss", "lr_g", "train_flops", "train_flops_g", "train_flops_d", "augment_p")


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class GANTrainer:
    """Owns G, D, EMA-G, optimisers and the real-data source of one training run.

    ``replicas``: this process's place in a data-parallel run (:mod:`raynas.distributed`; default one process):
    every process draws the global batches (``train.dis_batch_size``, ``train.gen_batch_size``) and trains on
    its slice, so G, D, EMA-G and Re-GAN's masks (computed from the same weights) stay identical everywhere."""

    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None, *,
                 replicas: Replicas | None = None):
        self.cfg = cfg
        t, d = cfg.train, cfg.data
        setup = gan_setup(cfg, dis_batch_size=t.dis_batch_size, iters_per_epoch=t.iters_per_epoch, device=device)
        self.device, self.precision, self.real = setup.device, setup.precision, setup.real
        self.num_images, self.iters_per_epoch = setup.num_images, setup.iters_per_epoch
        self.replicas = replicas = replicas or SINGLE
        G, D = build_generator(cfg.model, d), build_discriminator(cfg.model, d)
        if replicas.parallel:
            check_parallel(cfg, replicas)
            if t.sync_bn:
                G, D = convert_sync_bn(G), convert_sync_bn(D)
        self.G = self.precision.prepare(G)
        self.D = self.precision.prepare(D)
        replicas.broadcast_module(self.G)
        replicas.broadcast_module(self.D)
        self.latent_dim = latent_dim_of(self.G, cfg.model.latent_dim)
        self.opt_g, self.opt_d = make_optimizers(self.G.parameters(), self.D.parameters(), t.lr_g, t.lr_d,
                                                 betas=(t.beta1, t.beta2))
        self.ema = EMA(self.G, t.ema_decay)
        recipe = recipe_from(t)
        recipe.check_generator(self.G, f"model.generator={cfg.model.generator}")
        self.step_cfg = StepConfig(gen_batch_size=t.gen_batch_size, dis_batch_size=t.dis_batch_size,
                                   n_critic=t.n_critic, latent_dim=self.latent_dim, recipe=recipe)
        self.epoch = 0
        self.step = 0
        self.fixed_z = fixed_latents(64, self.latent_dim, self.device, t.seed)
        regan = getattr(cfg, "regan", None)  # fixed GAN runs only (searches have no regan section)
        self.regan = Regan(self.G, regan) if regan is not None and regan.enabled else None
        self.augment = make_augment(t)  # train.augment: None, DiffAugment, ADA or APA
        # FLOPs per sample measured on a zero latent: no random numbers drawn, no state changed.
        self.flops = TrainingFlops(self.G, self.D, example_latent=torch.zeros(1, self.latent_dim, device=self.device))
        # ProGAN growing (after the FLOPs, which are counted for the grown networks)
        self.growth = _Growth.of(cfg, self.G, (self.G, self.D, self.ema.module), self.real)

    # ------------------------------------------------------------------ training
    def train_epoch(self, progress: bool = False) -> dict[str, float]:
        """One epoch of ``iters_per_epoch`` discriminator steps; returns mean losses and throughput."""
        self.G.train()
        self.D.train()
        sums = {"d_loss": 0.0, "g_loss": 0.0}
        g_updates = 0
        start = time.perf_counter()
        iterator: Any = range(self.iters_per_epoch)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, desc=f"epoch {self.epoch + 1}/{self.cfg.train.epochs}", leave=False)
        regan, n_critic = self.regan, self.step_cfg.n_critic
        per_iter = regan is not None and regan.cfg.unit == "iter"
        if regan is not None and not per_iter:
            regan.begin_unit(self.epoch, self.opt_g, self.ema.module)
        gen_bs, dis_bs = self.step_cfg.gen_batch_size, self.step_cfg.dis_batch_size
        real = self.growth.real if self.growth is not None else self.real
        for i in iterator:
            if self.growth is not None:
                self.growth.at(self.epoch + i / self.iters_per_epoch)
            if per_iter and self.step % n_critic == 0:  # this step updates G: unit = G updates done so far
                regan.begin_unit(self.step // n_critic, self.opt_g, self.ema.module)
            out = gan_train_step(self.G, self.D, self.opt_g, self.opt_d, real, self.step_cfg,
                                 step=self.step, precision=self.precision, ema=self.ema, g_hooks=regan,
                                 augment=self.augment, replicas=self.replicas)
            sums["d_loss"] += out["d_loss"]
            updated_g = out.get("g_loss") is not None
            if updated_g:
                sums["g_loss"] += out["g_loss"]
                g_updates += 1
            self.flops.count_step(dis_bs, gen_bs if updated_g else 0,
                                  density=regan.densities() if regan is not None else None)
            self.step += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        self.epoch += 1
        if self.growth is not None:
            self.growth.at(self.epoch)  # evaluation and checkpoints see the stage the next epoch starts in
        images = self.iters_per_epoch * self.step_cfg.dis_batch_size
        stats = {
            "epoch": self.epoch,
            "d_loss": sums["d_loss"] / self.iters_per_epoch,
            "g_loss": sums["g_loss"] / max(1, g_updates),
            "train_seconds": seconds,
            "images_per_s": images / max(seconds, 1e-9),
            "lr_g": float(self.opt_g.param_groups[0]["lr"]),
            **self.flops.stats(),
        }
        if regan is not None:  # the phase, unit and measured sparsity at the end of the epoch
            stats.update(regan.stats())
        if self.augment is not None:  # ADA / APA: the probability p at the end of the epoch
            stats.update(self.augment.stats())
        return stats

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, progress: bool = False):
        """IS/FID/KID of the EMA generator on the configured protocol."""
        from raynas.metrics import DatasetSource, evaluate_generator

        e, d = self.cfg.eval, self.cfg.data
        real = DatasetSource(d.name, e.real_split, root=d.root, resolution=d.resolution, channels=d.channels)
        return evaluate_generator(self._sampler(), self.latent_dim, real, metrics=e.metrics, protocol=e.protocol,
                                  num_samples=e.num_samples or None, extractor=e.extractor,
                                  inception_weights=e.inception_weights, device=self.device,
                                  batch_size=e.batch_size, progress=progress)

    @torch.no_grad()
    def sample_grid(self, n: int = 64) -> torch.Tensor:
        """EMA-G samples for the fixed latent batch, in [0, 1] for image logging."""
        g = self._sampler()
        with self.precision.autocast():
            x = g(self.fixed_z[:n])
        return (x.float().clamp(-1, 1) + 1) / 2

    def _sampler(self) -> torch.nn.Module:
        """EMA-G; while ProGAN grows, its images up-sampled (nearest) to the run's resolution."""
        if self.growth is None:
            return self.ema.module
        return _Upsampled(self.ema.module, self.cfg.data.resolution)

    def params(self) -> dict[str, int]:
        return {"params_g": param_count(self.G), "params_d": param_count(self.D)}

    # ------------------------------------------------------------------ what the fixed trainable reads
    @property
    def epochs(self) -> int:
        return self.cfg.train.epochs

    def eval_due(self) -> bool:
        every = self.cfg.eval.every
        return self.epoch >= self.epochs or (every > 0 and self.epoch % every == 0)

    def score(self) -> dict[str, Any]:
        return self.evaluate().as_row()

    def headline_params(self) -> int:
        """The generator's parameters: what a GAN NAS paper reports."""
        return param_count(self.G)

    @staticmethod
    def row(stats: dict[str, Any]) -> dict[str, Any]:
        """The epoch row's training columns: losses, G's lr, training FLOPs so far and Re-GAN's ``regan_*``
        (phase, unit, lr, measured sparsity of G overall / min / max over tensors) when it is on."""
        return {**{k: stats[k] for k in ROW_KEYS if k in stats},
                **{k: v for k, v in stats.items() if k.startswith("regan_")}}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            "G_ema": self.ema.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "sampling": capture_sampling_state(self.real),
            "flops": self.flops.state_dict(),
            **({"regan": self.regan.state_dict()} if self.regan is not None else {}),
            **({"augment": self.augment.state_dict()} if self.augment is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        if self.growth is not None:
            self.growth.at(self.epoch)
        restore_sampling_state(state["sampling"], self.real)
        if "flops" in state:  # checkpoints written before FLOPs were counted start from 0
            self.flops.load_state_dict(state["flops"])
        if (self.regan is not None) != ("regan" in state):
            raise CheckpointError("the checkpoint was written with Re-GAN " + ("off" if self.regan else "on")
                                  + ", this run has regan.enabled=" + ("true" if self.regan else "false")
                                  + "; resume with the settings the run was started with")
        if self.regan is not None:
            self.regan.load_state_dict(state["regan"])
        if self.augment is not None or "augment" in state:
            (self.augment or Augment()).load_state_dict(state.get("augment", {"name": "none"}))


def check_parallel(cfg: RaynasConfig, replicas: Replicas) -> None:
    """What a data-parallel GAN run needs: global batches the workers share equally, and no adaptive
    augmentation (ADA's and APA's p would follow each worker's own slice)."""
    replicas.check_batch(cfg.train.dis_batch_size, "train.dis_batch_size")
    replicas.check_batch(cfg.train.gen_batch_size, "train.gen_batch_size")
    if cfg.train.augment in ("ada", "apa"):
        raise ConfigError(f"train.augment={cfg.train.augment} adapts p to the discriminator's outputs, which each "
                          "worker sees only for its slice; train it with --num-workers 1, or use "
                          "train.augment=diffaugment")


class _Downsampled:
    """A real-image batch source whose batches are average-pooled by ``factor`` (ProGAN's smaller stages)."""

    def __init__(self, real: Any) -> None:
        self.source, self.factor = real, 1

    def sample(self, n: int) -> torch.Tensor:
        x = self.source.sample(n)
        return torch.nn.functional.avg_pool2d(x, self.factor) if self.factor > 1 else x


class _Upsampled(torch.nn.Module):
    """``G``'s images up-sampled (nearest) to ``resolution``: a growing ProGAN scored and drawn at the run's size."""

    def __init__(self, G: torch.nn.Module, resolution: int) -> None:
        super().__init__()
        self.G, self.resolution = G, resolution
        self.latent_dim = getattr(G, "latent_dim", None)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.G(z)
        return x if x.shape[-1] == self.resolution else torch.nn.functional.interpolate(x, size=self.resolution)


class _Growth:
    """ProGAN's progressive growing in a fixed run (``model.progan_stage_epochs``): sets every network's stage and
    fade-in from the training time and pools the real batches to the stage's resolution."""

    def __init__(self, stage_epochs: tuple[int, ...], nets: tuple[torch.nn.Module, ...], real: Any) -> None:
        self.stage_epochs, self.nets, self.real = stage_epochs, nets, _Downsampled(real)
        self.last = len(stage_epochs) - 1

    @staticmethod
    def of(cfg: RaynasConfig, G: torch.nn.Module, nets: tuple[torch.nn.Module, ...], real: Any) -> _Growth | None:
        stages = tuple(getattr(cfg.model, "progan_stage_epochs", ()) or ())
        if not stages:
            return None
        check_growth(cfg, G)
        growth = _Growth(stages, nets, real)
        growth.at(0)
        return growth

    def at(self, epoch: float) -> None:
        from raynas.nn.progan import growth_stage

        step, alpha = growth_stage(epoch, self.stage_epochs)
        for net in self.nets:
            net.set_stage(step, alpha)
        self.real.factor = 2 ** (self.last - step)


def check_growth(cfg: RaynasConfig, G: torch.nn.Module | None = None) -> None:
    """``model.progan_stage_epochs`` needs progan G and D, one entry per stage, summing to ``train.epochs``."""
    from raynas.nn.progan import num_stages

    m, stages = cfg.model, tuple(cfg.model.progan_stage_epochs)
    if not stages:
        return
    if m.generator != "progan" or m.discriminator != "progan":
        raise ConfigError("model.progan_stage_epochs grows ProGAN: it needs model.generator=progan and "
                          "model.discriminator=progan (or leave it empty)")
    try:
        n = num_stages(cfg.data.resolution)
    except ValueError as exc:
        raise ConfigError(f"model.progan_stage_epochs: {exc}") from None
    if len(stages) != n or sum(stages) != cfg.train.epochs:
        e = cfg.train.epochs
        hint = f", e.g. {[1] * (n - 1) + [e - n + 1]}" if e >= n else f"; train.epochs must then be at least {n}"
        raise ConfigError(f"model.progan_stage_epochs {list(stages)} must give one entry per stage from 4×4 to "
                          f"{cfg.data.resolution}×{cfg.data.resolution} ({n} entries) summing to train.epochs "
                          f"({e}){hint}")
