"""Plain-text and CSV views of a results table (``raynas results RUN_DIR``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from raynas.errors import RunDirError
from raynas.results.rundir import RESULT_COLUMNS

_MAX_CELL = 40


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    try:
        if pd.isna(value):
            return "-"
    except (TypeError, ValueError):
        pass
    text = " ".join(str(value).split())
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 3] + "..."


def _default_columns(df: pd.DataFrame) -> list[str]:
    ordered = [c for c in RESULT_COLUMNS if c in df.columns]
    ordered += [c for c in df.columns if c not in RESULT_COLUMNS]
    return [c for c in ordered if df[c].notna().any()]


def format_table(df: pd.DataFrame, columns: Sequence[str] | None = None, max_rows: int = 50) -> str:
    """Fixed-width table; all-empty columns are hidden, long cells (genotypes) shortened."""
    if columns is None:
        columns = _default_columns(df)
    else:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"Unknown column(s) {missing}; available: {list(df.columns)}")
        columns = list(dict.fromkeys(columns))  # a column asked for twice is shown once
    if df.empty or not columns:
        return "(no results)"
    shown = df.head(max_rows) if max_rows > 0 else df
    cells = [[_fmt(v) for v in row] for row in shown[columns].itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in columns]
    widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    if len(df) > len(shown):
        out.append(f"... {len(df) - len(shown)} more rows (of {len(df)}); export them with --csv")
    return "\n".join(out)


def export_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` to CSV atomically (parent folders are created)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as e:
        raise RunDirError(f"Cannot write CSV {path}: {e.strerror or e}. Choose a writable path.") from e
    finally:
        if tmp.exists():
            tmp.unlink()
