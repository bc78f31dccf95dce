"""Read back what a matplotlib figure shows, so tests check a plot's content (labels, legends, the plotted points)
rather than only that a PNG exists.

``capture_figures(monkeypatch)`` records every figure saved in this process (any module, ``plt`` or bare
``Figure``), keyed by the resolved path it was saved to; ``read_figure(fig)`` gives the same record for a figure
at hand. Figures drawn in other processes (Ray workers) are not seen: re-draw those from the run's files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Series:
    """One plotted series: a line, a scatter's points or an errorbar's data line (``yerr``: its half-widths)."""

    label: str
    xy: np.ndarray
    yerr: np.ndarray | None = None
    ls: str = ""  # a line's style: "-", "--", ":", "-.", or "None" (markers only, no line joining the points)
    color: tuple = ()  # a line's RGBA colour

    @property
    def x(self) -> list[float]:
        return self.xy[:, 0].tolist()

    @property
    def y(self) -> list[float]:
        return self.xy[:, 1].tolist()


@dataclass
class AxesData:
    title: str
    xlabel: str
    ylabel: str
    xscale: str
    xticklabels: list[str]
    yticklabels: list[str]
    legend: list[str]
    lines: list[Series]
    scatters: list[Series]
    errorbars: list[Series]
    texts: list[tuple[str, tuple[float, float]]]  # (text, its data position: an annotation's xy)
    images: list[np.ndarray]
    hlines: list[float] = field(default_factory=list)  # y of every axhline
    vlines: list[float] = field(default_factory=list)  # x of every axvline
    visible: bool = True

    def line(self, label: str) -> Series:
        (s,) = [s for s in self.lines if s.label == label]
        return s

    def text_strings(self) -> list[str]:
        return [t for t, _ in self.texts]


@dataclass
class FigureData:
    axes: list[AxesData]
    legends: list[list[str]]  # each figure-level legend's entries
    suptitle: str
    supxlabel: str
    supylabel: str
    size_inches: tuple[float, float]

    def visible_axes(self) -> list[AxesData]:
        return [a for a in self.axes if a.visible]


def _label(artist) -> str:
    label = artist.get_label()
    return "" if label is None or str(label).startswith("_") else str(label)


def read_axes(ax) -> AxesData:
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.colors import to_rgba
    from matplotlib.container import ErrorbarContainer
    from matplotlib.text import Annotation

    bar_lines, errorbars = set(), []
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer):
            data_line, caps, bars = c.lines
            bar_lines.update(id(x) for x in (data_line, *caps))
            yerr = None
            for col in bars:
                if isinstance(col, LineCollection):
                    yerr = np.array([abs(seg[-1][1] - seg[0][1]) / 2 if len(seg) else np.nan  # NaN: no bar drawn
                                     for seg in col.get_segments()])
            errorbars.append(Series(_label(c), np.asarray(data_line.get_xydata(), dtype=float), yerr,
                                    str(data_line.get_linestyle())))
    lines, hlines, vlines = [], [], []
    for line in ax.get_lines():
        if id(line) in bar_lines:
            continue
        if line.get_transform() == ax.get_yaxis_transform():
            hlines.append(float(line.get_ydata()[0]))
        elif line.get_transform() == ax.get_xaxis_transform():
            vlines.append(float(line.get_xdata()[0]))
        else:
            lines.append(Series(_label(line), np.asarray(line.get_xydata(), dtype=float), None,
                                str(line.get_linestyle()), tuple(to_rgba(line.get_color()))))
    scatters = [Series(_label(c), np.asarray(c.get_offsets(), dtype=float))
                for c in ax.collections if isinstance(c, PathCollection)]
    texts = [(t.get_text(), tuple(float(v) for v in (t.xy if isinstance(t, Annotation) else t.get_position())))
             for t in ax.texts]
    legend = ax.get_legend()
    return AxesData(
        title=ax.get_title(), xlabel=ax.get_xlabel(), ylabel=ax.get_ylabel(), xscale=ax.get_xscale(),
        xticklabels=[t.get_text() for t in ax.get_xticklabels()],
        yticklabels=[t.get_text() for t in ax.get_yticklabels()],
        legend=[t.get_text() for t in legend.get_texts()] if legend else [],
        lines=lines, scatters=scatters, errorbars=errorbars, texts=texts,
        images=[np.asarray(im.get_array(), dtype=float) for im in ax.images], hlines=hlines, vlines=vlines,
        visible=ax.axison)


def read_figure(fig) -> FigureData:
    """What ``fig`` shows, axes by axes (draws it first, so tick labels are the rendered ones)."""
    if fig.canvas is None or not hasattr(fig.canvas, "draw"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()

    def text(t) -> str:
        return t.get_text() if t is not None else ""

    return FigureData(
        axes=[read_axes(ax) for ax in fig.axes],
        legends=[[t.get_text() for t in lg.get_texts()] for lg in fig.legends],
        suptitle=text(getattr(fig, "_suptitle", None)), supxlabel=text(getattr(fig, "_supxlabel", None)),
        supylabel=text(getattr(fig, "_supylabel", None)), size_inches=tuple(fig.get_size_inches()))


def capture_figures(monkeypatch) -> dict[Path, FigureData]:
    """From now on, record every figure saved in this process under the resolved path it was saved to."""
    from matplotlib.figure import Figure

    saved: dict[Path, FigureData] = {}
    original = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        result = original(self, fname, *args, **kwargs)
        saved[Path(fname).resolve()] = read_figure(self)
        return result

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def is_png(path: Path) -> bool:
    """The file is a PNG that decodes (not just a non-empty file)."""
    import matplotlib.image

    image = matplotlib.image.imread(path, format="png")
    return image.ndim == 3 and image.shape[0] > 10 and image.shape[1] > 10
