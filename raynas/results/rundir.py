"""Run directories: one run's folder, its resolved config (config.yaml), provenance (run.json, written by
``raynas.results.provenance``) and results (append-only Parquet parts, ``raynas.results.rows``).

A run stored at a URI (``s3://…``; see ``raynas.results.storage``) has ``remote`` set: ``path`` is then its
local staging copy, result parts go straight to the URI, and ``sync`` uploads the rest.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from raynas.errors import RunDirError, StorageFullError
from raynas.results import storage
from raynas.results.provenance import package_versions, plain, run_meta_text
from raynas.results.rows import RESULT_COLUMNS, list_parts, read_parts, read_rows, repair_parts, write_rows
from raynas.results.storage import Location, write_atomic

__all__ = ["CONFIG_FILE", "META_FILE", "RESULT_COLUMNS", "TUNE_DIR", "RunDir", "package_versions"]

CONFIG_FILE = "config.yaml"
META_FILE = "run.json"
TUNE_DIR = "tune"  # Tune's experiment folder in a run, unless its config says otherwise (run.experiment_name)

class RunDir:
    """One run's folder: config.yaml, run.json, results/, checkpoints/, tensorboard/, plots/."""

    def __init__(self, path: str | os.PathLike, remote: Location | None = None) -> None:
        self.path = Path(path)
        self.remote = remote  # set for a run stored at a URI: ``path`` is then its local staging copy
        self._synced: dict[str, tuple[int, int]] = {}
        self._experiment: str | None = None

    @property
    def location(self) -> str:
        """Where the run is stored, as the user passes it back (``--resume``, ``raynas results``)."""
        return self.remote.uri if self.remote is not None else str(self.path.resolve())

    def where(self, *parts: str | os.PathLike) -> str:
        """A file or folder of this run as the user names it (printed, or stored in a summary): below the URI
        for a run stored at one, else below the run's folder. Never the staging copy, which is a per-machine
        cache."""
        rel = [os.fspath(p) for p in parts]
        if self.remote is not None:
            return self.remote.child(*rel).uri if rel else self.remote.uri
        return str(self.path.joinpath(*rel))

    # ------------------------------------------------------------------ layout
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def results_dir(self) -> Path:
        return self.path / "results"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def plots_dir(self) -> Path:
        return self.path / "plots"

    @property
    def experiment_name(self) -> str:
        """Tune's experiment folder in this run (``run.experiment_name`` of its config.yaml, else ``tune``):
        Tune persists it itself, so the staging copy of a URI run neither uploads nor downloads it."""
        if self._experiment is None:
            import yaml

            try:
                local = self.config_path.is_file() or self.remote is None
                text = self.config_path.read_text() if local else self.remote.child(CONFIG_FILE).read_text()
                name = ((yaml.safe_load(text) or {}).get("run") or {}).get("experiment_name")
            except (OSError, yaml.YAMLError, AttributeError):
                name = None
            self._experiment = name if isinstance(name, str) and name else TUNE_DIR
        return self._experiment

    @property
    def tune_dir(self) -> Path:
        """Tune's experiment folder (in the staging copy for a URI run: an empty folder that marks it ran)."""
        return self.path / self.experiment_name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def meta_path(self) -> Path:
        return self.path / META_FILE

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(cls, output_dir: str | os.PathLike | Location, name: str, *, config: Any, seed: int, preset: str,
               device: str, exist_ok: bool = False) -> RunDir:
        """Make ``output_dir/name`` and record the resolved config and provenance in it.

        An existing non-empty folder is refused (results must not mix runs) unless ``exist_ok``
        and it already is a run directory, which is then reopened unchanged.
        """
        import yaml

        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise RunDirError(f"Invalid run name {name!r}: use a plain folder name such as 'cifar10-eagan' "
                              "(--set run.name=...).")
        remote = _remote_of(output_dir)
        if remote is not None:
            return cls._create_remote(remote.child(name), config=config, seed=seed, preset=preset, device=device,
                                      exist_ok=exist_ok)
        path = Path(output_dir) / name
        if path.exists():
            if not path.is_dir():
                raise RunDirError(f"Cannot create run directory {path}: a file with that name is in the way. "
                                  "Remove it or choose another --set run.name=...")
            if (path / META_FILE).is_file() and exist_ok:
                return cls.open(path)
            if any(path.iterdir()):
                raise RunDirError(f"Run directory {path} already exists and is not empty. Choose another "
                                  "name (--set run.name=...), delete it, or resume it with --resume.")
        run = cls(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            for d in (run.results_dir, run.plots_dir):  # checkpoints/ and tensorboard/ appear when a run writes them
                d.mkdir(exist_ok=True)
            cfg_text = yaml.safe_dump(plain(config), sort_keys=False, default_flow_style=False)
            write_atomic(run.config_path, lambda f: f.write(cfg_text.encode()))
            meta_text = run_meta_text(name, seed, preset, device)
            write_atomic(run.meta_path, lambda f: f.write(meta_text.encode()))
        except OSError as e:
            if storage.storage_full(e, output_dir) is not None:
                if not (path / META_FILE).is_file():  # half a definition cannot be resumed: start again
                    import shutil

                    shutil.rmtree(path, ignore_errors=True)
                raise StorageFullError(f"no space left on the storage at {output_dir} to create the run {name}: "
                                       "free some space there and start it again") from None
            raise RunDirError(f"Cannot create run directory {path}: {e.strerror or e}. Choose a writable "
                              "output folder with --storage PATH (or --set run.output_dir=PATH).") from e
        return run

    @classmethod
    def _create_remote(cls, loc: Location, *, config: Any, seed: int, preset: str, device: str,
                       exist_ok: bool) -> RunDir:
        import yaml

        try:
            if loc.exists():
                if loc.child(META_FILE).is_file() and exist_ok:
                    return cls._open_remote(loc)
                if loc.files():
                    raise RunDirError(f"Run {loc.uri} already exists and is not empty. Choose another name "
                                      "(--set run.name=...), delete it, or resume it with --resume.")
            run = cls(storage.staging_path(loc), loc)
            if run.path.exists():  # a stale copy of a run that no longer exists at the URI
                import shutil

                shutil.rmtree(run.path, ignore_errors=True)
            for d in (run.results_dir, run.plots_dir):
                d.mkdir(parents=True, exist_ok=True)
            cfg_text = yaml.safe_dump(plain(config), sort_keys=False, default_flow_style=False)
            meta_text = run_meta_text(loc.name, seed, preset, device)
            for target, text in ((run.config_path, cfg_text), (run.meta_path, meta_text)):
                run._write_staged(target.name, text.encode())
                loc.child(target.name).write_bytes(text.encode())
        except OSError as e:
            raise RunDirError(f"Cannot create the run {loc.uri}: {e}. Check the URI, the storage credentials "
                              "and that this machine may write there.") from e
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """Reopen an existing run directory (it must contain run.json); a URI is fetched into its staging copy."""
        remote = _remote_of(path)
        if remote is not None:
            return cls._open_remote(remote)
        p = Path(path)
        if not p.is_dir():
            raise RunDirError(f"{p} is not a directory. Pass the run directory printed when the run "
                              "started (e.g. runs/quickstart-20250101-120000).")
        if not (p / META_FILE).is_file():
            raise RunDirError(f"{p} is not a raynas run directory (no {META_FILE}). Pass the folder that "
                              f"holds {CONFIG_FILE}, {META_FILE} and results/.")
        return cls(p)

    @classmethod
    def _open_remote(cls, loc: Location) -> RunDir:
        if not loc.child(META_FILE).is_file():
            raise RunDirError(f"{loc.uri} is not a raynas run (no {META_FILE} there). Pass the run's location "
                              "printed when the run started, e.g. s3://bucket/raynas/quickstart-20250101-120000.")
        run = cls(storage.staging_path(loc), loc)
        run.download()
        return run

    @classmethod
    def at(cls, loc: Location) -> RunDir:
        """The run at ``loc`` as a trial on any node sees it: results and run.json read and written at the
        location itself, no staging copy fetched."""
        if not loc.is_uri:
            return cls(loc.path)
        return cls(storage.staging_path(loc), loc)

    def download(self) -> None:
        """Fetch the run's files from its URI into the staging copy: everything but the result parts (read
        from the URI) and Tune's folders (Tune restores from the URI itself; an empty folder marks them)."""
        if self.remote is None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tune = self.experiment_name
        for fs_path in self.remote.files():
            rel = self.remote.relative(fs_path)
            parts = rel.split("/")
            if parts[0] == "results" or parts[-1].startswith("."):
                continue
            if tune in parts[:-1]:
                (self.path / "/".join(parts[:parts.index(tune) + 1])).mkdir(parents=True, exist_ok=True)
                continue
            (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
            self._write_staged(rel, self.remote.fs.open_input_stream(fs_path).read())

    def _write_staged(self, rel: str, data: bytes) -> None:
        """A file of the local copy whose bytes the remote holds too: marked synced, so sync() does not
        upload it again (and cannot overwrite a newer remote copy with it)."""
        local = self.path / rel
        write_atomic(local, lambda f: f.write(data))
        st = local.stat()
        self._synced[rel] = (st.st_size, st.st_mtime_ns)

    def sync(self) -> list[str]:
        """Upload what changed in the staging copy since the last sync (not results/, written directly, nor
        Tune's folders, which Tune persists itself, nor checkpoints, which save_checkpoint uploads as it writes
        them); returns the relative paths uploaded."""
        if self.remote is None or not self.path.is_dir():
            return []
        tune = self.experiment_name

        def skip(rel: str, local: Path) -> bool:  # .pt: save_checkpoint, their only writer, uploads them itself
            parts = rel.split("/")
            return parts[0] == "results" or tune in parts[:-1] or local.suffix == ".pt"

        return storage.upload_changed(self.path, self.remote, self._synced, skip)

    def files(self) -> set[str]:
        """The files in the run's folder (a URI run's staging copy), as paths relative to it."""
        if not self.path.is_dir():
            return set()
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}

    def written(self, besides: Iterable[str] = ()) -> bool:
        """Whether the run holds anything beyond its definition (config.yaml, run.json, the files in
        ``besides``, empty folders): result rows, Tune's folder, a checkpoint, a TensorBoard file, a plot. Only
        a run that wrote nothing may be removed."""
        if self.parts() or self.tune_dir.exists():
            return True
        return bool(self.files() - {CONFIG_FILE, META_FILE, *besides})

    def remove(self) -> None:
        """Delete the run (a run that never started): its folder, and for a URI run its remote copy too."""
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)
        if self.remote is not None:
            with contextlib.suppress(OSError):
                self.remote.delete()

    @property
    def meta(self) -> dict[str, Any]:
        """The contents of run.json (seed, preset, versions, device ...)."""
        try:
            if self.remote is not None:
                return json.loads(self.remote.child(META_FILE).read_text())
            return json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as e:
            raise RunDirError(f"Cannot read {self.meta_path}: {e}. The run directory is damaged.") from e

    def record_device(self, device: str) -> None:
        """What a run actually trains on (run.json's ``device``; ``device_requested`` keeps the config's
        value, e.g. auto). Several devices in one run are listed, comma-separated. Provenance only: a run
        never fails because run.json could not be updated."""
        try:
            meta = self.meta  # the remote copy for a URI run
        except RunDirError:
            return
        meta.setdefault("device_requested", meta.get("device"))
        seen = [d for d in str(meta.get("devices_used", "")).split(",") if d]
        if device in seen:
            return
        seen.append(device)
        meta["devices_used"] = ",".join(seen)
        meta["device"] = seen[0] if len(seen) == 1 else ", ".join(seen)
        self._write_meta(meta)

    def record_meta(self, **values: Any) -> None:
        """Add or update run.json entries (e.g. ``num_workers``); provenance only, like ``record_device``."""
        try:
            meta = self.meta
        except RunDirError:
            return
        if all(meta.get(k) == v for k, v in values.items()):
            return
        meta.update(values)
        self._write_meta(meta)

    def _write_meta(self, meta: dict[str, Any]) -> None:
        text = json.dumps(meta, indent=2) + "\n"
        try:
            if self.remote is not None:
                self.remote.child(META_FILE).write_bytes(text.encode())
            if self.path.is_dir():
                self._write_staged(META_FILE, text.encode())
        except OSError:
            pass

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config as saved in config.yaml."""
        import yaml

        try:
            return yaml.safe_load(self.config_path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise RunDirError(f"Cannot read {self.config_path}: {e}. The run directory is damaged.") from e

    # ------------------------------------------------------------------ results
    def append(self, rows: list[dict[str, Any]], key: str | None = None) -> Path | None:
        """Write ``rows`` as a new Parquet part; returns its path (None when ``rows`` is empty).

        ``key`` makes the write idempotent: the part is named after it, so writing the same rows again (a
        trial that re-runs the epoch after its last checkpoint) replaces the file instead of adding one."""
        return write_rows(self.results_dir, self.remote, self.name, rows, key)

    def parts(self) -> list[Path]:
        """Finished result files in write order; for a URI run their paths on the run's filesystem."""
        return list_parts(self.results_dir, self.remote)

    def read(self, *, require_rows: bool = False, skip_damaged: bool | None = None) -> pd.DataFrame:
        """All result rows as one table; every RESULT_COLUMNS column is present (NaN when unknown). A damaged
        part is a DamagedResultsError unless ``skip_damaged`` (or ``rows.skipping_damaged``) leaves it out."""
        return read_rows(self.results_dir, self.remote, self.path, require_rows=require_rows,
                         skip_damaged=skip_damaged)

    def damaged_parts(self) -> list[str]:
        """The result parts that cannot be read, as the user names them."""
        _, damaged = read_parts(self.results_dir, self.remote)
        return [self.where("results", p.name) for p in damaged]

    def repair(self, rows_by_key: dict[str, list[dict[str, Any]]]) -> list[str]:
        """Rewrite the damaged keyed parts from ``rows_by_key`` (a checkpoint's copy of the rows written under
        each key); returns those rewritten. A damaged part no key covers is a DamagedResultsError."""
        return repair_parts(self.results_dir, self.remote, self.name, self.path, rows_by_key)


def _remote_of(spec: str | os.PathLike | Location) -> Location | None:
    """The URI location ``spec`` names: a URI itself, or a path inside a URI run's staging copy."""
    if isinstance(spec, Location):
        return spec if spec.is_uri else None
    if storage.is_uri(os.fspath(spec)):
        return Location.parse(os.fspath(spec))
    return storage.remote_for(spec)
