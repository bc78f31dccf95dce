"""Plumbing shared by every trainable: config in, checkpoints through Tune, TensorBoard images."""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

from raynas.checkpoints import (
    STATE_FILE,  # the name raynas.checkpoints searches run dirs for
    load_checkpoint,
    save_checkpoint,
)
from raynas.config import RaynasConfig, apply_overrides, from_dict
from raynas.errors import CheckpointError, ConfigError, RaynasError, TrainingDiverged
from raynas.methods import get_method

if TYPE_CHECKING:
    import torch


def launched_by_raynas(config: dict[str, Any]) -> bool:
    """A trial that raynas's own launcher started (``run_trainable`` puts ``raynas`` and ``run_dir`` in every
    trial config); a user's own Tuner passes a flat config (see ``trial_raynas_dict``)."""
    return config.get("raynas") is not None and config.get("run_dir") is not None


def user_errors_as_results(trainable: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """A RaynasError inside a trial (a genotype file, a dataset, a checkpoint) is the user's to fix.

    Under the raynas command line it is reported as the trial's last result and ends the trial, instead of
    letting Tune retry it and log a remote traceback each time; ``raise_trial_errors`` turns it back into the
    same error on the driver (one message, exit 2). In a user's own ``Tuner`` (a flat config) it is raised,
    so the trial ends ERRORED carrying raynas's message (``result.error``), never as a successful trial
    without metrics. Wrapping twice changes nothing (``run_trainable`` wraps whatever it runs)."""
    if getattr(trainable, "_raynas_user_errors", False):
        return trainable

    @functools.wraps(trainable)
    def wrapped(config: dict[str, Any]) -> None:
        try:
            trainable(config)
        except TrainingDiverged as exc:
            if not launched_by_raynas(config):
                raise
            report({"diverged": True, "error": str(exc)})
        except RaynasError as exc:
            if not launched_by_raynas(config):
                raise
            report({"user_error": type(exc).__name__, "error": str(exc)})
        except (OSError, RuntimeError) as exc:  # a full disk (Tune persisting a checkpoint, TensorBoard ...)
            from raynas.results.storage import storage_full

            full = storage_full(exc, config.get("run_dir"))
            if full is None or not launched_by_raynas(config):
                raise
            try:
                report({"user_error": type(full).__name__, "error": str(full)})
            except Exception:  # the report could not be persisted either: the error itself tells the driver
                raise full from None
        finally:
            sync_trial_files()  # the last TensorBoard events and genotypes, also after an error

    wrapped._raynas_user_errors = True  # type: ignore[attr-defined]
    return wrapped




def trial_raynas_dict(config: dict[str, Any], method: str | None = None) -> dict[str, Any]:
    """The resolved raynas config (a plain dict) of a trial: raynas's own trials carry it under ``raynas``; a
    user's own Tuner may pass a flat dict of the usual ``--set`` keys instead, e.g.
    ``{"preset": "quickstart", "train.epochs": 3, "train.lr_g": tune.grid_search([1e-4, 2e-4])}`` (optional
    ``method`` for searches, ``task`` for fixed training; ``preset`` defaults to quickstart). Use absolute
    paths in it: a trial runs in its own working directory."""
    if config.get("raynas") is not None:
        return config["raynas"]
    from raynas.config import load_config

    overrides = [f"{k}={json.dumps(v)}" for k, v in config.items()
                 if "." in k and not k.startswith("_") and v is not None]
    cfg = load_config(str(config.get("preset") or "quickstart"), overrides,
                      method=config.get("method") or method, task=config.get("task"))
    return cfg.to_dict()
def load_state_or_explain(obj: Any, state: dict[str, Any]) -> None:
    """``obj.load_state_dict(state)``; a checkpoint from another model configuration is a CheckpointError."""
    try:
        obj.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint does not match this model configuration ({exc}); resume with "
                              "the same preset and --set overrides it was made with") from None


def trial_values(config: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """This trial's own config values by dotted key, on top of the run's resolved config ``data``: top-level
    dotted keys of a config section (a grid axis such as ``damgan.kprime``, ``train.seed``), the method's short
    grid aliases (``kprime`` → ``damgan.kprime``, ``seed`` → ``train.seed``) and a ``cell`` dict of dotted keys
    (one grid point of several axes at once, as ``raynas ablate regan`` builds them)."""
    try:
        aliases = {**get_method(data.get("method")).grid_aliases, "seed": "train.seed"}
    except ConfigError:  # fixed training (method "train"): no method, no aliases
        aliases = {}
    values = {aliases.get(k, k): v for k, v in config.items()
              if k in aliases or ("." in k and not k.startswith("_") and k.split(".")[0] in data)}
    return {**values, **(config.get("cell") or {})}


def trial_config(config: dict[str, Any], method: str | None = None) -> RaynasConfig:
    """The one way a trial config becomes a ``RaynasConfig``: the run's resolved config (``raynas``; or a user's
    flat config of ``--set`` keys, see ``trial_raynas_dict``, ``method`` naming its method when the config does
    not) with this trial's values (``trial_values``) applied and re-validated."""
    data = trial_raynas_dict(config, method)
    overrides = [f"{k}={json.dumps(v)}" for k, v in trial_values(config, data).items() if v is not None]
    return from_dict(RaynasConfig, apply_overrides(data, overrides) if overrides else data)


def gpu_fraction(device: torch.device) -> float:
    """Share of one GPU this trial holds (Tune's resource request), 0 on CPU: for GPU-seconds."""
    if device.type != "cuda":
        return 0.0
    try:
        gpus = float(tune.get_context().get_trial_resources().required_resources.get("GPU", 0.0))
    except Exception:  # outside a Tune trial (or an old Tune without the API)
        gpus = 0.0
    return gpus if gpus > 0 else 1.0


def base_row(run, cfg: RaynasConfig, tid: str, stage: str, device: torch.device,
             fields: dict[str, Any]) -> dict[str, Any]:
    """The columns every result row of a search-shaped trial starts with (``fields``: its grid values)."""
    return {"run_id": run.path.name, "method": cfg.method, "stage": stage, "round": None, "candidate_id": tid,
            "device": str(device), "seed": cfg.train.seed, **fields}


def report(metrics: dict[str, Any], state: dict[str, Any] | None = None) -> None:
    """``tune.report`` with an optional checkpoint made from a state dict; the trial's files written so far
    reach the run's storage first."""
    sync_trial_files()
    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(Path(tmp) / STATE_FILE, state)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


RESULT_PARTS = "result_parts"  # in a trial's checkpoint state: every result part it wrote, key -> rows


def remember_part(parts: dict[str, list[dict[str, Any]]], key: str, rows: list[dict[str, Any]]) -> None:
    """Keep the rows written under ``key`` (plain data) for the trial's next checkpoint, so a resume can write
    that part again when it is found damaged (``heal_results``)."""
    from raynas.results.rows import plain_rows

    parts[key] = plain_rows(rows)


def latest_trial_states(run) -> list[dict[str, Any]]:
    """The state of each trial's newest checkpoint in the run's Tune folder (``checkpoint_NNNNNN/state.pt``),
    loaded safely; a run stored at a URI is read there."""
    from raynas.results.storage import Location

    loc = run.remote.child(run.experiment_name) if run.remote is not None else Location.parse(str(run.tune_dir))
    newest: dict[str, str] = {}
    for path in loc.files():
        parts = path.rstrip("/").split("/")
        if len(parts) >= 3 and parts[-1] == STATE_FILE and parts[-2].startswith("checkpoint_"):
            trial = "/".join(parts[:-2])
            newest[trial] = max(newest.get(trial, ""), path)
    states = []
    for path in sorted(newest.values()):
        if run.remote is None:
            newest = _newest_state(Path(path).parents[1])  # a damaged newest one: the one before
            if newest is not None:
                states.append(newest[1])
            continue
        with tempfile.TemporaryDirectory() as tmp:  # load_checkpoint reads a local file
            local = Path(tmp) / STATE_FILE
            local.write_bytes(Location(path, loc.fs, path).read_bytes())
            states.append(load_checkpoint(local))
    return states


def heal_results(run) -> list[str]:
    """Before a resume: every damaged result part that a trial's last checkpoint still holds the rows of is
    written again (a truncated epoch part would otherwise be lost for good: the trial does not re-run that
    epoch); one that none holds stops the resume (``DamagedResultsError`` naming it). Returns the parts
    rewritten."""
    if not run.damaged_parts():
        return []
    journal: dict[str, list[dict[str, Any]]] = {}
    for state in latest_trial_states(run):
        journal.update(state.get(RESULT_PARTS) or {})
    repaired = run.repair(journal)
    for name in repaired:
        print(f"raynas: rebuilt the damaged results part {name} from its trial's checkpoint", flush=True)
    return repaired


RESTART = "_restart"  # in a trial config: the trial of an earlier Tune experiment that this one continues


def _last_result(trial: Path) -> dict[str, Any]:
    try:
        lines = (trial / "result.json").read_text(encoding="utf-8").strip().splitlines()
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def tune_state_unusable(run) -> str | None:
    """Why the run's Tune experiment cannot be restored as it is, or None when it can: no experiment state
    (the run stopped before Tune saved one, or a full disk kept it from it), a state file that is not JSON, or
    a trial that ended because its storage was full (Tune counts it finished and would never run it again).
    A run stored at a URI is left to Tune (None)."""
    if run.remote is not None or not run.tune_dir.is_dir():
        return None
    states = sorted(run.tune_dir.glob("experiment_state-*.json"))
    if not states:
        return f"{run.tune_dir} holds no experiment state"
    try:
        json.loads(states[-1].read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return f"{states[-1]} is damaged"
    for trial in sorted(p for p in run.tune_dir.iterdir() if p.is_dir()):
        if _last_result(trial).get("user_error") == "StorageFullError":
            return f"the trial in {trial.name} stopped on a full disk"
    return None


def _newest_state(trial: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of an old trial folder that loads, and its state, loaded once (a damaged newest
    one falls back to the one before)."""
    for ckpt in sorted(trial.glob(f"checkpoint_*/{STATE_FILE}"), reverse=True):
        try:
            return ckpt, load_checkpoint(ckpt)
        except CheckpointError:
            continue
    return None


def restart_space(run, why: str) -> dict[str, Any]:
    """Set the run's Tune folder aside (``tune.stopped-N``, nothing is deleted) and return the param space of a
    new experiment whose trials continue the old ones: each old trial's own values (its params.json), its
    newest loadable checkpoint and its trial id (so its result rows keep their keys). Plain data only: no
    file of the old experiment is unpickled."""
    import re

    old = run.tune_dir
    n = 1
    while old.with_name(f"{old.name}.stopped-{n}").exists():
        n += 1
    aside = old.with_name(f"{old.name}.stopped-{n}")
    old.rename(aside)
    print(f"raynas: the Tune experiment cannot be restored as it is ({why}); it is kept in {aside}, and a new "
          "one continues its trials from their checkpoints", flush=True)
    restarts = []
    for trial in sorted(p for p in aside.iterdir() if p.is_dir()):
        try:
            params = json.loads((trial / "params.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue  # not a trial folder (or one Tune never started)
        earlier = params.pop(RESTART, None) or {}
        match = re.search(r"_([0-9a-f]+_\d{5})_", trial.name)
        own = {k: v for k, v in params.items() if k not in ("raynas", "run_dir")}
        newest = _newest_state(trial)
        tid = earlier.get("trial_id") or _last_result(trial).get("trial_id") or (match.group(1) if match else None)
        restarts.append({"params": {**earlier.get("params", {}), **own}, "trial_id": tid,
                         "checkpoint": str(newest[0]) if newest else None})
    if not restarts:
        return {}
    from ray import tune as _tune

    return {RESTART: _tune.grid_search(restarts)}


def restarted(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """A trial config that continues an earlier experiment's trial (``restart_space``): the config with that
    trial's own values, the state of its checkpoint (None: from the start) and its trial id."""
    restart = config.get(RESTART)
    if not restart:
        return config, None, None
    config = {**{k: v for k, v in config.items() if k != RESTART}, **restart.get("params", {})}
    state = load_checkpoint(restart["checkpoint"]) if restart.get("checkpoint") else None
    return config, state, restart.get("trial_id")


def flatten_restarts(results) -> None:
    """Each result's config with its restarted trial's own values at the top (``train.seed`` ...), as a trial of
    the original experiment has them."""
    for result in results:
        restart = (result.config or {}).get(RESTART)
        if restart:
            result.config.update(restart.get("params", {}))


def restore_state() -> dict[str, Any] | None:
    """The state dict of the trial's latest checkpoint, or None on a fresh start."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return load_checkpoint(Path(d) / STATE_FILE)


TRIAL_FILES = "trial_files"  # below the trial's working directory: what it uploads to the run's storage
_UPLOADED: dict[str, dict[str, tuple[int, int]]] = {}  # per local folder: what was uploaded (size, mtime)


def _trial_storage():
    """Tune's storage context of this trial (None outside a trial)."""
    try:
        storage = tune.get_context().get_storage()
        storage.trial_fs_path  # noqa: B018 - raises without a trial
        return storage
    except Exception:  # not inside a Tune trial
        return None


def trial_dir() -> Path:
    """The folder this trial's own files go to (TensorBoard events, HParams sessions, genotypes): a folder of the
    trial on whichever node runs it, which ``sync_trial_files`` uploads to the trial's folder in the run's
    storage (a folder or a URI) after every report and when the trial ends. Not Tune's driver-side staging
    folder, which only the driver's own node uploads: a trial on another node would lose its files."""
    storage = _trial_storage()
    if storage is None:
        return Path(tune.get_context().get_trial_dir())
    path = Path(storage.trial_working_directory) / TRIAL_FILES
    path.mkdir(parents=True, exist_ok=True)
    return path


def sync_trial_files() -> list[str]:
    """Upload what this trial wrote to ``trial_dir()`` since the last call to its folder in the run's storage,
    through Tune's storage filesystem (any node reaches it); returns the relative paths uploaded. A storage
    hiccup is a warning: the next report tries again."""
    storage = _trial_storage()
    if storage is None:
        return []
    from raynas.results.storage import Location, upload_changed

    folder = Path(storage.trial_working_directory) / TRIAL_FILES
    if not folder.is_dir():
        return []
    fs = storage.storage_filesystem
    target = Location(_uri_of(fs, storage.trial_fs_path), fs, storage.trial_fs_path)
    try:
        return upload_changed(folder, target, _UPLOADED.setdefault(str(folder), {}))
    except OSError as exc:
        print(f"raynas: warning: could not upload the trial's files to {target.uri}: {exc}", flush=True)
        return []


def open_trial_run(config: dict[str, Any], cfg: RaynasConfig):
    """The run this trial writes results into: where Tune keeps the experiment now (its parent folder), so a
    run that was moved resumes in place; a run at a URI through Tune's own filesystem. A user's own Tuner (no
    ``run_dir`` in the config) gets a run of its own: the experiment's ``raynas`` folder, shared by its trials
    (one results table for the whole experiment; ``trainables.tuner.pareto_table`` reads it), which records
    ``cfg``, the trial's resolved config."""
    import posixpath

    from raynas.results import RunDir
    from raynas.results.storage import Location, is_local_filesystem, is_uri

    try:
        storage = tune.get_context().get_storage()
        fs, experiment = storage.storage_filesystem, storage.experiment_fs_path
    except Exception:  # not inside a Tune trial (direct calls in tests, older Tune)
        return RunDir.open(config["run_dir"])
    local = is_local_filesystem(fs)
    run_dir = config.get("run_dir")
    if run_dir is None:
        where = Location(experiment if local else _uri_of(fs, experiment), fs, experiment)
        return _experiment_run(cfg.to_dict(), where)
    parent = posixpath.dirname(experiment.rstrip("/"))
    if local and not is_uri(run_dir):
        return RunDir.open(Path(parent))
    return RunDir.at(Location(run_dir if is_uri(run_dir) else _uri_of(fs, parent), fs, parent))


def _uri_of(fs, path: str) -> str:
    from raynas.results.storage import is_local_filesystem

    scheme = "file" if is_local_filesystem(fs) else {"gcs": "gs"}.get(fs.type_name, fs.type_name)
    return f"{scheme}://{path}"


def _experiment_run(data: dict[str, Any], experiment):
    """``EXPERIMENT/raynas``: created by the first trial that gets there (others open it)."""
    import time

    from raynas.errors import RunDirError
    from raynas.results import RunDir

    for attempt in range(20):
        try:
            return RunDir.create(experiment if experiment.is_uri else experiment.path, "raynas", config=data,
                                 seed=data["train"]["seed"], preset=data.get("preset", ""),
                                 device=data["train"]["device"], exist_ok=True)
        except RunDirError:  # another trial is creating it right now
            if attempt == 19:
                raise
            time.sleep(0.25)
    raise AssertionError("unreachable")


def trial_id() -> str:
    return tune.get_context().get_trial_id()


def image_writer():
    """A TensorBoard writer in the trial directory, next to Tune's own scalar logs."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(trial_dir()))


def maybe_inject_crash(config: dict[str, Any], epoch: int) -> None:
    """Fault injection for the resume tests: kill this worker once, after ``epoch`` was checkpointed.

    ``_crash_after_epoch`` and ``_crash_marker`` are test-only keys; the marker file makes the crash
    happen exactly once, so the retried trial must resume from its checkpoint to finish.
    """
    crash_at = config.get("_crash_after_epoch")
    marker = config.get("_crash_marker")
    if crash_at is None or marker is None or epoch != crash_at or os.path.exists(marker):
        return
    Path(marker).write_text(f"crashed after epoch {epoch}\n")
    os._exit(1)


def maybe_inject_full_disk(config: dict[str, Any], epoch: int) -> None:
    """Fault injection for the full-disk tests: once (``_crash_marker``), after ``epoch`` was checkpointed, the
    trial's next write finds no space left (``_full_disk_after_epoch``, a test-only key)."""
    at = config.get("_full_disk_after_epoch")
    marker = config.get("_crash_marker")
    if at is None or marker is None or epoch != at or os.path.exists(marker):
        return
    import errno

    Path(marker).write_text(f"disk full after epoch {epoch}\n")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(trial_dir()))


def maybe_inject_nan(config: dict[str, Any], epoch: int, module) -> None:
    """Fault injection for the divergence tests: poison ``module``'s weights after ``epoch``."""
    if config.get("_nan_after_epoch") != epoch:
        return
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.fill_(float("nan"))
