"""Run storage without Ray: folders and object-store URIs (file:// goes through pyarrow like s3://), the staging
copy and its mapping back to the URI, write-through checkpoints and genotypes, the Ray-job guard, --storage,
TensorBoard HParams sessions."""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil

import pytest

from raynas.errors import RunDirError
from raynas.results import RunDir
from raynas.results import storage as st


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("RAYNAS_STAGING", str(tmp_path / "staging"))
    return tmp_path / "store"


def test_a_uri_run_writes_rows_straight_to_the_store_and_syncs_the_rest(store):
    uri = f"file://{store}/runs"
    run = RunDir.create(uri, "r1", config={"a": 1}, seed=0, preset="p", device="cpu")
    assert run.location == f"{uri}/r1" and run.path != store / "runs" / "r1"
    assert (store / "runs" / "r1" / "config.yaml").is_file() and (store / "runs" / "r1" / "run.json").is_file()
    run.append([{"candidate_id": "x", "stage": "s", "epoch": 1, "fid": 3.0}])
    assert list((store / "runs" / "r1" / "results").glob("part-*.parquet")), "rows go straight to the URI"
    assert not list(run.results_dir.glob("part-*"))
    (run.plots_dir / "a.png").write_bytes(b"png")
    assert run.sync() == ["plots/a.png"] and run.sync() == []
    run.record_device("cpu")
    assert json.loads((store / "runs" / "r1" / "run.json").read_text())["devices_used"] == "cpu"
    assert json.loads(run.meta_path.read_text())["devices_used"] == "cpu" and run.sync() == []  # uploaded once
    from raynas.checkpoints import load_checkpoint, save_checkpoint

    save_checkpoint(run.path / "checkpoints" / "c.pt", {"round": 3})  # uploaded as it is written, and only then
    assert load_checkpoint(store / "runs" / "r1" / "checkpoints" / "c.pt") == {"round": 3} and run.sync() == []
    nested = RunDir.create(run.path, "retrain", config={}, seed=0, preset="p", device="cpu", exist_ok=True)
    assert nested.location == f"{uri}/r1/retrain" and (store / "runs" / "r1" / "retrain" / "run.json").is_file()
    with pytest.raises(RunDirError, match="already exists"):
        RunDir.create(uri, "r1", config={}, seed=0, preset="p", device="cpu")
    shutil.rmtree(run.path)  # another machine: nothing local
    again = RunDir.open(f"{uri}/r1")
    assert (again.path / "plots" / "a.png").read_bytes() == b"png"
    assert again.read()["fid"].tolist() == [3.0]
    again.remove()
    assert not (store / "runs" / "r1").exists()


def test_staged_paths_map_back_to_their_uri(store):
    loc = st.Location.parse(f"file://{store}/a/")
    assert loc.uri == f"file://{store}/a" and loc.child("b", "c.pt").path == f"{store}/a/b/c.pt"
    local = st.staging_path(loc)
    assert st.remote_for(local / "checkpoints" / "c.pt").uri == f"file://{store}/a/checkpoints/c.pt"
    assert st.remote_for(store / "elsewhere") is None
    assert not st.Location.parse(str(store)).is_uri and st.is_uri("s3://bucket/raynas")


def test_paths_shown_to_the_user_are_the_storage_they_gave_never_the_staging_copy(store):
    uri = f"file://{store}/runs"
    run = RunDir.create(uri, "r", config={}, seed=0, preset="p", device="cpu")
    assert run.where() == f"{uri}/r" and run.where("best_G.json") == f"{uri}/r/best_G.json"
    assert run.where("plots", "pareto.png") == f"{uri}/r/plots/pareto.png"
    assert st.user_location(run.path / "plots" / "pareto.png") == f"{uri}/r/plots/pareto.png"
    nested = RunDir.create(run.path, "retrain", config={}, seed=0, preset="p", device="cpu", exist_ok=True)
    assert nested.where("tune") == f"{uri}/r/retrain/tune"
    local = RunDir.create(store / "plain", "r", config={}, seed=0, preset="p", device="cpu")
    assert local.where("best_G.json") == str(store / "plain" / "r" / "best_G.json")
    assert st.user_location(store / "plain" / "x.png") == str(store / "plain" / "x.png")


def test_checkpoints_and_genotypes_are_written_through_and_fetched_when_missing(store):
    from raynas.checkpoints import load_checkpoint, save_checkpoint
    from raynas.spaces import Genotype

    run = RunDir.create(f"file://{store}", "r", config={}, seed=0, preset="p", device="cpu")
    ckpt = run.checkpoints_dir / "stage-g_round000.pt"
    save_checkpoint(ckpt, {"w": 1})
    assert (store / "r" / "checkpoints" / "stage-g_round000.pt").is_file()
    ckpt.unlink()  # as on a node that did not write it
    assert load_checkpoint(ckpt) == {"w": 1}
    g = Genotype.load("darts-v2")
    g.save(run.path / "best.json")
    (run.path / "best.json").unlink()
    assert Genotype.load(run.path / "best.json") == g
    assert Genotype.load(f"file://{store}/r/best.json") == g


def test_a_relative_or_working_dir_storage_is_refused_in_a_ray_job(tmp_path, monkeypatch):
    copy = tmp_path / "session_1" / "runtime_resources" / "working_dir_files" / "_ray_pkg_abc"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    assert st.in_ray_job() and st.ray_working_dir_copy(copy / "runs") == copy
    with pytest.raises(RunDirError, match="Ray's temporary copy"):
        st.check_storage("runs")
    with pytest.raises(RunDirError, match="RAYNAS_STORAGE"):
        st.check_storage(str(copy / "runs"))
    assert st.check_storage(str(tmp_path / "shared")) == str(tmp_path / "shared")
    assert st.check_storage("s3://bucket/raynas") == "s3://bucket/raynas"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")
    with pytest.raises(RunDirError, match=re.escape(f"--storage 'runs' would put the run inside Ray's temporary copy "
                                                   f"of the job's working directory ({tmp_path})")):
        st.check_storage("runs")


def _args(**kw) -> argparse.Namespace:
    base = {"preset": "quickstart", "overrides": [], "data_root": None, "inception_weights": None, "name": None,
            "output_dir": None, "storage": None}
    return argparse.Namespace(**{**base, **kw})


def test_storage_flag_env_and_output_dir(tmp_path, monkeypatch):
    from raynas.cli.common import config_from_args
    from raynas.errors import ConfigError

    monkeypatch.delenv("RAYNAS_STORAGE", raising=False)
    assert config_from_args(_args(storage="file:///x/runs")).run.output_dir == "file:///x/runs"
    assert config_from_args(_args(storage=str(tmp_path))).run.output_dir == str(tmp_path)
    monkeypatch.setenv("RAYNAS_STORAGE", "s3://bucket/raynas")
    assert config_from_args(_args()).run.output_dir == "s3://bucket/raynas"
    assert config_from_args(_args(output_dir=str(tmp_path))).run.output_dir == str(tmp_path)
    with pytest.raises(ConfigError, match="--storage and --output-dir"):
        config_from_args(_args(output_dir=str(tmp_path), storage="/elsewhere"))


def test_hparams_sessions_for_every_candidate(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    from raynas.spaces import get_space
    from trainables.hparams import genotype_hparams, log_population

    space = get_space("eagan-g")
    rows = [{"candidate_id": f"g000-{i:03d}", "stage": "g", "round": 0, "genotype": space.sample(random.Random(i))
             .to_json(), "params": 1000 + i, "fid": 50.0 - i, "is_mean": 1.0 + i, "rank": i, "best": i == 1}
            for i in range(3)]
    assert any(k.startswith("g/") for k in genotype_hparams(rows[0]["genotype"]))
    writer = SummaryWriter(log_dir=str(tmp_path))
    log_population(writer, "g", 0, rows)
    writer.close()
    sessions = sorted(p.name for p in (tmp_path / "hparams").iterdir())
    assert sessions == ["g000-000", "g000-001", "g000-002"]
    acc = EventAccumulator(str(next((tmp_path / "hparams" / "g000-001").rglob("events.out.tfevents*")).parent))
    acc.Reload()
    assert "_hparams_/session_start_info" in acc.summary_metadata or acc.Tags()["tensors"]
    main = EventAccumulator(str(tmp_path))
    main.Reload()
    assert {"stage_g/pareto", "stage_g/best_genotype"} <= set(main.Tags()["images"])


def test_asha_needs_a_metric_and_a_tune_grid(capsys, tmp_path):
    from conftest import assert_user_error, run_cli

    code, _, err = run_cli(capsys, "ablate", "darts", "--preset", "quickstart-classify", "--scheduler", "asha",
                           "--output-dir", str(tmp_path))
    assert_user_error(code, err, "--scheduler asha needs --metric")
    code, _, err = run_cli(capsys, "ablate", "eagan", "--scheduler", "asha", "--metric", "fid",
                           "--output-dir", str(tmp_path))
    assert_user_error(code, err, "--scheduler asha", "one after another")
    assert not list(tmp_path.iterdir())


def test_stopped_trials_keep_a_row_marked_stopped(tmp_path):
    from types import SimpleNamespace

    from trainables.launch import metric_mode, record_stopped

    assert metric_mode("accuracy") == ("val_acc", "max") and metric_mode("fid") == ("fid", "min")
    run = RunDir.create(tmp_path, "g", config={}, seed=0, preset="p", device="cpu")
    run.append([{"candidate_id": "t1", "stage": "retrain", "epoch": 3, "test_acc": 0.5, "order": 1, "seed": 0}])
    finished = SimpleNamespace(error=None, metrics={"trial_id": "t1", "training_iteration": 3},
                               config={"darts.order": 1, "train.seed": 0, "raynas": {"method": "darts"}})
    stopped = SimpleNamespace(error=None, metrics={"trial_id": "t2", "training_iteration": 1, "val_acc": 0.1},
                              config={"darts.order": 2, "train.seed": 0, "raynas": {"method": "darts"}})
    assert record_stopped([finished, stopped], run, "retrain", "accuracy") == 1
    assert record_stopped([finished, stopped], run, "retrain", "accuracy") == 0  # a resumed grid adds none
    df = run.read().set_index("candidate_id")
    assert bool(df.loc["t2", "stopped"]) and df.loc["t2", "order"] == 2 and df.loc["t2", "stopped_val_acc"] == 0.1
    assert df.loc["t2", "stage"] == "stopped", "a stopped cell never reached the retrain stage"
    from raynas.results.ablation import grid_summary

    df = df.reset_index()
    cells, means = grid_summary(df, ["order"], stage="retrain")
    assert cells["stopped"].astype("boolean").fillna(False).tolist() == [False, True] and len(means) == 2
    assert cells["stage"].tolist() == ["retrain", "stopped"]


def test_the_ablation_table_of_an_asha_grid_shows_each_column_once(tmp_path, capsys):
    from raynas.cli.search import summarize_ablation
    from raynas.methods import get_method
    from trainables.launch import record_stopped

    run = RunDir.create(tmp_path, "g", config={}, seed=0, preset="p", device="cpu")
    run.append([{"candidate_id": "t1", "stage": "retrain", "epoch": 3, "test_acc": 0.5, "params": 1234, "order": 1,
                 "seed": 0}])
    stopped = argparse.Namespace(error=None, metrics={"trial_id": "t2", "training_iteration": 1, "phase": "search"},
                                 config={"darts.order": 2, "train.seed": 0, "raynas": {"method": "darts"}})
    record_stopped([stopped], run, "retrain", "accuracy")
    summarize_ablation(get_method("darts"), run, ["darts.order"], early_stopping=True)
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["order", "seed", "stopped", "test_acc", "params"]
