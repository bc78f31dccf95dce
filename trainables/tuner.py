"""raynas inside your own ``ray.tune.Tuner``.

The trainables take a plain config: the usual ``--set`` keys as a flat dict plus ``preset`` (and ``method``
for a search), e.g. ``{"preset": "quickstart", "train.epochs": 3, "train.lr_g": tune.grid_search([1e-4,
2e-4])}``; each experiment gets its own raynas run (``EXPERIMENT/raynas``: config.yaml, run.json and one
Parquet results table for all its trials). A user mistake inside a trial ends it ERRORED with raynas's
message in ``result.error``.

    from ray import tune
    from trainables.tuner import pareto_table, train_fixed

    grid = tune.Tuner(train_fixed, param_space={"preset": "quickstart", "train.lr_g": tune.grid_search([1e-4,
                                                                                                         2e-4])})
    results = grid.fit()
    print(pareto_table(results, {"fid": "min", "params": "min"}))

``examples/user_tuner.py`` runs a complete example.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from raynas.results import RunDir, pareto_front
from trainables.fixed_trial import train_fixed
from trainables.grid_cell import ablation_cell
from trainables.search_trial import search_trial

__all__ = ["ablation_cell", "experiment_run", "pareto_table", "search_trial", "train_fixed"]


def experiment_run(results_or_path: Any) -> RunDir:
    """The raynas run of a Tune experiment: from a ResultGrid, or the experiment's path/URI."""
    path = getattr(results_or_path, "experiment_path", None) or os.fspath(results_or_path)
    return RunDir.open(f"{str(path).rstrip('/')}/raynas")


def pareto_table(source: Any, objectives: Mapping[str, str] | Sequence[tuple[str, str]],
                 *, last_only: bool = True) -> pd.DataFrame:
    """The Pareto front of a Tune run as a table (``raynas.results.pareto_front``).

    ``source`` is a ``ResultGrid`` (one row per trial: its last reported metrics and its ``config/…``
    columns), a raynas run (a ``RunDir``, or its folder/URI: every result row, or each candidate's last row
    with ``last_only``), or a DataFrame. ``objectives`` maps columns to ``min``/``max``, e.g.
    ``{"fid": "min", "params": "min"}``; rows missing an objective are left out."""
    if isinstance(source, pd.DataFrame):
        df = source
    elif hasattr(source, "get_dataframe"):  # a ray.tune.ResultGrid
        df = source.get_dataframe()
        if "trial_id" in df:
            df = df.set_index("trial_id", drop=False)
    else:
        run = source if isinstance(source, RunDir) else RunDir.open(os.fspath(source))
        df = run.read()
        if last_only and not df.empty and df["candidate_id"].notna().any():
            order = [c for c in ("round", "epoch") if c in df and df[c].notna().any()]
            df = (df.sort_values(order) if order else df).groupby("candidate_id", sort=False).tail(1)
    return pareto_front(df, objectives)
