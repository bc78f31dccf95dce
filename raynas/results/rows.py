"""A run's results: append-only Parquet parts under ``results/``, read back as one table.

Each write makes a brand-new ``results/part-*.parquet`` (temporary file, fsync, rename), so concurrent writers
(Ray trials) never collide and a crash can at worst lose the rows being written, never earlier ones. Part names
sort by write order (a per-process strictly increasing stamp); a keyed write replaces its own part. Reading
unions all parts, tolerating columns that differ by part, and keeps the latest row per key. A run stored at a
URI writes and reads its parts there directly.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from raynas.errors import DamagedResultsError, RunDirError
from raynas.results.provenance import plain
from raynas.results.storage import Location, storage_full, write_atomic

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


def plain_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as the Parquet part stores them (``cell`` per value): plain data that a checkpoint may keep, so a
    damaged part can be written again from it (``repair_parts``)."""
    return [{str(k): cell(v) for k, v in row.items()} for row in rows]


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

    records = plain_rows(rows)
    for rec in records:
        rec.setdefault("run_id", run_id)
    df = pd.DataFrame.from_records(records)
    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ValueError(f"Result rows have a column with mixed, unconvertible types: {e}") from e
    if key is not None:
        part = results_dir / f"part-k-{safe_key(key)}.parquet"
    else:
        part = results_dir / f"part-{_stamp()}-{uuid.uuid4().hex[:12]}.parquet"
    if remote is not None:  # straight to the URI: rows from any node land in one place
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        target = remote.child("results", part.name)
        try:
            target.write_bytes(sink.getvalue().to_pybytes())
        except OSError as e:
            full = storage_full(e, target.uri)
            if full is not None:
                raise full from None
            raise RunDirError(f"Cannot write results to {target.uri}: {e}. Check the storage credentials; "
                              "earlier results are untouched.") from e
        return part
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(part, lambda f: pq.write_table(table, f))
    except OSError as e:
        full = storage_full(e, results_dir)
        if full is not None:
            raise full from None
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


_SKIP_DAMAGED = False  # set by ``skipping_damaged`` (the CLI's --skip-damaged)
_WARNED: set[str] = set()  # damaged parts already named in a warning by this process


@contextlib.contextmanager
def skipping_damaged(skip: bool = True) -> Iterator[None]:
    """Within the block, every results reader leaves damaged parts out (naming each once on stderr) instead of
    refusing the run: what ``--skip-damaged`` asks for."""
    global _SKIP_DAMAGED
    saved, _SKIP_DAMAGED = _SKIP_DAMAGED, skip
    try:
        yield
    finally:
        _SKIP_DAMAGED = saved


def part_key(part: str | Path) -> str | None:
    """The key a keyed part was written under (``part-k-KEY.parquet``, see ``write_rows``), else None."""
    name = Path(part).name
    if not (name.startswith("part-k-") and name.endswith(".parquet")):
        return None
    return name[len("part-k-"):-len(".parquet")]


def safe_key(key: str) -> str:
    """``key`` as it appears in a part's file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)


def _read_part(part: Path, fs: Any) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(part.as_posix() if fs else part, filesystem=fs).to_pandas()


def _where(part: Path, remote: Location | None) -> str:
    return remote.child("results", part.name).uri if remote is not None else str(part)


def read_parts(results_dir: Path, remote: Location | None) -> tuple[list[pd.DataFrame], dict[Path, str]]:
    """Every part's rows, in write order, and the damaged parts (path → why): a part that exists but is not
    readable Parquet (truncated by a crash or a full disk, overwritten). A part that cannot be read for another
    reason (permissions, a storage outage) is a RunDirError, never mistaken for damage."""
    import pyarrow as pa

    frames, damaged = [], {}
    fs = remote.fs if remote is not None else None
    for part in list_parts(results_dir, remote):
        try:
            frames.append(_read_part(part, fs))
        except FileNotFoundError:
            continue  # replaced meanwhile by a writer of the same key
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, EOFError) as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            damaged[part] = why.split("': ", 1)[-1]  # pyarrow's "Could not open … input source '<path>': why"
        except OSError as e:
            raise RunDirError(f"Cannot read the results part {_where(part, remote)}: {e.strerror or e}. Check "
                              "that it is readable (permissions, the storage's credentials).") from None
    return frames, damaged


def damaged_error(damaged: dict[Path, str], remote: Location | None, run_path: Path) -> DamagedResultsError:
    """One message naming every damaged part, and what the user can do about it."""
    names = [_where(p, remote) for p in damaged]
    listed = "; ".join(f"{n} ({why})" for n, why in zip(names, damaged.values()))
    run = remote.uri if remote is not None else str(run_path)
    return DamagedResultsError(
        f"{len(names)} results part(s) of {run} cannot be read, so their rows are missing: {listed}. The file was "
        "truncated (a crash or a full disk) or overwritten. `--resume` rebuilds the rows of a part its checkpoints "
        "still hold; or pass --skip-damaged to read the other parts without them.", names)


def read_rows(results_dir: Path, remote: Location | None, run_path: Path, *, require_rows: bool = False,
              skip_damaged: bool | None = None) -> pd.DataFrame:
    """All result rows as one table; every RESULT_COLUMNS column is present (NaN when unknown).

    A damaged part is a ``DamagedResultsError`` naming it, never rows silently lost; with ``skip_damaged``
    (default: inside ``skipping_damaged``) the other parts are read and each damaged one is named on stderr.
    Their names are in ``df.attrs["damaged_parts"]``."""
    frames, damaged = read_parts(results_dir, remote)
    skip = _SKIP_DAMAGED if skip_damaged is None else skip_damaged
    if damaged and not skip:
        raise damaged_error(damaged, remote, run_path)
    for part, why in damaged.items():
        name = _where(part, remote)
        if name not in _WARNED:
            _WARNED.add(name)
            print(f"raynas: warning: skipping the damaged results part {name} ({why}); its rows are left out",
                  file=sys.stderr, flush=True)
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
    out = latest_per_key(df[ordered])
    out.attrs["damaged_parts"] = [_where(p, remote) for p in damaged]
    return out


def repair_parts(results_dir: Path, remote: Location | None, run_id: str, run_path: Path,
                 rows_by_key: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """Write again every damaged keyed part whose rows ``rows_by_key`` holds (key → the rows written under it,
    as a checkpoint keeps them); returns the parts rewritten. A damaged part that none of them covers is a
    ``DamagedResultsError``: a resume must rebuild every row or stop, never continue without some."""
    _, damaged = read_parts(results_dir, remote)
    if not damaged:
        return []
    known = {safe_key(k): (k, rows) for k, rows in rows_by_key.items() if rows}
    repaired = []
    for part in list(damaged):
        key = part_key(part)
        if key in known:
            write_rows(results_dir, remote, run_id, list(known[key][1]), key=known[key][0])
            repaired.append(_where(part, remote))
            del damaged[part]
    if damaged:
        names = [_where(p, remote) for p in damaged]
        run = remote.uri if remote is not None else str(run_path)
        raise DamagedResultsError(
            f"{len(names)} results part(s) of {run} cannot be read and no checkpoint of the run holds their rows, "
            f"so resuming would lose them: {'; '.join(f'{n} ({w})' for n, w in zip(names, damaged.values()))}. "
            "To continue without those rows, rename each to NAME.damaged and resume again (`raynas results RUN "
            "--skip-damaged` shows the rest).", names)
    return repaired


ROW_KEY = ["candidate_id", "stage", "round", "epoch"]


def latest_per_key(df: pd.DataFrame) -> pd.DataFrame:
    """A resumed run may re-run the epoch after its last checkpoint and append its row again; the later
    row (parts are read oldest first) replaces the earlier one. Rows without a candidate_id are kept."""
    if df.empty or df["candidate_id"].isna().all():
        return df
    dup = df.duplicated(subset=ROW_KEY, keep="last") & df["candidate_id"].notna()
    return df[~dup].reset_index(drop=True)
