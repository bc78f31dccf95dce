"""Checks run on the driver before any Ray worker starts, so bad input fails in the first second."""

from __future__ import annotations

from raynas.config import RaynasConfig


def preflight(cfg: RaynasConfig, *, check_model: bool = True) -> None:
    """Dataset present, extractor weights loadable, genotype files valid: raise RaynasError otherwise.

    ``check_model=False`` skips the ``model`` section's networks and genotype files: a search command
    has no genotype yet (it produces one), so only the data and the metrics must be usable up front.
    """
    from raynas.data import resolve_root
    from raynas.metrics.extractors import resolve_extractor

    resolve_root(cfg.data.name, cfg.data.root, split=cfg.data.split)
    if cfg.eval.real_split != cfg.data.split:  # the reference split of IS/FID/KID must be there too
        resolve_root(cfg.data.name, cfg.data.root, split=cfg.eval.real_split)
    resolve_extractor(cfg.eval.extractor, cfg.eval.inception_weights)
    if check_model:
        _check_model(cfg)


def _check_model(cfg: RaynasConfig) -> None:
    """Build genotype networks once on the CPU and load every genotype file the model section names."""
    from raynas.spaces import Genotype

    m = cfg.model
    if m.generator == "genotype" or m.discriminator == "genotype":
        from raynas.build import build_discriminator, build_generator

        if m.generator == "genotype":
            build_generator(m, cfg.data)
        if m.discriminator == "genotype":
            build_discriminator(m, cfg.data)
    for path in (m.g_genotype, m.d_genotype):
        if path:
            Genotype.load(path)


def preflight_eagan(cfg: RaynasConfig) -> None:
    """Build both search supernets once on the CPU: a bad width/latent/resolution fails here, not in an actor."""
    from raynas.errors import ConfigError
    from raynas.gan.eagan_setup import build_search_discriminator, build_search_generator

    e = cfg.eagan
    preflight(cfg, check_model=False)
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
