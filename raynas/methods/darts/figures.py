"""DARTS' part in a run's figures: the names of α's columns in the ``darts`` space (every edge chooses among
DARTS' primitives), so ``alpha.png`` labels each line with its op. Registers itself on import."""

from __future__ import annotations

from raynas.plots.registry import register_alpha_ops
from raynas.spaces.darts import PRIMITIVES, SPACE

register_alpha_ops(SPACE, PRIMITIVES)
