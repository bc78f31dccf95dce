"""SWD-NAS's ablation plots beyond the generic grid plot: the paper reports the best of its seeds per grid
point (Fig. 4: accuracy and search time per k, best of 3 searches), so every ``raynas ablate swd-nas`` grid
also draws ``best_of_seeds_<axes>.png`` (``raynas.plots.draw_best_of_seeds``)."""

from __future__ import annotations

from pathlib import Path

_TITLES = {("k",): "Fig. 4: accuracy and search cost per k (best of seeds)",
           ("ua_pool", "la_pool"): "Table III: UA / LA pooling (best of seeds)",
           ("la_pool", "ua_pool"): "Table III: UA / LA pooling (best of seeds)",
           ("ua", "awn"): "Table IV: UA and AWN, LA on (best of seeds)",
           ("awn", "ua"): "Table IV: UA and AWN, LA on (best of seeds)",
           ("layers",): "Fig. 8: search depth (best of seeds)"}


def ablation_plots(cells, means, axes: list[str], plots_dir: Path) -> list[Path]:
    from raynas.plots import draw_best_of_seeds

    name = "best_of_seeds_" + "_".join(axes)
    out = draw_best_of_seeds(cells, list(axes), Path(plots_dir) / f"{name}.png",
                             title=_TITLES.get(tuple(axes), ""))
    return [out] if out is not None else []
