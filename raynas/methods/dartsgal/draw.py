"""Draw a ``darts-gal`` genotype: every cell of the network as its (pruned) DAG, one panel per cell, top to
bottom; a cell with no kept node is a note that it passes its input through. Uses the darts cell drawer
(:mod:`raynas.spaces.draw_darts`) on Matplotlib's Agg canvas (headless-safe)."""

from __future__ import annotations

from pathlib import Path

from raynas.errors import GenotypeError
from raynas.methods.dartsgal.genotype import DartsGalGenotype
from raynas.spaces.draw import register_drawer
from raynas.spaces.draw_darts import draw_cell, save_png, stack_panels


def _title(g: DartsGalGenotype, i: int) -> str:
    pruned = g.pruned_nodes()[i]
    kind = "reduction" if g.is_reduction(i) else "normal"
    masks = ""
    if g.masks is not None:
        masks = "  masks " + " ".join(f"{v:.2f}" for v in g.masks[i])
    return (f"cell {i} ({kind}): keeps {list(g.kept[i]) or 'no node'}"
            + (f", pruned {list(pruned)}" if pruned else "") + masks)


def draw_dartsgal_genotype(genotype: DartsGalGenotype, png_path: str | Path, *, title: str | None = None,
                           dpi: int = 110) -> Path:
    """Write a PNG with one panel per cell of ``genotype`` (pruned nodes gone); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(genotype, DartsGalGenotype):
        raise GenotypeError(f"draw_dartsgal_genotype needs a darts-gal genotype, got "
                            f"{getattr(genotype, 'space', type(genotype).__name__)!r}")
    g = genotype.validate()
    fig = Figure(dpi=dpi)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(g.layers, 1, i + 1) for i in range(g.layers)]
    extents, notes = [], []
    for i, (ax, cell) in enumerate(zip(axes, g.pruned_cells())):
        if cell is None:
            ax.set_axis_off()
            ax.set_title(_title(g, i), fontsize=10)
            notes.append(ax)
            extents.append((0.0, 0.0, -0.6, 0.6))
            continue
        extents.append(draw_cell(ax, cell, _title(g, i), node_labels=g.kept[i]))  # the original node ids
    x0, x1 = stack_panels(fig, axes, extents, scale=0.7, top=0.6)
    for ax in notes:
        ax.text((x0 + x1) / 2, 0.0, "no node kept: the cell passes its input $c_{k-1}$ through", ha="center",
                va="center", fontsize=10)
    fig.suptitle(title or f"darts-gal: {g.kept_nodes} of {g.total_nodes} nodes kept ({g.source.space} cells, "
                 f"C={g.channels})", fontsize=12)
    return save_png(fig, png_path)


register_drawer("darts-gal", draw_dartsgal_genotype)
