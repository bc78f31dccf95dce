"""Re-GAN (Saxena et al., CVPR 2023): prune and regrow the generator's weights while a GAN trains.

Re-GAN is a training *schedule*, not a search: its ``regan`` section modifies every fixed GAN run
(``raynas train``, ``raynas retrain``, each retrain phase), so ``--set regan.enabled=true`` turns it on for
SNGAN and for any EAGAN or DAMGAN genotype. ``raynas ablate regan`` runs its sparsity × interval
(× data fraction) grid as Tune trials, with a Re-GAN-off baseline cell per data fraction and seed.

This module is plain Python (no torch): the config section, the phase schedule and the registration.
The science (masks, the controller the trainer calls, training FLOPs) is in :mod:`raynas.gan.regan`; the
trainer wiring in :class:`raynas.gan.trainer.GANTrainer`; the grid cell in ``trainables/train.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from raynas.config import setting
from raynas.errors import ConfigError
from raynas.methods.spec import Method, register

PHASES = ("warmup", "sparse", "dense")
UNITS = ("epoch", "iter")


def check_pattern(pattern: str, where: str) -> None:
    """A parameter-name pattern is a non-empty glob, or ``re:REGEX`` with a valid regular expression."""
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where}: patterns must be non-empty strings, got {pattern!r}")
    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as exc:
            raise ConfigError(f"{where}: {pattern!r} is not a valid regular expression ({exc})") from None


# ============================================================================ config
@dataclass(frozen=True)
class ReganConfig:
    """The ``regan`` config section (defaults: the authors' SNGAN code)."""

    enabled: bool = setting(False, doc="prune and regrow the generator during training (Re-GAN)")
    sparsity: float = setting(0.3, doc="s in [0, 1): fraction of each pruned tensor masked")
    interval: int = setting(5, lo=1, doc="g: sparse units, then as many dense units, per cycle")
    unit: str = setting("epoch", choices=UNITS, doc="epoch = trainer epochs; iter = generator updates")
    warmup: int = setting(100, lo=0, doc="dense warm-up units before the first sparse unit")
    dense_lr_factor: float = setting(0.1, doc="G lr multiplier during dense units, in (0, 1]")
    include: tuple[str, ...] = setting(("*",), doc="G parameter names to prune: globs, or re:REGEX")
    exclude: tuple[str, ...] = setting((), doc="G parameter names never pruned, e.g. *to_rgb*")

    def __post_init__(self) -> None:
        if not (isinstance(self.sparsity, (int, float)) and 0.0 <= self.sparsity < 1.0):
            raise ConfigError(f"regan.sparsity must lie in [0, 1), got {self.sparsity!r}")
        if isinstance(self.interval, bool) or not isinstance(self.interval, int) or self.interval < 1:
            raise ConfigError(f"regan.interval must be an integer >= 1, got {self.interval!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"regan.warmup must be an integer >= 0, got {self.warmup!r}")
        if self.unit not in UNITS:
            raise ConfigError(f"regan.unit must be one of {', '.join(UNITS)}, got {self.unit!r}")
        if not (isinstance(self.dense_lr_factor, (int, float)) and 0.0 < self.dense_lr_factor <= 1.0):
            raise ConfigError(f"regan.dense_lr_factor must lie in (0, 1], got {self.dense_lr_factor!r}")
        for key in ("include", "exclude"):
            for pattern in getattr(self, key):
                check_pattern(pattern, f"regan.{key}")

    @property
    def schedule(self) -> ReganSchedule:
        return ReganSchedule(warmup=self.warmup, interval=self.interval, dense_lr_factor=self.dense_lr_factor)


# ============================================================================ schedule
@dataclass(frozen=True)
class ReganSchedule:
    """Phase and lr multiplier of unit ``u`` (0-based): ``warmup`` units, then cycles of g sparse + g dense."""

    warmup: int
    interval: int
    dense_lr_factor: float = 0.1

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.interval < 1 or not 0.0 < self.dense_lr_factor <= 1.0:
            raise ValueError(f"bad Re-GAN schedule {self}: need warmup >= 0, interval >= 1, "
                             "0 < dense_lr_factor <= 1")

    def phase(self, unit: int) -> str:
        """``"warmup"``, ``"sparse"`` or ``"dense"``."""
        if unit < 0:
            raise ValueError(f"Re-GAN unit counter must be >= 0, got {unit}")
        if unit < self.warmup:
            return "warmup"
        return "sparse" if (unit - self.warmup) % (2 * self.interval) < self.interval else "dense"

    def lr_factor(self, unit: int) -> float:
        """Multiplier of the base lr: ``dense_lr_factor`` in dense units, 1 otherwise."""
        return self.dense_lr_factor if self.phase(unit) == "dense" else 1.0


# ============================================================================ registration
REGAN = register(Method(
    name="regan", section="regan", task="gan", config=ReganConfig, shape="schedule", modifier=True,
    title="Re-GAN",
    summary="Re-GAN: prune and regrow the generator while a fixed GAN trains (sparsity x interval grid, "
            "with a Re-GAN-off baseline cell)",
    ablation_cell="trainables.train:regan_cell",
    ablation_space="trainables.train:regan_space",
    ablation_stage="final",
    ablation_metrics=(("fid", "min"), ("is_mean", "max"), ("train_flops", "min")),
    ablation_plots="raynas.plots:draw_regan_ablation",
    default_grid=("sparsity=0.1,0.3,0.5", "interval=1,5,10"),
    grid_aliases={"sparsity": "regan.sparsity", "interval": "regan.interval", "g": "regan.interval",
                  "fraction": "data.fraction", "data_ratio": "data.fraction"},
    check="raynas.methods.regan.checks:check_ablation",
    smoke_overrides=("model.gf_dim=8", "model.df_dim=8", "model.latent_dim=12", "train.epochs=2",
                     "train.iters_per_epoch=1", "train.gen_batch_size=4", "train.dis_batch_size=4", "data.limit=64",
                     "eval.num_samples=16", "eval.batch_size=16", "eval.every=0", "regan.warmup=0",
                     "regan.interval=1"),
))
