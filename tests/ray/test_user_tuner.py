"""raynas inside a user's own Tuner: examples/user_tuner.py at tiny size, errored trials, Pareto tables."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, plain_shell_env, stop_session


@pytest.mark.slow
def test_the_user_tuner_example_runs_as_the_readme_says(tmp_path):
    """`python examples/user_tuner.py --tiny` in a plain shell (no RAY_AUTH_MODE, no Ray running for it): the
    example starts its own local Ray, runs its three Tuners and prints their Pareto fronts."""
    storage = tmp_path / "tune"
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "user_tuner.py"), "--tiny", "--storage",
                             str(storage)], cwd=tmp_path, env=plain_shell_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=400)
    finally:
        stop_session(proc)  # its Ray, also when it hangs (by pid: the session it started, nothing else)
    assert proc.returncode == 0, out[-4000:]
    assert "Failed to start GCS" not in out, out[-4000:]  # (Ray may log a worker's shutdown traceback: noise)
    for title in ("NSGA-II over my_trainable, Pareto front", "fixed GAN grid, Pareto front",
                  "DARTS search grid, Pareto front"):
        assert title in out, out[-4000:]
    assert f"raynas results table of the grid: {storage / 'gan-grid' / 'raynas'}" in out

    from trainables.tuner import experiment_run, pareto_table

    nsga2 = [d for d in (storage / "nsga2-own").iterdir() if (d / "result.json").is_file()]
    assert len(nsga2) == 8  # two generations of four
    gan = experiment_run(storage / "gan-grid")  # EXPERIMENT/raynas: one results table for the grid
    df = gan.read()
    assert df["candidate_id"].nunique() == 2 and df["fid"].notna().sum() == 2
    assert (gan.path / "config.yaml").is_file()
    front = pareto_table(gan, {"fid": "min", "is_mean": "max"})
    assert not front.empty and set(front["candidate_id"]) <= set(df["candidate_id"])
    darts = experiment_run(storage / "darts-grid").read()
    assert set(darts["seed"]) == {0, 1} and darts["val_acc"].notna().all()


@pytest.mark.slow
def test_a_user_error_in_a_users_tuner_is_an_errored_trial_with_raynas_message(ray_session, tmp_path):
    from ray import tune

    from trainables.tuner import train_fixed

    tuner = tune.Tuner(train_fixed, param_space={"preset": "quickstart", "model.generator": "genotype",
                                                 "model.g_genotype": str(tmp_path / "missing.json")},
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="bad", verbose=0))
    [result] = tuner.fit()
    assert result.error is not None, "a user mistake must not look like a successful trial"
    assert "missing.json" in str(result.error) and "does not exist" in str(result.error)


def test_pareto_table_of_a_dataframe_and_of_last_rows(tmp_path):
    from raynas.results import RunDir
    from trainables.tuner import pareto_table

    df = pd.DataFrame({"fid": [10.0, 5.0, 7.0], "params": [1, 3, 4]})
    assert sorted(pareto_table(df, {"fid": "min", "params": "min"})["fid"]) == [5.0, 10.0]
    run = RunDir.create(tmp_path, "r", config={}, seed=0, preset="p", device="cpu")
    run.append([{"candidate_id": "a", "epoch": 1, "fid": 1.0, "params": 5},
                {"candidate_id": "a", "epoch": 2, "fid": 9.0, "params": 5},
                {"candidate_id": "b", "epoch": 2, "fid": 3.0, "params": 9}])
    front = pareto_table(run.location, {"fid": "min", "params": "min"})
    assert sorted(front["candidate_id"]) == ["a", "b"] and sorted(front["fid"]) == [3.0, 9.0]
