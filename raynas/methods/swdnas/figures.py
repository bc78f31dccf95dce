"""SWD-NAS's part in a run's figures: the names of α's columns in the ``swd-nas`` space (every edge of every
cell chooses among DARTS' primitives), so ``alpha.png`` labels each line with its op. Registers itself on
import (its ablation's best-of-seeds figure is ``ablation.ablation_plots``)."""

from __future__ import annotations

from raynas.plots.registry import register_alpha_ops
from raynas.spaces.darts import PRIMITIVES
from raynas.spaces.swd import SPACE

register_alpha_ops(SPACE, PRIMITIVES)
