"""Epoch loop for one fixed (G, D) pair: plain PyTorch, driven by the Tune trainable or a script.

Keeping this free of Ray means the same loop runs in a unit test, in a Tune trial and in a
benchmark; the trainable only adds reporting and checkpoint plumbing around it.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from raynas.build import build_discriminator, build_generator, latent_dim_of
from raynas.checkpoints import capture_sampling_state, restore_sampling_state
from raynas.config import RaynasConfig
from raynas.gan.ema import EMA
from raynas.gan.setup import fixed_latents, gan_setup
from raynas.gan.step import StepConfig, gan_train_step, make_optimizers


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class GANTrainer:
    """Owns G, D, EMA-G, optimisers and the real-data source of one training run."""

    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None):
        self.cfg = cfg
        t, d = cfg.train, cfg.data
        setup = gan_setup(cfg, dis_batch_size=t.dis_batch_size, iters_per_epoch=t.iters_per_epoch, device=device)
        self.device, self.precision, self.real = setup.device, setup.precision, setup.real
        self.num_images, self.iters_per_epoch = setup.num_images, setup.iters_per_epoch
        self.G = self.precision.prepare(build_generator(cfg.model, d))
        self.D = self.precision.prepare(build_discriminator(cfg.model, d))
        self.latent_dim = latent_dim_of(self.G, cfg.model.latent_dim)
        self.opt_g, self.opt_d = make_optimizers(self.G.parameters(), self.D.parameters(), t.lr_g, t.lr_d,
                                                 betas=(t.beta1, t.beta2))
        self.ema = EMA(self.G, t.ema_decay)
        self.step_cfg = StepConfig(gen_batch_size=t.gen_batch_size, dis_batch_size=t.dis_batch_size,
                                   n_critic=t.n_critic, latent_dim=self.latent_dim)
        self.epoch = 0
        self.step = 0
        self.fixed_z = fixed_latents(64, self.latent_dim, self.device, t.seed)

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
        for _ in iterator:
            out = gan_train_step(self.G, self.D, self.opt_g, self.opt_d, self.real, self.step_cfg,
                                 step=self.step, precision=self.precision, ema=self.ema)
            sums["d_loss"] += out["d_loss"]
            if out.get("g_loss") is not None:
                sums["g_loss"] += out["g_loss"]
                g_updates += 1
            self.step += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        self.epoch += 1
        images = self.iters_per_epoch * self.step_cfg.dis_batch_size
        return {
            "epoch": self.epoch,
            "d_loss": sums["d_loss"] / self.iters_per_epoch,
            "g_loss": sums["g_loss"] / max(1, g_updates),
            "train_seconds": seconds,
            "images_per_s": images / max(seconds, 1e-9),
        }

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, progress: bool = False):
        """IS/FID/KID of the EMA generator on the configured protocol."""
        from raynas.metrics import DatasetSource, evaluate_generator

        e, d = self.cfg.eval, self.cfg.data
        real = DatasetSource(d.name, e.real_split, root=d.root, resolution=d.resolution, channels=d.channels)
        return evaluate_generator(self.ema.module, self.latent_dim, real, metrics=e.metrics, protocol=e.protocol,
                                  num_samples=e.num_samples or None, extractor=e.extractor,
                                  inception_weights=e.inception_weights, device=self.device,
                                  batch_size=e.batch_size, progress=progress)

    @torch.no_grad()
    def sample_grid(self, n: int = 64) -> torch.Tensor:
        """EMA-G samples for the fixed latent batch, in [0, 1] for image logging."""
        g = self.ema.module
        with self.precision.autocast():
            x = g(self.fixed_z[:n])
        return (x.float().clamp(-1, 1) + 1) / 2

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
        return {"d_loss": stats["d_loss"], "g_loss": stats["g_loss"]}

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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.ema.load_state_dict(state["G_ema"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        restore_sampling_state(state["sampling"], self.real)
