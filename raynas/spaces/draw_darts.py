"""Draw a darts genotype's normal and reduction cells as DAGs (one PNG, one panel per cell; ``draw_cell_panels``
draws any list of DARTS cells, e.g. SWD-NAS's five).

Inputs ``c_{k-2}`` and ``c_{k-1}`` on the left, each intermediate node in the column of its longest path
from an input, the output ``c_{k}`` on the right. Every op edge is labelled just before its destination
node (a node has exactly two incoming op edges; their labels are kept apart), edges bend around nodes
they would cross, and edges into the output are grey. Uses Matplotlib's Agg canvas directly (no pyplot,
headless-safe), like :mod:`raynas.spaces.draw`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from raynas.errors import GenotypeError
from raynas.spaces.darts import CellGenotype, DartsGenotype
from raynas.spaces.draw import register_drawer

_INPUT, _NODE, _OUTPUT = "#f4cccc", "#cfe2f3", "#d9ead3"
_COL = 3.0  # data units between node columns
_ROW = 1.7  # and between the nodes of a column
_RADIUS = 0.42
_LABEL_DX = 1.1  # horizontal distance of an edge label's centre before its destination node


def _bezier(p1: tuple[float, float], c: tuple[float, float], p2: tuple[float, float], t: float) -> tuple[float, float]:
    a, b, d = (1 - t) ** 2, 2 * (1 - t) * t, t ** 2
    return a * p1[0] + b * c[0] + d * p2[0], a * p1[1] + b * c[1] + d * p2[1]


def _positions(cell: CellGenotype) -> dict[int | str, tuple[float, float]]:
    """Inputs in column 0, each node in the column of its longest path from an input, the output last."""
    depth = {0: 0, 1: 0}
    for i in range(cell.steps):
        depth[i + 2] = 1 + max(depth[j] for _, j in cell.node_inputs(i))
    columns: dict[int, list[int]] = {}
    for state, d in depth.items():
        columns.setdefault(d, []).append(state)
    pos: dict[int | str, tuple[float, float]] = {}
    for d, states in columns.items():
        for k, state in enumerate(states):
            pos[state] = (d * _COL, ((len(states) - 1) / 2 - k) * _ROW)
    pos["out"] = ((max(columns) + 1) * _COL, 0.0)
    return pos


def _clear(p1: tuple[float, float], p2: tuple[float, float], rad: float, others: list[tuple[float, float]]) -> bool:
    """Whether the arc3 curve from p1 to p2 with ``rad`` stays clear of the nodes at ``others``."""
    control = ((p1[0] + p2[0]) / 2 + rad * (p2[1] - p1[1]), (p1[1] + p2[1]) / 2 - rad * (p2[0] - p1[0]))
    points = [_bezier(p1, control, p2, k / 40) for k in range(41)]
    return all((x - ox) ** 2 + (y - oy) ** 2 > (_RADIUS + 0.2) ** 2 for x, y in points for ox, oy in others)


def _y_range(curve: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    ys = [_bezier(*curve, k / 40)[1] for k in range(41)]
    return min(ys), max(ys)


def _x_to_t(curve: tuple[tuple[float, float], ...], x: float) -> float:
    """The Bézier parameter where the (left-to-right) curve reaches ``x``."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _bezier(*curve, mid)[0] < x else (lo, mid)
    return (lo + hi) / 2


def draw_cell(ax: Any, cell: CellGenotype, title: str, node_labels: Sequence[int] | None = None
              ) -> tuple[float, float, float, float]:
    """Draw one cell; returns its data extent (x0, x1, y0, y1). ``node_labels`` names the intermediate nodes
    (default 0..steps-1; a pruned cell passes the original ids of the nodes it kept)."""
    from matplotlib.patches import Circle, FancyArrowPatch

    pos = _positions(cell)
    circles = {}
    for key, (x, y) in pos.items():
        if key == "out":
            label, colour = "$c_{k}$", _OUTPUT
        elif key in (0, 1):
            label, colour = ("$c_{k-2}$", "$c_{k-1}$")[key], _INPUT
        else:
            label, colour = str(node_labels[key - 2] if node_labels is not None else key - 2), _NODE
        circles[key] = Circle((x, y), _RADIUS, fc=colour, ec="#333333", lw=1.0, zorder=4)
        ax.add_patch(circles[key])
        ax.text(x, y, label, fontsize=10, ha="center", va="center", zorder=5)

    def edge(src: int | str, dst: int | str, rad: float, **style: Any) -> tuple[tuple[float, float], ...]:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                     mutation_scale=11, patchA=circles[src], patchB=circles[dst], zorder=1, **style))
        control = ((x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1))
        return (x1, y1), control, (x2, y2)

    def bend(src: int | str, dst: int | str) -> float:
        """The least bend (away from the centre line first) that keeps the edge clear of every other node."""
        away = -1.0 if pos[src][1] + pos[dst][1] >= 0 else 1.0
        others = [p for key, p in pos.items() if key not in (src, dst)]
        candidates = (0.0, *(m * sign * away for m in (0.3, 0.45, 0.6, 0.8) for sign in (1, -1)))
        return next((r for r in candidates if _clear(pos[src], pos[dst], r, others)), 0.0)

    ys = [y for _, y in pos.values()]
    for i in range(cell.steps):
        dst = i + 2
        (op_a, a), (op_b, b) = cell.node_inputs(i)
        labels = []
        for k, (op, src) in enumerate(((op_a, a), (op_b, b))):
            rad = (-0.3, 0.3)[k] if a == b else bend(src, dst)  # the same input twice: bend the two apart
            dashed = op == "none"
            curve = edge(src, dst, rad, lw=0.9 if dashed else 1.3, linestyle="--" if dashed else "-",
                         color="#999999" if dashed else "#333333")
            # the label sits just left of its destination node, so each node's two labels stay by it
            lx, ly = _bezier(*curve, _x_to_t(curve, pos[dst][0] - _LABEL_DX))
            labels.append([lx, ly, op])
            ys.extend(_y_range(curve))
        # keep a node's two labels apart vertically
        (ax_, ay, _), (bx, by, _) = labels
        if abs(ax_ - bx) < 1.3 and abs(ay - by) < 0.32:
            lo, hi = (0, 1) if ay <= by else (1, 0)
            mid = (ay + by) / 2
            labels[lo][1], labels[hi][1] = mid - 0.17, mid + 0.17
        for lx, ly, op in labels:
            ax.text(lx, ly, op, fontsize=8, ha="center", va="center", zorder=3,
                    bbox={"boxstyle": "round,pad=0.18", "fc": "white", "ec": "#bbbbbb", "lw": 0.5, "alpha": 0.95})
    for c in cell.concat:
        ys.extend(_y_range(edge(c, "out", bend(c, "out"), lw=0.9, color="#9a9a9a")))
    ax.set_axis_off()
    ax.set_title(title, fontsize=11)
    xs = [x for x, _ in pos.values()]
    return min(xs) - 0.7, max(xs) + 0.7, min(ys) - 0.7, max(ys) + 0.7


def draw_darts_genotype(genotype: DartsGenotype, png_path: str | Path, *, title: str | None = None,
                        dpi: int = 130) -> Path:
    """Write a PNG with the normal (top) and reduction (bottom) cell of ``genotype``; returns the path."""
    if not isinstance(genotype, DartsGenotype):
        raise GenotypeError(f"draw_darts_genotype needs a darts genotype, got one for space "
                            f"{getattr(genotype, 'space', type(genotype).__name__)!r}")
    genotype.validate()
    return draw_cell_panels([(genotype.normal, "normal cell"), (genotype.reduce, "reduction cell")], png_path,
                            title=title, dpi=dpi)


def draw_cell_panels(panels: Sequence[tuple[CellGenotype, str]], png_path: str | Path, *, title: str | None = None,
                     dpi: int = 130) -> Path:
    """Write a PNG with one panel per ``(cell, panel title)``, top to bottom; returns the path (any space whose
    genotype is a list of DARTS cells: darts, swd-nas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(dpi=dpi)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(len(panels), 1, k + 1) for k in range(len(panels))]
    extents = [draw_cell(ax, cell, name) for ax, (cell, name) in zip(axes, panels)]
    stack_panels(fig, axes, extents, scale=0.8, top=0.4 if title else 0.1)
    if title:
        fig.suptitle(title, fontsize=12)
    return save_png(fig, png_path)


def stack_panels(fig: Any, axes: Sequence[Any], extents: Sequence[tuple[float, float, float, float]], *,
                 scale: float, top: float, title_space: float = 0.45) -> tuple[float, float]:
    """Size ``fig`` and place its cell panels top to bottom at one scale (inches per data unit), so nodes and
    labels look the same in every panel and each panel gets exactly its own height; returns the shared x range."""
    x0, x1 = min(e[0] for e in extents), max(e[1] for e in extents)
    width = scale * (x1 - x0) + 0.4
    height = top + len(axes) * title_space + scale * sum(e[3] - e[2] for e in extents) + 0.1
    fig.set_size_inches(width, height)
    y = height - top
    for ax, (_, _, y0, y1) in zip(axes, extents):
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        y -= title_space + scale * (y1 - y0)
        ax.set_position([0.2 / width, y / height, scale * (x1 - x0) / width, scale * (y1 - y0) / height])
    return x0, x1


def save_png(fig: Any, png_path: str | Path) -> Path:
    out = Path(png_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", bbox_inches="tight", pad_inches=0.15)
    return out


register_drawer("darts", draw_darts_genotype)
