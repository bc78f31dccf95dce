"""``summary.json``: what a finished run found, in one small file every method leaves the same way.

One writer for every method (the CLI calls it when a run ends; EAGAN's driver for each grid cell), so a reader
(``raynas runs``, a notebook, a script comparing runs) finds in one place: the best result and the metric that
picked it, the genotype file of the found network, its scores with the protocol that measured them (split,
number of images, extractor), and what the run cost (wall seconds, epochs or rounds, GPU-seconds when known).
Every path in it is where the user stored the run (the URI for a URI run), never a staging copy.

The top-level keys ``run``, ``results`` and one per output file (``best_G.json``, ...) are kept as EAGAN's first
``summary.json`` had them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from raynas.results.provenance import plain

SUMMARY_FILE = "summary.json"
FORMAT = 1

# scores a summary reports of the best row, when the row has them (the rank metric always)
_SCORES = ("is_mean", "is_std", "fid", "kid_mean", "kid_std", "test_acc", "test_top5", "val_acc", "train_acc",
           "params", "flops", "kept_nodes", "pruned_fraction")
# what each task's best result is picked by, in order of preference: the first the rows have
RANKS = {"gan": (("fid", "min"), ("is_mean", "max")), "classify": (("test_acc", "max"), ("val_acc", "max"))}
_ACC_SPLITS = {"test_acc": "the dataset's test split",
               "val_acc": "the held-out part of the training split (1 - data.train_portion) in a search; the test "
                          "split in fixed training",
               "train_acc": "the training batches, as trained"}


def _number(v: Any) -> Any:
    """A JSON-safe value: NaN/None → None, numpy scalars → Python."""
    v = plain(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _col(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce") if col in df else pd.Series(math.nan, index=df.index)


def task_of(config: Mapping[str, Any], df: pd.DataFrame) -> str:
    """``gan`` or ``classify``: the config's task, else what the result rows measured."""
    task = config.get("task")
    if task in RANKS:
        return str(task)
    return "classify" if any(_col(df, c).notna().any() for c in ("test_acc", "val_acc")) else "gan"


def rank_metric(task: str, df: pd.DataFrame) -> tuple[str, str] | None:
    """(column, min|max) that picks the best row: the task's first metric the rows hold (None: no scores yet)."""
    for col, direction in RANKS.get(task, ()):
        if _col(df, col).notna().any():
            return col, direction
    return None


def best_row(df: pd.DataFrame, metric: tuple[str, str]) -> pd.Series | None:
    """The best row by ``metric``: among a run's ``final`` rows (a pipeline's result, a grid cell's outcome) when it
    has them, else among the rows a search marked ``best`` (EAGAN's pick of each round), else among all."""
    col, direction = metric
    scored = df[_col(df, col).notna()]
    if "stage" in scored and (scored["stage"] == "final").any():
        scored = scored[scored["stage"] == "final"]
    elif "best" in scored and scored["best"].fillna(False).astype(bool).any():  # a population search's picks
        scored = scored[scored["best"].fillna(False).astype(bool)]
    if scored.empty:
        return None
    values = _col(scored, col)
    return scored.loc[values.idxmin() if direction == "min" else values.idxmax()]


def protocol(task: str, config: Mapping[str, Any], row: pd.Series | None) -> dict[str, Any]:
    """How the reported scores were measured: the split and image count of IS/FID/KID, the split of accuracy."""
    data = config.get("data") or {}
    out: dict[str, Any] = {"dataset": data.get("name")}
    if task == "gan":
        ev = config.get("eval") or {}
        name = ev.get("protocol") or "search"
        samples = _number(row.get("num_samples")) if row is not None else None
        if not samples:
            samples = ev.get("num_samples") or None
        if not samples:
            from raynas.metrics.protocols import PROTOCOLS

            samples = PROTOCOLS[name].num_samples if name in PROTOCOLS else None
        extractor = row.get("extractor") if row is not None else None
        out.update(metrics=list(ev.get("metrics") or ()), protocol=name, num_samples=samples,
                   extractor=_number(extractor) if isinstance(extractor, str) else ev.get("extractor"),
                   real_split=ev.get("real_split"), final_protocol=ev.get("final_protocol"))
        return out
    out["splits"] = {k: v for k, v in _ACC_SPLITS.items() if row is not None and _number(row.get(k)) is not None}
    out["train_portion"] = data.get("train_portion")
    return out


def cost(df: pd.DataFrame, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Wall seconds the command(s) ran (run.json, summed over resumes; else the rows' own), epochs, rounds and
    GPU-seconds (the rows' ``gpu_seconds``, else the search's running ``search_gpu_seconds``; None: unknown)."""
    wall = meta.get("active_seconds")
    if wall is None and _col(df, "wall_seconds").notna().any():  # a run from before run.json timed it
        wall = float(_col(df[df["stage"] != "final"] if "stage" in df else df, "wall_seconds").sum())
    epochs = _col(df, "epoch").max() if len(df) else math.nan
    rounds = (df.dropna(subset=["round"])[[c for c in ("stage", "round") if c in df]].drop_duplicates().shape[0]
              if "round" in df and _col(df, "round").notna().any() else None)
    gpu = None
    if _col(df, "gpu_seconds").notna().any():
        gpu = float(_col(df, "gpu_seconds").sum())
    elif _col(df, "search_gpu_seconds").notna().any():
        gpu = float(_col(df, "search_gpu_seconds").max())
    return {"wall_seconds": _number(round(float(wall), 3) if wall is not None else None),
            "epochs": _number(int(epochs) if epochs == epochs else None), "rounds": rounds,
            "gpu_seconds": _number(round(gpu, 3) if gpu is not None else None), "device": meta.get("device")}


def _outputs(run, method: str | None) -> list[str]:
    """The files the method's finished searches leave (its registered outputs) that this run holds."""
    from raynas.export import run_outputs

    return [name for name in (run_outputs(method) if method else ()) if (run.path / name).is_file()]


def _is_genotype(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "space" in data


def build_summary(run, df: pd.DataFrame | None = None) -> dict[str, Any]:
    """The summary of ``run`` (a ``RunDir``) from its config, run.json, result rows and the output files its
    method registered (``raynas.export.run_outputs``)."""
    config = run.config
    try:
        meta = run.meta
    except Exception:  # noqa: BLE001 - a damaged run.json must not cost the summary
        meta = {}
    df = run.read() if df is None else df
    task = task_of(config, df)
    metric = rank_metric(task, df)
    row = best_row(df, metric) if metric else None
    outputs = _outputs(run, config.get("method"))
    genotypes = [name for name in outputs if name.endswith(".json") and _is_genotype(run.path / name)]
    summary: dict[str, Any] = {"format": FORMAT, "run": run.where(), "results": run.where("results")}
    summary.update({name: run.where(name) for name in outputs})  # EAGAN's first summary: each output by name
    model = config.get("model") or {}
    best: dict[str, Any] = {"genotype": run.where(genotypes[0]) if genotypes else model.get("genotype") or None}
    if metric and row is not None:
        best.update(selected_by={"metric": metric[0], "direction": metric[1]},
                    row={k: _number(row.get(k)) for k in ("stage", "round", "epoch", "candidate_id", "seed")
                         if k in row and _number(row.get(k)) is not None},
                    metrics={k: _number(row.get(k)) for k in _SCORES if _number(row.get(k)) is not None})
    summary.update(method=config.get("method"), task=task, preset=meta.get("preset", config.get("preset")),
                   seed=meta.get("seed"), status=meta.get("status"), best=best,
                   protocol=protocol(task, config, row), cost=cost(df, meta))
    return summary


def write_summary(run, df: pd.DataFrame | None = None) -> Path:
    """Write ``RUN/summary.json`` (uploaded by the run's next sync when it is stored at a URI); returns its path."""
    from raynas.results.storage import write_atomic

    text = json.dumps(build_summary(run, df), indent=2) + "\n"
    path = run.path / SUMMARY_FILE
    write_atomic(path, lambda f: f.write(text.encode()))
    return path


def read_summary(path: str | os.PathLike) -> dict[str, Any] | None:
    """A run folder's summary.json, None when it has none or it cannot be read."""
    try:
        data = json.loads((Path(path) / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
