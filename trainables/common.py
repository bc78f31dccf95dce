"""Plumbing shared by every trainable: config in, checkpoints through Tune, TensorBoard images."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune

from raynas.checkpoints import (
    STATE_FILE,  # the name raynas.checkpoints searches run dirs for
    load_checkpoint,
    save_checkpoint,
)
from raynas.config import RaynasConfig, from_dict
from raynas.errors import CheckpointError, RaynasError, TrainingDiverged


def user_errors_as_results(trainable: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """A RaynasError inside a trial (a genotype file, a dataset, a checkpoint) is the user's to fix:
    report it as the trial's last result and end the trial, instead of letting Tune retry it and log a
    remote traceback each time. ``raise_trial_errors`` turns it back into the same error on the driver."""

    @functools.wraps(trainable)
    def wrapped(config: dict[str, Any]) -> None:
        try:
            trainable(config)
        except TrainingDiverged as exc:
            tune.report({"diverged": True, "error": str(exc)})
        except RaynasError as exc:
            tune.report({"user_error": type(exc).__name__, "error": str(exc)})

    return wrapped


def load_state_or_explain(obj: Any, state: dict[str, Any]) -> None:
    """``obj.load_state_dict(state)``; a checkpoint from another model configuration is a CheckpointError."""
    try:
        obj.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint does not match this model configuration ({exc}); resume with "
                              "the same preset and --set overrides it was made with") from None


def config_from_trial(config: dict[str, Any]) -> RaynasConfig:
    """Trial configs carry the resolved raynas config as a plain dict (plus Tune-sampled overrides)."""
    return from_dict(RaynasConfig, config["raynas"])


def report(metrics: dict[str, Any], state: dict[str, Any] | None = None) -> None:
    """``tune.report`` with an optional checkpoint made from a state dict."""
    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(Path(tmp) / STATE_FILE, state)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def restore_state() -> dict[str, Any] | None:
    """The state dict of the trial's latest checkpoint, or None on a fresh start."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return load_checkpoint(Path(d) / STATE_FILE)


def trial_dir() -> Path:
    """This trial's local artifact folder (Tune syncs it to the run's storage)."""
    return Path(tune.get_context().get_trial_dir())


def open_trial_run(config: dict[str, Any]):
    """The run directory this trial writes results into: where Tune keeps the experiment now (its parent
    folder), so a run directory that was moved resumes in place; ``config["run_dir"]`` (where it was when the
    run started) only outside Tune."""
    from raynas.results import RunDir

    try:
        experiment = tune.get_context().get_storage().experiment_fs_path
    except Exception:  # not inside a Tune trial (direct calls in tests, older Tune)
        return open_trial_run(config)
    return RunDir.open(Path(experiment).parent)


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


def maybe_inject_nan(config: dict[str, Any], epoch: int, module) -> None:
    """Fault injection for the divergence tests: poison ``module``'s weights after ``epoch``."""
    if config.get("_nan_after_epoch") != epoch:
        return
    import torch

    with torch.no_grad():
        for p in module.parameters():
            p.fill_(float("nan"))
