"""The comparison's figure (``raynas compare``): the final metric of every (method, seed) trial as a strip over
a box per method, drawn again by ``raynas report`` for a comparison run. Registers itself on import."""

from __future__ import annotations

from raynas.plots.registry import ABLATIONS, register_run_figure


def _applies(run, df) -> bool:
    from raynas.results.compare import COMPARE_TABLE

    return (run.path / COMPARE_TABLE).is_file()


def _draw(run, df):
    from raynas.results.compare import draw_comparison, load_comparison

    table, spec = load_comparison(run.path)
    return draw_comparison(table, spec["metric"], run.plots_dir / "methods.png", baseline=spec.get("baseline"))


register_run_figure("compare", _draw, _applies, order=ABLATIONS)
