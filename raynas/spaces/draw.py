"""Draw a genotype's cells as a PNG graph (nodes as circles, edges labelled by op).

Generic over spaces: a space that can be drawn implements ``edge_list(genotype)`` returning
``(source label, destination label, op name)`` for every edge, with node labels unique across the
whole network (``"c1.n2"``; a label ``"c<i>.*"`` puts the node in cell ``i``'s colour). Nodes are
placed in columns by their longest distance from an input, so the picture reads left to right.
``none`` edges are drawn dashed grey and unlabelled; dead edges (whose output never reaches the network's
output, ``dead_edges``) dotted red with a grey label; a legend says which is which. Fonts scale with the
figure, and edge labels slide along their edge so that no two collide. Matplotlib is used through its Agg
canvas directly (no pyplot, no global backend switch), so it works headless and in worker processes.
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
        from raynas.plugins import load_plugins  # the core's registered with raynas.spaces

        load_plugins()
    if genotype.space in _DRAWERS:
        return Path(_DRAWERS[genotype.space](genotype, path, title=title))
    fig = render_cells(genotype, title=title, dpi=dpi, **edge_options)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight")
    return out


_IPU = 0.85  # inches per data unit: node spacing on paper
_NONE_STYLE = {"linestyle": "--", "color": "#aaaaaa", "lw": 0.8}
_DEAD_STYLE = {"linestyle": ":", "color": "#c0504d", "lw": 1.2}
_LIVE_STYLE = {"linestyle": "-", "color": "#333333", "lw": 1.2}


def dead_edges(edges: list[tuple[str, str, str]]) -> set[int]:
    """Indices of the op edges (not ``none``) whose output never reaches the network's output (the node(s) in the
    last column) through op edges: what they compute is thrown away."""
    col = _columns(edges)
    last = max(col.values())
    reaches = {n for n, c in col.items() if c == last}
    changed = True
    while changed:
        changed = False
        for s, d, op in edges:
            if op != "none" and d in reaches and s not in reaches:
                reaches.add(s)
                changed = True
    return {i for i, (_, d, op) in enumerate(edges) if op != "none" and d not in reaches}


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Overlapping area of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def render_cells(genotype: Genotype, *, title: str | None = None, dpi: int = 120, **edge_options: Any):
    """The matplotlib Figure of a cell-group genotype (``draw_genotype`` saves it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
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
    for c, ns in by_col.items():
        for k, n in enumerate(ns):
            pos[n] = (c * 2.2, (len(ns) - 1) / 2 - k * 1.3)
    dead = dead_edges(edges)

    # every edge's curve (arc3: a quadratic Bézier) first, so the figure can be sized to what is drawn
    curves = []
    for s, d, _ in edges:
        (x1, y1), (x2, y2) = pos[s], pos[d]
        # edges that skip a column bend away from the centre line, around the nodes they pass
        rad = 0.0 if col[d] - col[s] <= 1 else (-0.3 if (y1 + y2) / 2 > 0.01 else 0.3)
        control = ((x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1))
        curves.append((rad, (x1, y1), control, (x2, y2)))

    def at(curve, t: float) -> tuple[float, float]:
        _, p1, c, p2 = curve
        a, b, e = (1 - t) ** 2, 2 * (1 - t) * t, t ** 2
        return a * p1[0] + b * c[0] + e * p2[0], a * p1[1] + b * c[1] + e * p2[1]

    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()] + [at(c, 0.5)[1] for c in curves]
    x0, x1, y0, y1 = min(xs) - 0.8, max(xs) + 0.8, min(ys) - 0.9, max(ys) + 0.9
    width = max(6.0, _IPU * (x1 - x0))
    legend_h, title_h = 0.5, 0.6
    height = _IPU * (y1 - y0) + legend_h + title_h
    # fonts grow with the figure (a wide network is looked at shrunk to fit a screen) and nodes grow to fit them
    node_fs = min(14.0, max(8.0, 0.6 * width))
    edge_fs = 0.85 * node_fs
    longest = max(len(n) for n in pos)
    radius = max(0.32, 0.62 * node_fs * longest * 0.62 / 72 / _IPU)

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, legend_h / height, 1.0, _IPU * (y1 - y0) / height))
    ax.set_axis_off()
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)  # room for every arc and its label: nothing is clipped
    ax.set_aspect("equal", adjustable="datalim")

    shrink = radius * _IPU * 72 + 1  # points: arrows end at the circle
    occupied = [(x - radius, y - radius, x + radius, y + radius) for x, y in pos.values()]
    order = sorted(range(len(edges)), key=lambda i: abs(curves[i][0]))  # straight edges first: fewer choices
    label_at: dict[int, tuple[float, float]] = {}
    for i in order:
        s, d, op = edges[i]
        if op == "none":
            continue
        w = len(op) * edge_fs * 0.6 / 72 / _IPU + 0.1
        h = edge_fs * 1.45 / 72 / _IPU
        best = None
        for t in (0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75, 0.45, 0.55):
            x, y = at(curves[i], t)
            box = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
            cost = sum(_overlap(box, o) for o in occupied)
            if best is None or cost < best[0] - 1e-9:
                best = (cost, (x, y), box)
            if cost == 0:
                break
        label_at[i] = best[1]
        occupied.append(best[2])
    for i, ((_, _, op), curve) in enumerate(zip(edges, curves)):
        style = _NONE_STYLE if op == "none" else _DEAD_STYLE if i in dead else _LIVE_STYLE
        ax.add_patch(FancyArrowPatch(curve[1], curve[3], connectionstyle=f"arc3,rad={curve[0]}", arrowstyle="-|>",
                                     mutation_scale=10 + node_fs / 3, shrinkA=shrink, shrinkB=shrink, zorder=1,
                                     **style))
        if i in label_at:
            ax.text(*label_at[i], op, fontsize=edge_fs, ha="center", va="center", zorder=3,
                    color="#888888" if i in dead else "black",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9})
    for n, (x, y) in pos.items():
        m = _CELL.match(n)
        colour = _COLOURS[int(m[1]) % len(_COLOURS)] if m else "#eeeeee"
        ax.add_patch(Circle((x, y), radius, fc=colour, ec="#333333", lw=1.0, zorder=4))
        ax.text(x, y, n, fontsize=node_fs, ha="center", va="center", zorder=5)
    ops = {op for _, _, op in edges}
    handles, names = [Line2D([], [], **_LIVE_STYLE)], ["op edge (labelled with its op)"]
    if "none" in ops:
        handles.append(Line2D([], [], **_NONE_STYLE))
        names.append("none: no connection")
    if dead:
        handles.append(Line2D([], [], **_DEAD_STYLE))
        names.append("dead: its output never reaches the network's output")
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=edge_fs, frameon=False)
    ax.set_title(title or f"{genotype.space} genotype", fontsize=node_fs + 2, pad=8)
    return fig
