"""A full disk stops a search with one message, and the run resumes once there is space (issue 25): the trial's
write fails with ENOSPC after its first epoch, the Tune experiment state it leaves is then emptied (what a full
disk left before Tune wrote atomically), and ``search darts --resume`` continues the trial from its checkpoint
in a new experiment, keeping the old one and the trial's rows; ``train --resume`` does the same for a training."""

from __future__ import annotations

import pytest
from conftest import run_cli
from test_damaged_resume import darts_search_stopped_after_epoch_1

from raynas.config import load_config
from raynas.errors import StorageFullError
from raynas.results import RunDir


@pytest.mark.slow
def test_a_darts_search_stopped_by_a_full_disk_resumes_once_there_is_space(ray_session, tmp_path, capsys):
    run = darts_search_stopped_after_epoch_1(tmp_path, "full", "_full_disk_after_epoch", StorageFullError,
                                            "no space left on the storage")
    (first,) = run.read()["candidate_id"].unique()
    for state in run.tune_dir.glob("experiment_state-*.json"):
        state.write_bytes(b"")  # an empty experiment state: Tune could not restore it
    code, out, err = run_cli(capsys, "search", "darts", "--resume", str(run.path))
    assert code == 0, err
    assert "Traceback" not in err and "continues its trials from their checkpoints" in out
    assert (run.path / "tune.stopped-1").is_dir()  # nothing of the stopped experiment is deleted
    df = RunDir.open(run.path).read()
    assert sorted(df["epoch"]) == [1, 2] and set(df["candidate_id"]) == {first}  # the same trial, continued
    assert (run.path / "best.json").is_file()


@pytest.mark.slow
def test_a_training_stopped_by_a_full_disk_resumes_once_there_is_space(ray_session, tmp_path, capsys):
    from raynas.cli.common import create_run
    from trainables.fixed_trial import train_fixed
    from trainables.launch import run_trainable

    cfg = load_config("quickstart", ["train.epochs=2", "train.iters_per_epoch=1", "model.gf_dim=8",
                                     "model.df_dim=8", "model.latent_dim=8", "data.limit=64", "eval.every=0",
                                     f"run.output_dir={tmp_path}"], method="train")
    run = create_run(cfg, "train", name="full")
    with pytest.raises(StorageFullError):
        run_trainable(train_fixed, cfg, run, resources={"cpu": 1}, max_failures=0,
                      param_space={"_full_disk_after_epoch": 1, "_crash_marker": str(tmp_path / "disk-full.txt")})
    (first,) = run.read()["candidate_id"].unique()
    code, _, err = run_cli(capsys, "train", "--resume", str(run.path))
    assert code == 0, err
    df = RunDir.open(run.path).read()
    assert sorted(df["epoch"]) == [1, 2] and set(df["candidate_id"]) == {first}
