"""Re-GAN's settings and schedule: the ``regan`` config section (:class:`ReganConfig`, registered under that name
by :mod:`raynas.methods.regan`) and the phase of every training unit (:class:`ReganSchedule`). Plain Python, no
torch: the GAN trainer and the method registration both read it, and the CLI loads it without torch.

**Schedule** (:class:`ReganSchedule`, a pure function of a unit counter ``u = 0, 1, 2, ...``): ``warmup``
dense units at the base lr, then repeated cycles of ``interval`` (g) *sparse* units at the base lr and g
*dense* units at ``lr * dense_lr_factor``. So warmup 2, g 3 gives ``W W S S S D D D S S S D D D ...``.
The lr returns to the base lr at the first sparse unit of every cycle. What a unit is, the caller decides
and counts (``ReganConfig.unit``):

* ``"epoch"`` -- unit ``u`` is the trainer's epoch ``u`` (0-based), the authors' SNGAN/ProGAN/AutoGAN setting;
* ``"iter"`` -- unit ``u`` is the generator's update number ``u`` (0-based count of G optimiser steps, not
  of D steps: with ``n_critic = 5`` there are 5 D steps per unit), the authors' StyleGAN2 setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from raynas.config import setting
from raynas.errors import ConfigError

__all__ = ["PHASES", "UNITS", "ReganConfig", "ReganSchedule", "check_pattern"]

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
    exclude: tuple[str, ...] | None = setting(
        None, doc="G parameter names never pruned, e.g. *to_rgb*; unset: the generator's own default "
                  "(StyleGAN2: its toRGB layers, as the authors' code; others: none), [] prunes everything")

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
            for pattern in getattr(self, key) or ():
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
