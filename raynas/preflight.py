"""Checks run on the driver before any Ray worker starts, so bad input fails in the first second."""

from __future__ import annotations

from raynas.config import RaynasConfig


def preflight(cfg: RaynasConfig) -> None:
    """Dataset present, extractor weights loadable, genotype files valid: raise RaynasError otherwise."""
    from raynas.data import resolve_root
    from raynas.metrics.extractors import resolve_extractor
    from raynas.spaces import Genotype

    resolve_root(cfg.data.name, cfg.data.root, split=cfg.data.split)
    resolve_extractor(cfg.eval.extractor, cfg.eval.inception_weights)
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
    from raynas.actors import build_search_discriminator, build_search_generator

    preflight(cfg)
    build_search_generator(cfg)
    build_search_discriminator(cfg, supernet=True)
