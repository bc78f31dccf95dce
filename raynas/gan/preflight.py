"""GAN-task checks run on the driver before any Ray worker starts, so bad input fails in the first second."""

from __future__ import annotations

from raynas.config import RaynasConfig


def preflight(cfg: RaynasConfig, *, check_model: bool = True, check_regan: bool = True) -> None:
    """Dataset present, extractor weights loadable, genotype files valid, Re-GAN's parameter patterns select
    something (when ``regan.enabled``): raise RaynasError otherwise.

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
        from raynas.gan.recipe import check_recipe
        from raynas.gan.trainer import check_growth

        check_recipe(cfg)
        if getattr(cfg, "train", None) is not None and hasattr(cfg.model, "progan_stage_epochs"):
            check_growth(cfg)
        regan = getattr(cfg, "regan", None)  # fixed GAN runs only: searches have no regan section
        if check_regan and regan is not None:
            from raynas.gan.regan_masks import check_config, check_generator
            from raynas.gan.regan_schedule import ReganConfig

            if regan.enabled:
                check_config(cfg)
            elif (regan.include, regan.exclude) != (ReganConfig.include, ReganConfig.exclude):
                check_generator(cfg)  # patterns the user set must select something, even with Re-GAN off


def _check_model(cfg: RaynasConfig) -> None:
    """Build genotype networks once on the CPU and load every genotype file the model section names (each must
    describe the network it stands for: a generator, a discriminator)."""
    from raynas.build import load_gan_genotype

    m = cfg.model
    if {m.generator, m.discriminator} & {"stylegan2", "progan"}:  # sizes only: built without memory
        import torch

        from raynas.build import build_discriminator, build_generator

        with torch.device("meta"):
            if m.generator in ("stylegan2", "progan"):
                build_generator(m, cfg.data)
            if m.discriminator in ("stylegan2", "progan"):
                build_discriminator(m, cfg.data)
    if m.generator == "genotype" or m.discriminator == "genotype":
        from raynas.build import build_discriminator, build_generator

        if m.generator == "genotype":
            build_generator(m, cfg.data)
        if m.discriminator == "genotype":
            build_discriminator(m, cfg.data)
    for path, key, role in ((m.g_genotype, "model.g_genotype", "generator"),
                            (m.d_genotype, "model.d_genotype", "discriminator")):
        if path:
            load_gan_genotype(path, key, role)
