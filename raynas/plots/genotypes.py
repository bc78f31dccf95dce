"""Diagrams of the genotypes a run saved (``best_G.json`` → ``plots/best_G.png``). Light to import (a method
registers its own genotype files through ``genotype_figure`` at start-up); drawing loads the drawing code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from raynas.plots.registry import ARCHITECTURES, Run, register_run_figure

if TYPE_CHECKING:
    import pandas as pd
#: The genotype files any search may leave in its run directory (a method registers its own beside them).
BEST_GENOTYPES = ("best_G.json", "best_D.json", "best.json")


def draw_genotype_files(run: Run, names: Sequence[str]) -> list[Path | None]:
    """A diagram per genotype file of ``names`` present in the run, named after it in ``plots/``."""
    from raynas.spaces import Genotype
    from raynas.spaces.draw import draw_genotype

    return [draw_genotype(Genotype.load(run.path / name), run.plots_dir / name.replace(".json", ".png"))
            for name in names if (run.path / name).is_file()]


def genotype_figure(name: str, names: Sequence[str], order: int = ARCHITECTURES) -> None:
    """Register the diagrams of a run's genotype files ``names`` as the figure ``name``."""
    def any_saved(run: Run, df: pd.DataFrame) -> bool:
        return any((run.path / n).is_file() for n in names)

    register_run_figure(name, lambda run, df: draw_genotype_files(run, names), any_saved, order=order)


genotype_figure("genotypes", BEST_GENOTYPES)
