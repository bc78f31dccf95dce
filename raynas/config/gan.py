"""The sections of task ``gan``: ``model``, ``train``, ``eval``, and the adversarial-training fields that fixed
training and every GAN search share (``gan_training``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from raynas.config.fields import DEVICE_DOC, MAX_EPOCHS, setting
from raynas.errors import ConfigError


@functools.cache
def gan_training(*, gen_batch_size: int = 64, dis_batch_size: int = 64, lr_g: float = 2e-4,
                 lr_d: float = 2e-4) -> type:
    """The adversarial-training fields that fixed training and every GAN search share, with per-section
    defaults: ``class EaganConfig(gan_training(gen_batch_size=40, dis_batch_size=80))``."""
    defaults = {"gen_batch_size": gen_batch_size, "dis_batch_size": dis_batch_size, "lr_g": lr_g, "lr_d": lr_d}

    @dataclass(frozen=True)
    class GanTraining:
        iters_per_epoch: int = setting(0, lo=0, doc="discriminator steps per epoch; 0 = one pass over the data")
        gen_batch_size: int = setting(defaults["gen_batch_size"], lo=1)
        dis_batch_size: int = setting(defaults["dis_batch_size"], lo=1)
        lr_g: float = setting(defaults["lr_g"], lo=0.0, hi=1.0)
        lr_d: float = setting(defaults["lr_d"], lo=0.0, hi=1.0)

    return GanTraining


@dataclass(frozen=True)
class ModelConfig:
    generator: str = setting("sngan", choices=("sngan", "genotype", "stylegan2", "progan"))
    discriminator: str = setting("autogan", choices=("autogan", "genotype", "stylegan2", "progan"))
    g_genotype: str | None = setting(None, doc="genotype JSON path when generator=genotype")
    d_genotype: str | None = setting(None, doc="genotype JSON path when discriminator=genotype")
    latent_dim: int = setting(128, lo=1, hi=4096)
    gf_dim: int = setting(256, lo=4, hi=4096)
    df_dim: int = setting(128, lo=4, hi=4096)
    bottom_width: int = setting(0, lo=0, hi=64, doc="0 = resolution // 8")
    channel_multiplier: int = setting(2, lo=1, hi=32,
                                      doc="stylegan2: channels above 32 px are 16384 / resolution × this")
    max_channels: int = setting(512, lo=1, hi=512, doc="stylegan2: cap on feature-map channels (512 = the paper; "
                                                        "smaller only for quick CPU runs)")
    mapping_layers: int = setting(8, lo=1, hi=32, doc="stylegan2: layers of the mapping network")
    progan_channels: int = setting(512, lo=1, hi=4096, doc="progan: feature-map channels of every stage")
    progan_stage_epochs: tuple[int, ...] = setting((), doc="progan: epochs of each stage from 4×4 up, summing to "
                                                            "train.epochs (the authors' CIFAR-10: 2,2,2,8); empty = "
                                                            "no growing")

    def __post_init__(self) -> None:
        if any(int(n) < 1 for n in self.progan_stage_epochs):
            raise ConfigError(f"model.progan_stage_epochs {list(self.progan_stage_epochs)}: every stage needs at "
                              "least 1 epoch")


@dataclass(frozen=True)
class TrainConfig(gan_training()):
    epochs: int = setting(5, lo=1, hi=MAX_EPOCHS)
    beta1: float = setting(0.0, lo=0.0, hi=1.0, hi_open=True, doc="Adam β1 (< 1)")
    beta2: float = setting(0.9, lo=0.0, hi=1.0, hi_open=True, doc="Adam β2 (< 1)")
    n_critic: int = setting(1, lo=1, hi=100)
    ema_decay: float = setting(0.999, lo=0.0, hi=1.0)
    loss: str = setting("hinge", choices=("hinge", "nonsaturating", "wgan-gp"),
                        doc="hinge, nonsaturating (StyleGAN2's logistic loss) or wgan-gp (ProGAN's)")
    gp_lambda: float = setting(10.0, lo=0.0, doc="wgan-gp: gradient-penalty weight")
    r1_gamma: float = setting(0.0, lo=0.0, doc="R1 penalty weight γ on real images (StyleGAN2: 10; 0 = off)")
    r1_every: int = setting(16, lo=1, doc="lazy R1: add it on every N-th D step, weighted by N")
    pl_weight: float = setting(0.0, lo=0.0,
                               doc="path-length regularisation weight (StyleGAN2: 2; 0 = off; stylegan2 G)")
    pl_every: int = setting(4, lo=1, doc="lazy path-length term: on every N-th G update, weighted by N")
    style_mixing: float = setting(0.0, lo=0.0, hi=1.0,
                                  doc="probability of mixing two latents (StyleGAN2: 0.9; stylegan2 G)")
    seed: int = setting(0, lo=0)
    device: str = setting("auto", doc=DEVICE_DOC)
    amp: str = setting("auto", choices=("auto", "true", "false"), doc="bf16 autocast; auto = on for CUDA")
    channels_last: str = setting("auto", choices=("auto", "true", "false"))
    checkpoint_every: int = setting(1, lo=1)
    augment: str = setting("none", choices=("none", "diffaugment", "ada", "apa"),
                           doc="what D sees: diffaugment (Zhao et al. 2020), ada (adaptive, Karras et al. 2020) or "
                               "apa (fakes shown as real with adaptive p, Jiang et al. 2021)")
    augment_policy: tuple[str, ...] = setting(("color", "translation", "cutout"),
                                              choices=("color", "translation", "cutout"),
                                              doc="augment=diffaugment: its transforms, in order")
    augment_p: float = setting(0.0, lo=0.0, hi=1.0, doc="augment=ada|apa: the starting probability p")
    augment_target: float = setting(0.6, lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                                    doc="augment=ada|apa: the r_t = E[sign(D(real))] that p steers toward")
    augment_kimg: float = setting(500.0, lo=0.0, lo_open=True,
                                  doc="augment=ada|apa: thousands of real images over which p can move 0 -> 1")
    augment_interval: int = setting(4, lo=1, doc="augment=ada|apa: D steps between adjustments of p")
    sync_bn: bool = setting(False, doc="data-parallel runs (--num-workers > 1): BatchNorm statistics over the "
                                       "global batch, as one worker computes them")


@dataclass(frozen=True)
class EvalConfig:
    every: int = setting(1, lo=0, doc="evaluate every N epochs (0 = only after the last epoch)")
    protocol: str = setting("search", choices=("search", "paper", "quick"),
                            doc="scores during a run (search rounds, training epochs)")
    final_protocol: str = setting("paper", choices=("search", "paper", "quick"),
                                  doc="scores of a finished network: retrains, --then-retrain, ablation cells")
    num_samples: int = setting(0, lo=0, doc="0 = the protocol's sample count")
    extractor: str = setting("inception-v3-compat", choices=("inception-v3-compat", "raynas-fmnist-cnn"))
    inception_weights: str | None = setting(None, doc="local Inception weights file (else RAYNAS_INCEPTION_WEIGHTS)")
    real_split: str = setting("train", doc="the real images IS/FID/KID compare against: any split of data.name "
                                           "(stl10: train+unlabeled, as the NAS-GAN papers use)")
    batch_size: int = setting(100, lo=1)
    metrics: tuple[str, ...] = setting(("is", "fid", "kid"), choices=("is", "fid", "kid"))

