"""What an EAGAN search stage trains, built from the config: search-width networks and the step, and the
checks a search passes before anything runs.

Plain PyTorch (no Ray): the SupernetHost and Evaluator actors and the driver's preflight all build
from here, so a bad width or genotype fails identically on the driver and inside an actor.
"""

from __future__ import annotations

import torch

from raynas.config import RaynasConfig
from raynas.errors import ConfigError
from raynas.gan.augment import search_augment
from raynas.gan.step import StepConfig
from raynas.spaces import Genotype


def search_sizes(cfg: RaynasConfig, role: str) -> dict[str, int]:
    """The sizes a search builds its ``generator`` or ``discriminator`` at (the search widths; ``raynas arch show
    --from-run`` describes a search's genotypes at these too)."""
    kw = {"resolution": cfg.data.resolution, "channels": cfg.data.channels}
    if role == "generator":
        return {**kw, "width": cfg.eagan.search_gf_dim, "latent_dim": cfg.model.latent_dim}
    return {**kw, "width": cfg.eagan.search_df_dim}


def network_sizes(cfg: RaynasConfig, genotype: Genotype) -> dict[str, int]:
    """``Method.network_sizes``: the sizes this search built ``genotype``'s network at."""
    from raynas.spaces.genotype import space_role

    return search_sizes(cfg, space_role(genotype.space))


def build_search_generator(cfg: RaynasConfig, genotype: Genotype | None = None) -> torch.nn.Module:
    """The stage-1 G supernet (genotype None) or a derived search-width generator."""
    from raynas.nn.registry import build_network, build_supernet

    kw = search_sizes(cfg, "generator")
    return build_supernet("eagan-g", **kw) if genotype is None else build_network(genotype, **kw)


def build_search_discriminator(cfg: RaynasConfig, genotype: Genotype | None = None,
                               supernet: bool = False) -> torch.nn.Module:
    """Stage 1's fixed D (AutoGAN, or ``eagan.fixed_d_genotype``), the stage-2 D supernet, or a derived
    search-width D."""
    from raynas.nn.discriminators import AutoGANDiscriminator
    from raynas.nn.registry import build_network, build_supernet

    kw = search_sizes(cfg, "discriminator")
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
    genotype = Genotype.load(path)
    if genotype.space != "eagan-d":
        raise ConfigError(f"eagan.fixed_d_genotype={path} holds a {genotype.space!r} genotype; stage g's fixed D "
                          "must be an 'eagan-d' genotype such as a stage-d run's best_D.json")
    return genotype


def preflight_eagan(cfg: RaynasConfig) -> None:
    """Build both search supernets once on the CPU: a bad width/latent/resolution fails here, not in an actor."""
    from raynas.gan.preflight import preflight

    e = cfg.eagan
    preflight(cfg, check_model=False)
    search_augment(cfg.train, "EAGAN")
    if len(set(e.stages)) != len(e.stages):
        raise ConfigError(f"eagan.stages={list(e.stages)} names a stage twice; each stage runs once (use [g, d])")
    if e.population % 2:
        raise ConfigError(f"eagan.population={e.population}: each round keeps P/2 and breeds P/2, so use an "
                          "even population (the paper uses 32)")
    if "gd" in e.stages and tuple(e.stages) != ("gd",):
        raise ConfigError(f"eagan.stages={list(e.stages)}: gd is the coupled baseline, a search of its own; "
                          "use eagan.stages=[gd], or [g, d] for EAGAN's decoupled search")
    if e.fixed_d_genotype and "g" not in e.stages:
        raise ConfigError(f"eagan.fixed_d_genotype is stage g's fixed D, but eagan.stages={list(e.stages)} has no "
                          "stage g; drop the setting or add stage g")
    if e.stages and e.stages[0] == "d":
        raise ConfigError(f"eagan.stages={list(e.stages)}: stage d trains copies of stage g's best generator, "
                          "so stage g must run first; use eagan.stages=[g, d]")
    needed = sorted({o for o in e.objectives if o != "params"} | {e.select_by})
    missing = [m for m in needed if m not in cfg.eval.metrics]
    if missing:
        raise ConfigError(f"eagan.objectives/eagan.select_by use {', '.join(needed)} but eval.metrics computes "
                          f"only {', '.join(cfg.eval.metrics)}; add {', '.join(missing)} to eval.metrics "
                          f"(e.g. --set eval.metrics=is,fid,kid)")
    build_search_generator(cfg)
    build_search_discriminator(cfg, supernet=True)
    if "g" in e.stages:
        build_search_discriminator(cfg)  # stage g's fixed D, including eagan.fixed_d_genotype
