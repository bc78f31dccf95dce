"""What one EAGAN round yields, in plain Python: the objective values NSGA-II ranks, the best candidate of the
front, and the round's training stats merged from its epochs."""

from __future__ import annotations

import math
from typing import Any

from raynas.spaces import Genotype

SPACE_OF_STAGE = {"g": "eagan-g", "d": "eagan-d", "gd": "eagan-gd"}
DIRECTIONS = {"is": "max", "fid": "min", "kid": "min", "params": "min"}
RESULT_KEY = {"is": "is_mean", "fid": "fid", "kid": "kid_mean", "params": "params"}


def objective_values(row: dict[str, Any], objectives: tuple[str, ...]) -> dict[str, float]:
    """A candidate's scores under the objectives' names (NaN for a missing score)."""
    out = {}
    for name in objectives:
        value = row.get(RESULT_KEY[name])
        out[name] = float(value) if value is not None else math.nan
    return out


def merge_train_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One round's training stats from its per-epoch parts: times and batch counts add up, losses average."""
    seconds = sum(p["train_seconds"] for p in parts)
    images = sum(p["images_per_s"] * p["train_seconds"] for p in parts)
    batches = [sum(b) for b in zip(*(p["batches"] for p in parts))] if parts else []

    def mean(key: str) -> float:
        values = [p[key] for p in parts if math.isfinite(p[key])]
        return sum(values) / len(values) if values else math.nan

    return {"d_loss": mean("d_loss"), "g_loss": mean("g_loss"), "train_seconds": seconds,
            "images_per_s": images / max(seconds, 1e-9), "batches": batches,
            "min_batches_per_candidate": min(batches, default=0),
            "max_batches_per_candidate": max(batches, default=0)}


def pick_best(population: list[Genotype], scores: list[dict[str, Any]], ranks: list[int], select_by: str) -> int:
    """Index of the best rank-0 candidate by ``select_by`` (FID lowest or IS highest)."""
    key = RESULT_KEY[select_by]
    front = [i for i, r in enumerate(ranks) if r == 0] or list(range(len(population)))

    def badness(i: int) -> float:
        v = scores[i].get(key)
        if v is None or not math.isfinite(v):
            return math.inf
        return v if DIRECTIONS[select_by] == "min" else -v

    return min(front, key=badness)
