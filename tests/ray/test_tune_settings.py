"""Tune's failure and checkpoint settings are config keys (run.max_failures, run.checkpoints_to_keep,
run.experiment_name), and a user error in a trial is never retried, whatever run.max_failures says."""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

import pytest

from raynas.config import load_config
from raynas.errors import ConfigError, RaynasError
from raynas.results import RunDir


def _attempt(config) -> None:
    """Count this attempt: one file per attempt in the folder the test gave."""
    (Path(config["_attempts"]) / uuid.uuid4().hex).touch()


def user_mistake(config) -> None:
    _attempt(config)
    raise ConfigError("a user mistake inside the trial")


def crash(config) -> None:
    _attempt(config)
    raise RuntimeError("a bug or a lost worker")


def three_checkpoints(config) -> None:
    from trainables.common import report

    for epoch in range(3):
        report({"epoch": epoch}, {"epoch": epoch})


def _run(tmp_path: Path, name: str, trainable, *overrides: str):
    from ray import cloudpickle

    from trainables.launch import run_trainable

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    attempts = tmp_path / f"{name}-attempts"
    attempts.mkdir()
    cfg = load_config("quickstart", list(overrides))
    run = RunDir.create(tmp_path, name, config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    run_trainable(trainable, cfg, run, resources={"cpu": 1}, param_space={"_attempts": str(attempts)})
    return run


@pytest.mark.slow
def test_a_user_error_is_not_retried_and_a_crash_is_retried_max_failures_times(ray_session, tmp_path):
    with pytest.raises(ConfigError, match="^a user mistake inside the trial$"):
        _run(tmp_path, "user", user_mistake, "run.max_failures=2")
    assert len(list((tmp_path / "user-attempts").iterdir())) == 1, "a user error must not be retried"
    with pytest.raises(RaynasError, match="a trial failed with an internal error"):
        _run(tmp_path, "crash", crash, "run.max_failures=1")
    assert len(list((tmp_path / "crash-attempts").iterdir())) == 2, "a crash is retried run.max_failures times"


@pytest.mark.slow
def test_experiment_name_and_checkpoints_to_keep_are_settings(ray_session, tmp_path):
    run = _run(tmp_path, "named", three_checkpoints, "run.experiment_name=exp", "run.checkpoints_to_keep=1")
    assert run.experiment_name == "exp" and run.tune_dir == run.path / "exp"
    assert not (run.path / "tune").exists()
    [trial] = [d for d in (run.path / "exp").iterdir() if d.is_dir()]
    assert [c.name for c in trial.glob("checkpoint_*")] == ["checkpoint_000002"]


@pytest.mark.parametrize("override, message", [
    ("run.max_failures=-1", "run.max_failures: -1 is below the minimum 0"),
    ("run.checkpoints_to_keep=0", "run.checkpoints_to_keep: 0 is below the minimum 1"),
    ("run.experiment_name=results", "run.experiment_name='results': use a plain folder name"),
    ("run.experiment_name=a/b", "run.experiment_name='a/b': use a plain folder name"),
])
def test_tune_settings_are_validated(override, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load_config("quickstart", [override])


def test_the_tune_settings_are_listed_with_their_docs():
    from raynas.config import describe_keys

    keys = describe_keys()
    for key in ("run.max_failures = 2", "run.checkpoints_to_keep = 2", "run.experiment_name = 'tune'"):
        assert any(k.startswith(key + "   # ") for k in keys), key
