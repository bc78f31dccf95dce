"""What ``raynas ablate regan`` checks before anything is written or any trial starts (``raynas train`` and
``retrain`` run the same Re-GAN checks through the GAN preflight when ``regan.enabled``)."""

from __future__ import annotations

from raynas.config import RaynasConfig


def check_ablation(cfg: RaynasConfig) -> None:
    """Every grid cell but the baseline prunes, whatever ``regan.enabled`` says in the preset, so Re-GAN's checks
    always run here (patterns against this generator, the schedule); then the GAN preflight (dataset,
    extractor, genotype files)."""
    from raynas.gan.preflight import preflight
    from raynas.gan.regan_masks import check_config

    check_config(cfg)
    preflight(cfg, check_regan=False)
