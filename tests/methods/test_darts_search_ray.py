"""DARTS on Ray: a tiny search (two seeds, selection, chained retrain) through the CLI in the shared Ray, a
killed classifier retrain that resumes, and the bad inputs the classifier commands refuse."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import assert_user_error, run_cli
from figures import capture_figures, is_png
from scores import recount_accuracy

from raynas.config import load_config
from raynas.results import RunDir
from raynas.spaces import Genotype
from raynas.spaces.darts import PRIMITIVES

TINY = ["darts.layers=3", "darts.channels=4", "darts.steps=2", "darts.multiplier=2", "darts.batch_size=16",
        "darts.select_epochs=1", "data.limit=64", "data.test_limit=64", "model.layers=3", "model.channels=4",
        "train.batch_size=32", "train.eval_batch_size=64"]


def _args(tmp_path, name):
    out = ["--preset", "quickstart-classify", "--output-dir", str(tmp_path), "--name", name, "--resources", "cpu=1"]
    for item in TINY:
        out += ["--set", item]
    return out


@pytest.mark.slow
def test_tiny_search_two_seeds_selection_and_retrain_end_to_end(ray_session, tmp_path, capsys, monkeypatch):
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "search", "darts", *_args(tmp_path, "s"), "--seeds", "2", "--then-retrain",
                             "--retrain-epochs", "1")
    assert code == 0, err
    run = RunDir.open(tmp_path / "s")
    best = Genotype.load(run.path / "best.json")
    assert best.space == "darts" and len(best.normal.ops) == 4  # 2 nodes x 2 inputs
    alpha = json.loads((run.path / "alpha.json").read_text())
    assert len(alpha) == 2 * (2 + 3) and all(len(w) == 8 and abs(sum(w) - 1) < 1e-5 for w in alpha.values())
    df = run.read()
    search = df[df["stage"] == "search"]
    assert sorted(search["seed"]) == [0, 1] and (search["epoch"] == 1).all()
    assert search["alpha_table"].notna().all()
    # each seed's validation accuracy is the one its trial reported to Tune at its last epoch
    reported = {}
    for result_file in (run.path / "tune").rglob("result.json"):
        last = json.loads(result_file.read_text().strip().splitlines()[-1])
        reported[last["config"]["train.seed"]] = last["val_acc"]
    assert {int(k): v for k, v in zip(search["seed"], search["val_acc"])} == reported
    # The best of the two cells is the one the validation-split retrain scored best (never the test split).
    cands = pd.read_parquet(run.path / "candidates.parquet")
    assert sorted(cands["seed"]) == [0, 1] and "test_acc" not in cands
    assert Genotype.from_json(cands.sort_values("val_acc", ascending=False)["genotype"].iloc[0]) == best
    retrain = RunDir.open(run.path / "retrain").read()
    assert retrain["epoch"].tolist() == [1]
    correct, total = recount_accuracy(run.path / "retrain")  # the test accuracy, recounted from the checkpoint
    assert total == 64 and retrain["test_acc"].iloc[0] == correct / total
    assert Genotype.from_json(retrain["genotype"].iloc[0]) == best
    note = "candidates (validation accuracy after the selection retrain):\n" + cands[
        ["seed", "val_acc", "val_loss", "params"]].to_string(index=False)
    assert note in out
    # alpha.png: one panel per edge, one line per op and seed (seed 0 solid, seed 1 dashed): α against the epoch
    plot = run.plots_dir / "alpha.png"
    assert is_png(plot)
    fig = figures[plot.resolve()]
    assert fig.legends == [[*PRIMITIVES, "seed=0 (-)", "seed=1 (--)"]] and fig.supxlabel == "search epoch"
    assert fig.suptitle.startswith("α per edge over the search: seed=0, seed=1")
    panels = fig.visible_axes()
    assert [p.title for p in panels] == list(alpha)  # the 10 edges, in the α table's order
    tables = {int(seed): json.loads(t) for seed, t in zip(search["seed"], search["alpha_table"])}
    for p in panels:
        assert [(line.label, line.ls) for line in p.lines] == [(op, ls) for ls in ("-", "--") for op in PRIMITIVES]
        assert [line.y for line in p.lines] == [[w] for seed in (0, 1) for w in tables[seed][p.title]]
        assert all(line.x == [1.0] for line in p.lines)


@pytest.mark.slow
def test_a_killed_classifier_retrain_resumes_where_it_stopped(ray_session, tmp_path, capsys):
    from raynas.cli.common import create_run
    from trainables.fixed_trial import train_fixed
    from trainables.launch import run_trainable

    marker = tmp_path / "crashed.txt"
    fixed = [o for o in TINY if not o.startswith("darts.")]
    cfg = load_config("quickstart-classify", [*fixed, "train.epochs=3", f"run.output_dir={tmp_path}"], method="train")
    run = create_run(cfg, "retrain", name="killed")
    with pytest.raises(Exception, match="trial failed"):
        run_trainable(train_fixed, cfg, run, resources={"cpu": 1}, max_failures=0,
                      param_space={"_crash_after_epoch": 2, "_crash_marker": str(marker)})
    assert marker.exists() and sorted(run.read()["epoch"]) == [1, 2]
    code, _, err = run_cli(capsys, "train", "--resume", str(run.path))
    assert code == 0, err
    df = RunDir.open(run.path).read()
    assert sorted(df["epoch"]) == [1, 2, 3] and df["test_acc"].notna().all()


def test_classifier_bad_inputs_exit_2_before_anything_runs(capsys, tmp_path):
    out = str(tmp_path / "runs")
    # a GAN genotype given to a classifier preset
    code, _, err = run_cli(capsys, "retrain", "eagan-cifar10-G", "--preset", "darts-cifar10", "--output-dir", out)
    assert_user_error(code, err, "darts-cifar10", "classify preset", "gan")
    # an input index out of range names the cell and node
    g = json.loads(Genotype.load("darts-v2").to_json())
    g["normal"][5][1] = 4  # node 2 reads states 0..3 only
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(g))
    code, _, err = run_cli(capsys, "retrain", str(bad), "--preset", "quickstart-classify", "--output-dir", out)
    assert_user_error(code, err, "normal", "node 2")
    code, _, err = run_cli(capsys, "arch", "show", str(bad))
    assert_user_error(code, err, "node 2")
    # too few cells for two reductions
    code, _, err = run_cli(capsys, "arch", "show", "darts-v2", "--layers", "2")
    assert_user_error(code, err, "layers=2", "two reduction")
    code, _, err = run_cli(capsys, "search", "darts", "--set", "darts.layers=2", "--output-dir", out)
    assert_user_error(code, err, "darts.layers", "minimum 3")
    code, _, err = run_cli(capsys, "search", "darts", "--set", "data.train_portion=1", "--output-dir", out)
    assert_user_error(code, err, "data.train_portion")
    assert not (tmp_path / "runs").exists()
