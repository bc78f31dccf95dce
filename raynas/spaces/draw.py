"""Draw a genotype's cells as a PNG graph (nodes as circles, edges labelled by op).

Generic over spaces: a space that can be drawn implements ``edge_list(genotype)`` returning
``(source label, destination label, op name)`` for every edge, with node labels unique across the
whole network (``"c1.n2"``; a label ``"c<i>.*"`` puts the node in cell ``i``'s colour). Nodes are
placed in columns by their longest distance from an input, so the picture reads left to right.
``none`` edges are drawn dashed and unlabelled. Matplotlib is used through its Agg canvas directly
(no pyplot, no global backend switch), so it works headless and in worker processes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from raynas.errors import GenotypeError
from raynas.spaces.genotype import Genotype, get_space

_CELL = re.compile(r"^c(\d+)\.")
_COLOURS = ("#cfe2f3", "#d9ead3", "#fce5cd", "#ead1dc", "#fff2cc", "#d0e0e3")


def _columns(edges: list[tuple[str, str, str]]) -> dict[str, int]:
    """Longest-path depth of every node (edges form a DAG)."""
    nodes: list[str] = []
    preds: dict[str, list[str]] = defaultdict(list)
    for s, d, _ in edges:
        for n in (s, d):
            if n not in nodes:
                nodes.append(n)
        preds[d].append(s)
    depth: dict[str, int] = {}

    def visit(n: str, stack: tuple[str, ...] = ()) -> int:
        if n in stack:
            raise GenotypeError(f"edge list has a cycle through {n!r}; cannot draw it")
        if n not in depth:
            depth[n] = 1 + max((visit(p, (*stack, n)) for p in preds[n]), default=-1)
        return depth[n]

    for n in nodes:
        visit(n)
    return {n: depth[n] for n in nodes}


_DRAWERS: dict[str, Any] = {}
BUILTIN_DRAWERS = ("raynas.spaces.draw_darts", "raynas.spaces.swd", "raynas.methods.dartsgal.draw")


def register_drawer(space: str, draw: Any) -> None:
    """``draw(genotype, path, title=None)`` for a genotype format that is not cell groups (classifier cells)."""
    _DRAWERS[space] = draw


def draw_genotype(genotype: Genotype, path: str | Path, *, title: str | None = None, dpi: int = 120,
                  **edge_options: Any) -> Path:
    """Write a PNG diagram of ``genotype`` to ``path`` and return the path.

    ``edge_options`` go to the space's ``edge_list`` (e.g. ``downsample=(True, True, False)`` for
    ``eagan-d``, whose drawing depends on which cells down-sample).
    """
    if genotype.space not in _DRAWERS:
        import importlib

        for module in BUILTIN_DRAWERS:
            importlib.import_module(module)
    if genotype.space in _DRAWERS:
        return Path(_DRAWERS[genotype.space](genotype, path, title=title))
    fig = render_cells(genotype, title=title, dpi=dpi, **edge_options)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight")
    return out


def render_cells(genotype: Genotype, *, title: str | None = None, dpi: int = 120, **edge_options: Any):
    """The matplotlib Figure of a cell-group genotype (``draw_genotype`` saves it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyArrowPatch

    space = get_space(genotype.space)
    if not hasattr(space, "edge_list"):
        raise GenotypeError(f"space {genotype.space!r} cannot be drawn: it defines no edge_list()")
    edges = [(str(s), str(d), str(op)) for s, d, op in space.edge_list(genotype, **edge_options)]
    if not edges:
        raise GenotypeError(f"genotype of {genotype.space!r} has no edges to draw")
    col = _columns(edges)
    by_col: dict[int, list[str]] = defaultdict(list)
    for n, c in col.items():
        by_col[c].append(n)
    pos: dict[str, tuple[float, float]] = {}
    tallest = max(len(v) for v in by_col.values())
    for c, ns in by_col.items():
        for k, n in enumerate(ns):
            pos[n] = (c * 2.2, (len(ns) - 1) / 2 - k * 1.3)

    n_cols = max(by_col) + 1
    fig = Figure(figsize=(max(6.0, 1.9 * n_cols), max(3.0, 1.2 * tallest + 1.2)), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    radius = 0.32
    extents: list[tuple[float, float]] = []  # curve midpoints: long arcs bulge beyond the nodes
    for s, d, op in edges:
        (x1, y1), (x2, y2) = pos[s], pos[d]
        span = col[d] - col[s]
        # edges that skip a column bend away from the centre line, around the nodes they pass
        rad = 0.0 if span <= 1 else (-0.3 if (y1 + y2) / 2 > 0.01 else 0.3)
        dashed = op == "none"
        arrow = FancyArrowPatch((x1, y1), (x2, y2), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                mutation_scale=10, shrinkA=13, shrinkB=13, lw=0.8 if dashed else 1.2,
                                linestyle="--" if dashed else "-", color="#aaaaaa" if dashed else "#333333",
                                zorder=1)
        ax.add_patch(arrow)
        # midpoint of the quadratic Bézier that arc3 draws
        mx, my = (x1 + x2) / 2 + rad * (y2 - y1) / 2, (y1 + y2) / 2 - rad * (x2 - x1) / 2
        extents.append((mx, my))
        if not dashed:
            ax.text(mx, my, op, fontsize=6.5, ha="center", va="center", zorder=3,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    for n, (x, y) in pos.items():
        m = _CELL.match(n)
        colour = _COLOURS[int(m[1]) % len(_COLOURS)] if m else "#eeeeee"
        ax.add_patch(Circle((x, y), radius, fc=colour, ec="#333333", lw=1.0, zorder=4))
        ax.text(x, y, n, fontsize=6, ha="center", va="center", zorder=5)
    xs = [p[0] for p in [*pos.values(), *extents]]
    ys = [p[1] for p in [*pos.values(), *extents]]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.9, max(ys) + 0.9)  # room for every arc and its label: nothing is clipped
    ax.set_aspect("equal")
    ax.set_title(title or f"{genotype.space} genotype", fontsize=10, pad=12)
    return fig

