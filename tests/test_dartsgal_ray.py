"""DARTS-GAL on Ray: the pipeline as one Tune trial killed between phases and resumed with --resume, and the λ grid
with an all-pruned cell (every mask dying in a search is one message: tests/test_dartsgal.py)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from conftest import run_cli

from raynas.checkpoints import save_checkpoint
from raynas.config import load_config
from raynas.errors import RaynasError
from raynas.results import RunDir
from raynas.spaces import Genotype

TINY = ["dartsgal.layers=3", "dartsgal.channels=4", "dartsgal.baseline_epochs=2", "dartsgal.prune_epochs=2",
        "dartsgal.retrain_epochs=1", "dartsgal.prune_batch_size=16", "dartsgal.n_critic=1", "dartsgal.mask_step=1",
        "dartsgal.lam=0.001", "dartsgal.eval_every=1", "train.batch_size=16", "train.eval_batch_size=64",
        "data.limit=48", "data.test_limit=32", "resources.cpu=1"]


def _sets(tmp_path, *extra):
    out = []
    for item in [*TINY, f"run.output_dir={tmp_path}", *extra]:
        out += ["--set", item]
    return out


def test_pipeline_killed_between_phases_resumes(ray_session, tmp_path, capsys):
    from trainables.launch import run_trainable
    from trainables.pipeline import pipeline_trial

    cfg = load_config("quickstart-classify", [*TINY, f"run.output_dir={tmp_path}"], method="darts-gal")
    run = RunDir.create(tmp_path, "gal", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="auto")
    marker = tmp_path / "crashed.txt"
    # killed right after the last baseline epoch was checkpointed: the checkpoint already names the prune phase
    space = {"_crash_after_epoch": 2, "_crash_marker": str(marker)}
    with pytest.raises(RaynasError, match="trial failed"):
        run_trainable(pipeline_trial, cfg, run, resources={"cpu": 1}, param_space=space, max_failures=0)
    assert marker.exists(), "no worker was killed, so nothing was resumed"
    assert sorted(zip(run.read()["stage"], run.read()["epoch"])) == [("baseline", 1), ("baseline", 2)]
    run = RunDir.open(shutil.move(run.path, tmp_path / "gal_moved"))  # a run resumes wherever it now is
    code, out, err = run_cli(capsys, "search", "darts-gal", "--resume", str(run.path))
    assert code == 0, err
    df = run.read()
    rows = list(zip(df["stage"], df["epoch"]))
    assert sorted(rows) == sorted([("baseline", 1), ("baseline", 2), ("prune", 3), ("prune", 4), ("retrain", 5),
                                   ("final", 5)])  # each epoch exactly once: no phase ran twice
    prune = df[df["stage"] == "prune"].sort_values("epoch")
    masks = [json.loads(m) for m in prune["masks"]]
    assert [len(m) for m in masks[-1]] == [4, 4, 4] and prune["live_nodes"].notna().all()
    assert prune["d_loss"].notna().all() and prune["train_acc"].notna().all()
    final = df[df["stage"] == "final"].iloc[0]
    pruned = Genotype.load(run.path / "pruned.json")
    assert pruned.to_json() == final["genotype"] and final["kept_nodes"] == pruned.kept_nodes
    assert Genotype.load(run.path / "best.json").kept_nodes == 12 == final["total_nodes"]
    summary = json.loads((run.path / "dartsgal.json").read_text())
    assert summary["baseline"]["params"] == final["baseline_params"] and summary["pruned"]["params"] == final["params"]
    assert 0 <= final["test_acc"] <= 1 and 0 <= final["baseline_test_acc"] <= 1
    assert run.meta["device"] == "cpu" and run.meta["device_requested"] == "auto"  # the device used, not "auto"
    assert (run.plots_dir / "masks.png").stat().st_size > 0 and (run.plots_dir / "pruned.png").stat().st_size > 0
    assert "raynas retrain" in out and "pruned.json" in out
    code, out, err = run_cli(capsys, "arch", "show", str(run.path / "pruned.json"), "--json", "--dataset",
                             "fashion-mnist")
    assert code == 0, err
    assert json.loads(out)["params"] == final["params"] and json.loads(out)["flops"] == final["flops"]
    assert summary["flops"] == {"baseline": final["baseline_flops"], "pruned": final["flops"]}
    events = list(run.path.glob("tune/*/events.out.tfevents.*"))
    assert events  # TensorBoard scalars (masks/cell*/node*, losses) next to Tune's logs


@pytest.fixture
def teacher_file(tmp_path):
    """A trained tiny baseline's checkpoint (in-process, no Ray), for runs that skip the baseline phase."""
    import torch

    from raynas.methods.dartsgal.pipeline import DartsGalPipeline

    cfg = load_config("quickstart-classify", TINY, method="darts-gal")
    trainer = DartsGalPipeline(cfg, torch.device("cpu")).baseline_trainer()
    trainer.train_epoch()
    path = tmp_path / "teacher" / "state.pt"
    path.parent.mkdir()
    save_checkpoint(path, trainer.state_dict())
    return path


def test_lambda_grid_reports_kept_nodes_params_and_accuracy(ray_session, tmp_path, capsys, teacher_file):
    code, out, err = run_cli(capsys, "ablate", "darts-gal", "--preset", "quickstart-classify",
                             *_sets(tmp_path, f"dartsgal.teacher={teacher_file}", "dartsgal.mask_lr=0.1"),
                             "--grid", "lam=0.001,100", "--resources", "cpu=1")
    assert code == 0, err
    run = next(p for p in tmp_path.glob("quickstart-classify-darts-gal-ablation-*"))
    cells = pd.read_parquet(run / "ablation_lam.parquet").sort_values("lam")
    assert cells["lam"].tolist() == [0.001, 100.0]
    kept, dead = cells.iloc[0], cells.iloc[1]
    assert kept["kept_nodes"] > 0 and not kept["all_pruned"] and 0 <= kept["test_acc"] <= 1
    assert kept["params"] <= kept["baseline_params"]
    assert dead["all_pruned"] and dead["kept_nodes"] == 0  # a result of the grid, not an error
    assert cells["baseline_epochs"].eq(0).all()  # the teacher checkpoint replaced the baseline phase
    assert (run / "plots" / "ablation_lam_tradeoff.png").stat().st_size > 0
    assert "kept_nodes" in out

