"""Runs as a list: the status a run records in run.json as it starts and ends, and ``find_runs``, which lists every
run below a storage location (a folder or a URI), nested ones too (a comparison's arms, an EAGAN grid's cells, a
search's retrain), for ``raynas runs``.

run.json keeps ``status`` (running, finished, interrupted, failed), ``started`` (the first start), ``ended`` and
``active_seconds`` (every session of the run together, resumes included). A run whose process was killed outright
still says running; the listing calls it interrupted when it was started on this machine by a process that is gone.
Runs from before these keys read their status from what they left (a ``summary.json``: finished).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from raynas.results.storage import Location

STATUSES = ("running", "finished", "interrupted", "failed", "unknown", "damaged")
# folders of a run that never hold another run: not walked into
_RUN_PARTS = {"results", "checkpoints", "tensorboard", "plots", "tune", "genotypes", "samples", "export"}
DEPTH = 4  # levels below the storage a run may be found at (STORAGE/RUN/arms/ENTRY, STORAGE/RUN/cells/cell-000)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _iso(t: _dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def _parse(text: Any) -> _dt.datetime | None:
    try:
        t = _dt.datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


# ============================================================================ recording (the CLI, at start and end)
def mark_started(run) -> None:
    """run.json says the run is running, here, since now (``started`` keeps the first start of a resumed run)."""
    try:
        meta = run.meta
    except Exception:  # noqa: BLE001 - provenance only: a run never fails for its run.json
        return
    now = _iso(_now())
    run.record_meta(status="running", started=meta.get("started") or meta.get("created") or now,
                    session_started=now, pid=os.getpid(), running_on=socket.gethostname())


def mark_ended(run, status: str, error: str | None = None) -> None:
    """run.json says how the run's command ended (finished, interrupted, failed) and for how long it ran."""
    try:
        meta = run.meta
    except Exception:  # noqa: BLE001
        return
    now = _now()
    began = _parse(meta.get("session_started"))
    seconds = float(meta.get("active_seconds") or 0.0) + ((now - began).total_seconds() if began else 0.0)
    values: dict[str, Any] = {"status": status, "ended": _iso(now), "active_seconds": round(seconds, 3)}
    if error or meta.get("error"):
        values["error"] = error
    run.record_meta(**values)


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError, OverflowError):
        return False
    return True


def status_of(meta: dict[str, Any], has_summary: bool) -> str:
    """The run's status from its run.json (and whether it left a summary.json: a run from before ``status``)."""
    status = meta.get("status")
    if status == "running" and meta.get("running_on") == socket.gethostname() and not _alive(meta.get("pid")):
        return "interrupted"  # killed outright (SIGKILL, a crashed machine) before it could say so
    if status in STATUSES:
        return str(status)
    return "finished" if has_summary else "unknown"


def duration_of(meta: dict[str, Any], status: str) -> float | None:
    """Seconds the run ran, every session together (a running one: until now)."""
    seconds = meta.get("active_seconds")
    if status == "running":
        began = _parse(meta.get("session_started"))
        if began is not None:
            return float(seconds or 0.0) + (_now() - began).total_seconds()
    return float(seconds) if seconds is not None else None


# ============================================================================ listing
@dataclass
class RunInfo:
    """One line of ``raynas runs``."""

    name: str
    location: str
    method: str | None = None
    preset: str | None = None
    status: str = "unknown"
    started: str | None = None
    seconds: float | None = None
    best: dict[str, Any] | None = None  # {"metric": ..., "value": ...}
    problem: str | None = None  # what is damaged
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        return {k: v for k, v in out.items() if v is not None or k in ("best", "seconds")}


def _run_folders(root: Location, depth: int) -> Iterator[Location]:
    """Every folder below ``root`` (``root`` too) holding a run.json, at most ``depth`` levels down; a run's own
    folders (results, checkpoints, Tune's, ...) are not looked into."""
    import pyarrow.fs

    if not root.is_uri:
        base = root.path
        for here, dirs, files in os.walk(base):
            level = 0 if here == base else os.path.relpath(here, base).count(os.sep) + 1
            is_run = "run.json" in files
            if is_run:
                yield Location.parse(here)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (is_run and d in _RUN_PARTS)
                             ) if level < depth else []
        return
    infos = root.fs.get_file_info(pyarrow.fs.FileSelector(root.path, recursive=True, allow_not_found=True))
    found = sorted(tuple(root.relative(i.path).split("/")[:-1]) if i.path != f"{root.path}/run.json" else ()
                   for i in infos if i.type == pyarrow.fs.FileType.File and i.base_name == "run.json")
    runs = set(found)
    for parts in found:
        inside_run_part = any(parts[:k] in runs and parts[k] in _RUN_PARTS for k in range(len(parts)))
        if len(parts) <= depth and not inside_run_part and not any(p.startswith(".") for p in parts):
            yield root.child(*parts) if parts else root


def _read_json(loc: Location) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(loc.read_text())
    except (OSError, ValueError) as e:
        return None, f"{loc.name}: {e}"
    return (data, None) if isinstance(data, dict) else (None, f"{loc.name}: not a JSON object")


def _best_from_rows(loc: Location, config: dict[str, Any]) -> dict[str, Any] | None:
    """The best score of a run without a summary (running, interrupted): its result rows, by its task's metric."""
    import warnings

    from raynas.results.rows import read_rows
    from raynas.results.summary import best_row, rank_metric, task_of

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = read_rows(Path(loc.child("results").path), loc if loc.is_uri else None, Path(loc.path))
    except Exception:  # noqa: BLE001 - unreadable results: the run is still listed
        return None
    if df.empty:
        return None
    metric = rank_metric(task_of(config, df), df)
    row = best_row(df, metric) if metric else None
    if row is None:
        return None
    return {"metric": metric[0], "value": float(row[metric[0]])}


def describe_run(loc: Location) -> RunInfo:
    """What ``raynas runs`` says of the run at ``loc``; a damaged run.json or config.yaml is reported, not raised."""
    import yaml

    from raynas.results.summary import SUMMARY_FILE

    info = RunInfo(name=loc.name, location=loc.uri)
    meta, problem = _read_json(loc.child("run.json"))
    try:
        config = yaml.safe_load(loc.child("config.yaml").read_text()) or {}
        if not isinstance(config, dict):
            raise ValueError("not a mapping")
    except (OSError, ValueError, yaml.YAMLError) as e:
        config = {}
        problem = problem or f"config.yaml: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    summary, _ = _read_json(loc.child(SUMMARY_FILE)) if loc.child(SUMMARY_FILE).is_file() else (None, None)
    info.method = (meta or {}).get("command") or config.get("method") or (summary or {}).get("method")
    info.preset = (meta or {}).get("preset") or config.get("preset")
    if meta is None:
        info.status, info.problem = "damaged", problem
    else:
        info.status = status_of(meta, summary is not None)
        info.started = meta.get("started") or meta.get("created")
        info.seconds = duration_of(meta, info.status)
        info.problem = problem
        if info.status in ("failed",) and meta.get("error"):
            info.extra["error"] = meta["error"]
    best = (summary or {}).get("best") or {}
    chosen = (best.get("selected_by") or {}).get("metric")
    if chosen and (best.get("metrics") or {}).get(chosen) is not None:
        info.best = {"metric": chosen, "value": best["metrics"][chosen]}
    else:
        info.best = _best_from_rows(loc, config)
    if info.seconds is None and summary:
        info.seconds = (summary.get("cost") or {}).get("wall_seconds")
    return info


def holds_runs(storage: str | os.PathLike, depth: int = DEPTH) -> bool:
    """Whether ``storage`` is a folder (or URI) with runs below it, though not a run itself."""
    root = Location.parse(os.fspath(storage))
    try:
        return next(iter(_run_folders(root, depth)), None) is not None
    except OSError:
        return False


def find_runs(storage: str | os.PathLike, depth: int = DEPTH) -> list[RunInfo]:
    """Every run at or below ``storage`` (a folder or a URI), in path order; folders that are not runs are skipped."""
    root = Location.parse(os.fspath(storage))
    return [describe_run(loc) for loc in _run_folders(root, depth)]
