"""Non-dominated filtering over any number of minimised / maximised result columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

_DIRECTIONS = {"min": 1.0, "max": -1.0}


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
    also the order to draw the front as a line. The sorting is ``searchers.nsga2.pareto_ranks``, the
    searcher's own.
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
    from searchers.nsga2 import pareto_ranks  # the one non-dominated sorting (pymoo's)

    front = valid[pareto_ranks(costs[valid]) == 0]
    order = np.lexsort(costs[front].T[::-1])  # best first: the order to draw the front as a line
    return df.iloc[front[order]]


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """Whether point ``a`` dominates ``b`` under the given per-objective directions."""
    sa = np.asarray(a, dtype=np.float64) * [_DIRECTIONS[d] for d in directions]
    sb = np.asarray(b, dtype=np.float64) * [_DIRECTIONS[d] for d in directions]
    return bool((sa <= sb).all() and (sa < sb).any())
