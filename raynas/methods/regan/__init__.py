"""Re-GAN (Saxena et al., CVPR 2023): prune and regrow the generator's weights while a GAN trains.

Re-GAN is a training *schedule*, not a search: its ``regan`` section modifies every fixed GAN run
(``raynas train``, ``raynas retrain``, each retrain phase), so ``--set regan.enabled=true`` turns it on for
SNGAN, StyleGAN2, ProGAN and any EAGAN or DAMGAN genotype. ``raynas ablate regan`` runs its sparsity ×
interval (× data fraction) grid as Tune trials, with a Re-GAN-off baseline cell per data fraction and seed; with
``--grid augment=none,apa,diffaugment --grid enabled=false,true`` it is the paper's few-shot table (augmentation ×
Re-GAN off/on), drawn as ``plots/regan_fid_augment.png``.

This module is the registration only (plain Python, no torch). The config section and the phase schedule are
the core's, :mod:`raynas.gan.regan_schedule` (the GAN trainer reads them); the masks in
:mod:`raynas.gan.regan_masks`, the controller the trainer calls in :mod:`raynas.gan.regan`, training FLOPs in
:mod:`raynas.gan.training_flops`; the trainer wiring in :class:`raynas.gan.trainer.GANTrainer`; the grid cell
in ``trainables/fixed_trial.py``.
"""

from __future__ import annotations

from raynas.gan.regan_schedule import ReganConfig
from raynas.methods.spec import Method, register
from raynas.results.schema import register_columns

# ============================================================================ registration
REGAN = register(Method(
    name="regan", section="regan", task="gan", config=ReganConfig, shape="schedule", modifier=True,
    title="Re-GAN",
    summary="Re-GAN: prune and regrow the generator while a fixed GAN trains (sparsity x interval grid, "
            "with a Re-GAN-off baseline cell)",
    ablation_cell="trainables.fixed_trial:regan_cell",
    ablation_space="trainables.fixed_trial:regan_space",
    ablation_metrics=(("fid", "min"), ("is_mean", "max"), ("train_flops", "min")),
    ablation_plots="raynas.methods.regan.figures:draw_regan_ablation",
    default_grid=("sparsity=0.1,0.3,0.5", "interval=1,5,10"),
    grid_aliases={"sparsity": "regan.sparsity", "interval": "regan.interval", "g": "regan.interval",
                  "fraction": "data.fraction", "data_ratio": "data.fraction", "augment": "train.augment",
                  "enabled": "regan.enabled", "regan": "regan.enabled"},
    ablation_group_by=("enabled",),  # a grid without regan.enabled gets a Re-GAN-off cell per point: not averaged
    check="raynas.methods.regan.preflight:check_ablation",
    smoke_overrides=("model.gf_dim=8", "model.df_dim=8", "model.latent_dim=12", "train.epochs=2",
                     "train.iters_per_epoch=1", "train.gen_batch_size=4", "train.dis_batch_size=4", "data.limit=64",
                     "eval.num_samples=16", "eval.batch_size=16", "eval.every=0", "regan.warmup=0",
                     "regan.interval=1"),
))
register_columns("regan", ("fid", "is_mean", "is_std", "kid_mean", "kid_std", "num_samples", "train_flops",
                           "train_flops_g", "train_flops_d", "regan_sparsity", "regan_sparsity_min",
                           "regan_sparsity_max", "regan_masked", "regan_regrown_zero",
                           "regan_phase"))  # what a grid cell's outcome row carries

from raynas.methods.regan import figures as _figures  # noqa: E402,F401  (registers its figures)
