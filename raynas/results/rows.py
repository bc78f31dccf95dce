"""A run's results: append-only Parquet parts under ``results/``, read back as one table.

Each write makes a brand-new ``results/part-*.parquet`` (temporary file, fsync, rename), so concurrent writers
(Ray trials) never collide and a crash can at worst lose the rows being written, never earlier ones. Part names
sort by write order (a per-process strictly increasing stamp); a keyed write replaces its own part. Reading
unions all parts, tolerating columns that differ by part, and keeps the latest row per key. A run stored at a
URI writes and reads its parts there directly.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from raynas.errors import RunDirError
from raynas.results.provenance import plain
from raynas.results.storage import Location, write_atomic

RESULT_COLUMNS = [
    "run_id", "method", "stage", "epoch", "round", "candidate_id", "genotype", "params",
    "is_mean", "is_std", "fid", "kid_mean", "kid_std", "extractor", "num_samples", "wall_seconds", "device",
]
PART_GLOB = "part-*.parquet"


def cell(value: Any) -> Any:
    """Normalise one result value for Parquet: genotypes and containers become JSON strings."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "to_json") and callable(value.to_json):
        return value.to_json()
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(plain(value), sort_keys=True)
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, RuntimeError):
            pass
    return str(value)


_lock = threading.Lock()
_last_ns = 0


def _stamp() -> str:
    """Strictly increasing nanosecond stamp within a process, so part names sort by write order."""
    global _last_ns
    with _lock:
        ns = max(time.time_ns(), _last_ns + 1)
        _last_ns = ns
    return f"{ns:020d}"


def write_rows(results_dir: Path, remote: Location | None, run_id: str, rows: list[dict[str, Any]],
               key: str | None = None) -> Path | None:
    """Write ``rows`` as a new Parquet part of ``results_dir`` (of ``remote``'s ``results/`` for a URI run);
    returns its path (None when ``rows`` is empty). Rows without a ``run_id`` get ``run_id``.

    ``key`` makes the write idempotent: the part is named after it, so writing the same rows again (a
    trial that re-runs the epoch after its last checkpoint) replaces the file instead of adding one."""
    if not rows:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = []
    for row in rows:
        rec = {str(k): cell(v) for k, v in row.items()}
        rec.setdefault("run_id", run_id)
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"Result rows have a column with mixed, unconvertible types: {e}") from e
    if key is not None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        part = results_dir / f"part-k-{safe}.parquet"
    else:
        part = results_dir / f"part-{_stamp()}-{uuid.uuid4().hex[:12]}.parquet"
    if remote is not None:  # straight to the URI: rows from any node land in one place
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        target = remote.child("results", part.name)
        try:
            target.write_bytes(sink.getvalue().to_pybytes())
        except OSError as e:
            raise RunDirError(f"Cannot write results to {target.uri}: {e}. Check the storage credentials; "
                              "earlier results are untouched.") from e
        return part
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(part, lambda f: pq.write_table(table, f))
    except OSError as e:
        raise RunDirError(f"Cannot write results to {results_dir}: {e.strerror or e}. "
                          "Check free disk space and permissions; earlier results are untouched.") from e
    return part


def list_parts(results_dir: Path, remote: Location | None) -> list[Path]:
    """Finished result files in write order (temporary files from a crash are ignored); for a URI run
    their paths on the run's filesystem."""
    if remote is not None:
        import fnmatch

        found = remote.child("results").files()
        return [Path(p) for p in sorted(found, key=lambda p: p.rsplit("/", 1)[-1])
                if fnmatch.fnmatch(p.rsplit("/", 1)[-1], PART_GLOB)]
    if not results_dir.is_dir():
        return []
    return sorted(results_dir.glob(PART_GLOB))


def read_rows(results_dir: Path, remote: Location | None, run_path: Path, *, require_rows: bool = False
              ) -> pd.DataFrame:
    """All result rows as one table; every RESULT_COLUMNS column is present (NaN when unknown)."""
    import pyarrow.parquet as pq

    frames = []
    fs = remote.fs if remote is not None else None
    for part in list_parts(results_dir, remote):
        try:
            frames.append(pq.read_table(part.as_posix() if fs else part, filesystem=fs).to_pandas())
        except Exception as e:  # a damaged part must not hide every other result
            warnings.warn(f"Skipping unreadable results file {part}: {e}", RuntimeWarning, stacklevel=3)
    frames = [f for f in frames if len(f)]
    if frames:
        with warnings.catch_warnings():
            # pandas warns about all-NA columns in concat; the union of columns is what we want
            warnings.simplefilter("ignore", FutureWarning)
            df = pd.concat(frames, ignore_index=True, sort=False)
    else:
        df = pd.DataFrame()
    if require_rows and df.empty:
        raise RunDirError(f"Run directory {run_path} has no results yet "
                          f"(nothing in {results_dir}). Results appear after the first "
                          "evaluated candidate or epoch.")
    for col in RESULT_COLUMNS:
        if col not in df.columns:
            df[col] = math.nan if len(df) else pd.Series(dtype="float64")
    ordered = RESULT_COLUMNS + [c for c in df.columns if c not in RESULT_COLUMNS]
    return latest_per_key(df[ordered])


ROW_KEY = ["candidate_id", "stage", "round", "epoch"]


def latest_per_key(df: pd.DataFrame) -> pd.DataFrame:
    """A resumed run may re-run the epoch after its last checkpoint and append its row again; the later
    row (parts are read oldest first) replaces the earlier one. Rows without a candidate_id are kept."""
    if df.empty or df["candidate_id"].isna().all():
        return df
    dup = df.duplicated(subset=ROW_KEY, keep="last") & df["candidate_id"].notna()
    return df[~dup].reset_index(drop=True)
