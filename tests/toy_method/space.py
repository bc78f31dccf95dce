"""The ``toy`` genotype space: one cell of two edges in sequence, each choosing one of three ops; and its figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raynas.spaces.draw import register_drawer
from raynas.spaces.genotype import EdgeGroup, Genotype, SearchSpace, register_space

SPACE_NAME = "toy"
OPS = ("conv_1x1", "avg_pool", "skip")
EDGES = 2


class ToySpace(SearchSpace):
    name = SPACE_NAME
    layout = ((EdgeGroup("edge", EDGES, OPS),),)
    role = "classifier"
    network_module = f"{__package__}.network"  # the torch parts, imported when a network is first built


def draw_toy(genotype: Genotype, path: str | Path, title: str | None = None) -> Path:
    """The chosen op of each edge as a labelled box, left to right (Matplotlib's Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ops: Any = genotype.cells[0]["edge"]
    fig = Figure(figsize=(1.8 * (len(ops) + 2), 1.6))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 0.8))
    ax.set_axis_off()
    labels = ["input", *ops, "output"]
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylim(-1, 1)
    for i, label in enumerate(labels):
        ax.text(i, 0, label, ha="center", va="center", bbox={"boxstyle": "round", "fc": "#d9ead3"})
        if i:
            ax.annotate("", (i - 0.35, 0), (i - 0.65, 0), arrowprops={"arrowstyle": "->"})
    fig.suptitle(title or f"{genotype.space} genotype")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


register_space(ToySpace())
register_drawer(SPACE_NAME, draw_toy)
