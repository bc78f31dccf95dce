"""What an EAGAN search stage trains, built from the config: search-width networks and the step.

Plain PyTorch (no Ray): the SupernetHost and Evaluator actors and the driver's preflight all build
from here, so a bad width or genotype fails identically on the driver and inside an actor.
"""

from __future__ import annotations

import torch

from raynas.config import RaynasConfig
from raynas.gan.step import StepConfig
from raynas.spaces import Genotype


def build_search_generator(cfg: RaynasConfig, genotype: Genotype | None = None) -> torch.nn.Module:
    """The stage-1 G supernet (genotype None) or a derived search-width generator."""
    from raynas.nn.registry import build_network, build_supernet

    kw = {"resolution": cfg.data.resolution, "channels": cfg.data.channels, "width": cfg.eagan.search_gf_dim,
          "latent_dim": cfg.model.latent_dim}
    return build_supernet("eagan-g", **kw) if genotype is None else build_network(genotype, **kw)


def build_search_discriminator(cfg: RaynasConfig, genotype: Genotype | None = None,
                               supernet: bool = False) -> torch.nn.Module:
    """Stage 1's fixed D (AutoGAN, or ``eagan.fixed_d_genotype``), the stage-2 D supernet, or a derived
    search-width D."""
    from raynas.nn.discriminators import AutoGANDiscriminator
    from raynas.nn.registry import build_network, build_supernet

    kw = {"resolution": cfg.data.resolution, "channels": cfg.data.channels, "width": cfg.eagan.search_df_dim}
    if supernet:
        return build_supernet("eagan-d", **kw)
    if genotype is None and cfg.eagan.fixed_d_genotype:
        genotype = load_fixed_d_genotype(cfg.eagan.fixed_d_genotype)
    if genotype is not None:
        return build_network(genotype, **kw)
    return AutoGANDiscriminator(cfg.eagan.search_df_dim, cfg.data.channels)


def search_step_config(cfg: RaynasConfig, stage: str) -> StepConfig:
    """The training step of one search stage: ``eagan.*`` batches and that stage's n_critic (the coupled
    stage gd trains like stage g)."""
    e = cfg.eagan
    return StepConfig(gen_batch_size=e.gen_batch_size, dis_batch_size=e.dis_batch_size,
                      n_critic=e.stage_d_n_critic if stage == "d" else e.stage_g_n_critic,
                      latent_dim=cfg.model.latent_dim, lr_section="eagan")


def load_fixed_d_genotype(path: str) -> Genotype:
    """An ``eagan-d`` genotype for stage 1's fixed D; any other space is a clear ConfigError."""
    from raynas.errors import ConfigError

    genotype = Genotype.load(path)
    if genotype.space != "eagan-d":
        raise ConfigError(f"eagan.fixed_d_genotype={path} holds a {genotype.space!r} genotype; stage g's fixed D "
                          "must be an 'eagan-d' genotype such as a stage-d run's best_D.json")
    return genotype
