"""DARTS-GAL on Ray: the pipeline as one Tune trial killed between phases and resumed with --resume, and the λ grid
with an all-pruned cell (every mask dying in a search is one message: tests/methods/test_dartsgal.py)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from conftest import run_cli
from figures import capture_figures, is_png

from raynas.checkpoints import save_checkpoint
from raynas.config import load_config
from raynas.errors import RaynasError
from raynas.results import RunDir, format_table
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


def test_pipeline_killed_between_phases_resumes(ray_session, tmp_path, capsys, monkeypatch):
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
    figures = capture_figures(monkeypatch)
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
    # the final row, the summary file and the printed note carry the numbers the trial reported last
    (last,) = [json.loads(line) for f in (run.path / "tune").rglob("result.json")
               for line in f.read_text().splitlines() if json.loads(line).get("final")]
    assert (final["test_acc"], final["baseline_test_acc"]) == (last["test_acc"], last["baseline_test_acc"])
    assert (summary["pruned"]["test_acc"], summary["baseline"]["test_acc"]) == (final["test_acc"],
                                                                                final["baseline_test_acc"])
    lines = out.splitlines()
    assert (f"raynas: pruned {12 - int(final['kept_nodes'])} of 12 nodes: {int(final['baseline_params']):,} -> "
            f"{int(final['params']):,} params ({summary['pruned']['pruned_fraction']:.1%} fewer); test accuracy "
            f"{final['baseline_test_acc']:.4f} -> {final['test_acc']:.4f} (reported, never selected on)") in lines
    assert run.meta["device"] == "cpu" and run.meta["device_requested"] == "auto"  # the device used, not "auto"
    assert f"raynas: pruned    {run.path / 'pruned.json'}" in lines
    assert f"raynas: retrain  raynas retrain {run.path / 'pruned.json'} --preset quickstart-classify" in lines
    # masks.png: a panel per cell, a line per node: its soft mask at each pruning epoch; the threshold line
    assert is_png(run.plots_dir / "masks.png") and is_png(run.plots_dir / "pruned.png")
    fig = figures[(run.plots_dir / "masks.png").resolve()]
    threshold = cfg.dartsgal.threshold
    nodes = [f"node {i}" for i in range(4)]
    assert fig.legends == [nodes] and len(fig.visible_axes()) == 3
    xs = (prune["phase_epoch"] if "phase_epoch" in prune else prune["epoch"]).tolist()
    for c, ax in enumerate(fig.visible_axes()):
        drawn = [line for line in ax.lines if line.label.startswith("node")]
        assert [line.label for line in drawn] == nodes and ax.hlines == [threshold]
        assert [line.y for line in drawn] == [[m[c][i] for m in masks] for i in range(4)]
        assert all(line.x == xs for line in drawn)
        assert ax.title == f"cell {c}: {sum(v <= threshold for v in masks[-1][c])} of 4 pruned"
    # pruned.png: a panel per cell naming the nodes it kept, each kept node drawn with its original id
    fig = figures[(run.plots_dir / "pruned.png").resolve()]
    assert fig.suptitle == (f"darts-gal: {pruned.kept_nodes} of 12 nodes kept ({pruned.source.space} cells, "
                            f"C={pruned.channels})")
    assert len(fig.axes) == 3
    for i, ax in enumerate(fig.axes):
        kind = "reduction" if pruned.is_reduction(i) else "normal"
        assert ax.title.startswith(f"cell {i} ({kind}): keeps {list(pruned.kept[i]) or 'no node'}")
        assert {str(k) for k in pruned.kept[i]} <= set(ax.text_strings())
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


def test_lambda_grid_reports_kept_nodes_params_and_accuracy(ray_session, tmp_path, capsys, teacher_file,
                                                           monkeypatch):
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "ablate", "darts-gal", "--preset", "quickstart-classify",
                             *_sets(tmp_path, f"dartsgal.teacher={teacher_file}", "dartsgal.mask_lr=0.1"),
                             "--grid", "lam=0.001,100", "--resources", "cpu=1")
    assert code == 0, err
    run = next(p for p in tmp_path.glob("quickstart-classify-darts-gal-ablation-*"))
    cells = pd.read_parquet(run / "ablation_lam.parquet").sort_values("lam")
    assert cells["lam"].tolist() == [0.001, 100.0]
    kept, dead = cells.iloc[0], cells.iloc[1]
    assert kept["kept_nodes"] > 0 and not kept["all_pruned"]
    finals = [json.loads(line) for f in (run / "tune").rglob("result.json") for line in f.read_text().splitlines()
              if json.loads(line).get("final")]
    assert [(r["test_acc"], r["kept_nodes"]) for r in finals if not r["all_pruned"]] == [
        (kept["test_acc"], kept["kept_nodes"])]  # the kept cell's accuracy is its trial's last report
    assert kept["params"] <= kept["baseline_params"]
    assert dead["all_pruned"] and dead["kept_nodes"] == 0  # a result of the grid, not an error
    assert cells["baseline_epochs"].eq(0).all()  # the teacher checkpoint replaced the baseline phase
    table = pd.read_parquet(run / "ablation_lam.parquet")  # the printed table: its rows, in its order
    assert format_table(table, columns=[c for c in ("lam", "seed", "stopped", "test_acc", "kept_nodes", "params",
                                                    "flops", "search_gpu_seconds", "search_seconds") if c in table]
                        ) in out
    # the trade-off plot: the kept cell at (params, test accuracy), the unpruned baselines as stars, and a note
    # naming the cell that pruned every node
    plot = run / "plots" / "ablation_lam_tradeoff.png"
    assert is_png(plot)
    (ax,) = figures[plot.resolve()].axes
    assert (ax.xlabel, ax.ylabel) == ("params (retrained pruned network)",
                                      "test_acc (retrained; reported, never selected on)")
    points = {p.label: p.xy.tolist() for p in ax.scatters}
    assert points["lam=0.001"] == [[kept["params"], kept["test_acc"]]], points
    assert points["baseline (unpruned)"] == cells[["baseline_params", "baseline_test_acc"]].values.tolist(), points
    assert "every node pruned (nothing to retrain): lam=100.0" in ax.text_strings()

