"""raynas inside a user's own Tuner: examples/user_tuner.py at tiny size, errored trials, Pareto tables."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "examples"))


@pytest.mark.slow
def test_the_user_tuner_example_runs_at_tiny_size(ray_session, tmp_path):
    import user_tuner
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(user_tuner)  # as when it runs as a script (__main__)

    storage = str(tmp_path / "tune")
    results, front = user_tuner.nsga2_over_my_trainable(storage, generations=2, pop=4)
    assert len(results) == 8 and not front.empty
    assert {"cost", "error", "config/v"} <= set(front.columns)

    results, front = user_tuner.gan_grid(storage, tiny=True)
    assert [r.error for r in results] == [None, None]
    assert sorted(r.config["train.lr_g"] for r in results) == [1e-4, 2e-4]
    run = user_tuner.experiment_run(results)  # EXPERIMENT/raynas: one results table for the grid
    df = run.read()
    assert sorted(df["candidate_id"]) == sorted(r.metrics["trial_id"] for r in results)
    assert (run.path / "config.yaml").is_file()
    assert not front.empty and set(front["trial_id"]) <= {r.metrics["trial_id"] for r in results}
    from trainables.tuner import pareto_table

    by_run = pareto_table(run, {"fid": "min", "is_mean": "max"})
    assert set(by_run["candidate_id"]) == set(front["trial_id"])

    results, front = user_tuner.darts_grid(storage, tiny=True)
    assert [r.error for r in results] == [None, None]
    assert sorted(r.config["train.seed"] for r in results) == [0, 1]
    assert set(user_tuner.experiment_run(results).read()["seed"]) == {0, 1}
    assert not front.empty


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
