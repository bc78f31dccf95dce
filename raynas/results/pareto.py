"""Pareto fronts over any number of minimised / maximised objectives: the one non-dominated sorting
(``pareto_ranks``, which NSGA-II's searcher uses too), the front of a results table, dominance and the
hypervolume of a front. Plain numpy and pymoo (loaded when first needed: ``raynas.results`` stays light),
no searcher state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from raynas.errors import ConfigError

_DIRECTIONS = {"min": 1.0, "max": -1.0}


def pareto_ranks(F: np.ndarray) -> np.ndarray:
    """Non-dominated rank (0 = Pareto front) of each row of ``F``; every column is minimised."""
    F = np.asarray(F, dtype=float)
    if F.ndim != 2:
        raise ValueError(f"pareto_ranks expects a 2-D array (points x objectives), got shape {F.shape}")
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    if np.isnan(F).any():
        raise ValueError("pareto_ranks got NaN objective values; replace them by a worst value first")
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    _, rank = NonDominatedSorting().do(F, return_rank=True)
    return np.asarray(rank, dtype=int)


def objective_signs(directions: Sequence[str]) -> np.ndarray:
    """+1 for a minimised objective, -1 for a maximised one: multiply to minimise every column."""
    bad = [d for d in directions if d not in ("min", "max")]
    if bad:
        raise ConfigError(f"objective directions must be 'min' or 'max', got {bad}")
    return np.array([1.0 if d == "min" else -1.0 for d in directions])


def hypervolume(points: Any, ref: Sequence[float], directions: Sequence[str]) -> float:
    """Hypervolume dominated by ``points`` w.r.t. ``ref``, all in natural units (``directions`` says
    which objectives are maximised). Points that do not strictly beat ``ref`` on every objective, or
    hold non-finite values, add nothing."""
    sign = objective_signs(directions)
    P = np.asarray(points, dtype=float).reshape(-1, len(sign))
    r = np.asarray(ref, dtype=float).reshape(-1)
    if r.shape != sign.shape:
        raise ValueError(f"reference point has {r.size} values, expected {sign.size}")
    pts, ref_min = P * sign, r * sign
    keep = np.isfinite(pts).all(axis=1) & (pts < ref_min).all(axis=1)
    if not keep.any():
        return 0.0
    from pymoo.indicators.hv import HV

    return float(HV(ref_point=ref_min).do(pts[keep]))


def _normalise(objectives: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    items = list(objectives.items()) if isinstance(objectives, Mapping) else [tuple(o) for o in objectives]
    if not items:
        raise ValueError("pareto_front needs at least one objective, e.g. {'fid': 'min', 'params': 'min'}")
    for col, direction in items:
        if direction not in _DIRECTIONS:
            raise ValueError(f"Objective {col!r} has direction {direction!r}; use 'min' or 'max'")
    return items


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str] | Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Rows of ``df`` that no other row dominates; rows with NaN in an objective are dropped.

    Row j dominates row i when it is at least as good in every objective and strictly better in
    one; exact duplicates do not dominate each other, so all copies of a front point are kept.
    The result keeps the original index and is sorted by the objectives (best first), which is
    also the order to draw the front as a line. The sorting is ``pareto_ranks``, the searcher's own.
    """
    items = _normalise(objectives)
    cols = [c for c, _ in items]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"Objective column(s) {missing} not in the results; available: {list(df.columns)}")
    try:
        values = df[cols].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Objective columns {cols} must be numeric: {e}") from e
    signs = np.array([_DIRECTIONS[d] for _, d in items])
    costs = values * signs  # every objective minimised from here on
    valid = np.flatnonzero(~np.isnan(costs).any(axis=1))
    if valid.size == 0:
        return df.iloc[0:0]
    front = valid[pareto_ranks(costs[valid]) == 0]
    order = np.lexsort(costs[front].T[::-1])  # best first: the order to draw the front as a line
    return df.iloc[front[order]]


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether point ``a`` dominates ``b`` under the given per-objective directions."""
    sa = np.asarray(a, dtype=np.float64) * [_DIRECTIONS[d] for d in directions]
    sb = np.asarray(b, dtype=np.float64) * [_DIRECTIONS[d] for d in directions]
    return bool((sa <= sb).all() and (sa < sb).any())
