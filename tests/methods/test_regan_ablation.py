"""`raynas ablate regan` (a Tune grid with a Re-GAN-off baseline cell, summary table and plots) and Re-GAN's bad
input: exit 2 with one message, before any run directory or trial exists."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, run_cli
from figures import capture_figures, is_png

from raynas.results import RunDir

TINY = ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=12", "train.iters_per_epoch=2", "train.epochs=3",
        "train.gen_batch_size=8", "train.dis_batch_size=8", "data.limit=200", "eval.num_samples=100",
        "eval.batch_size=50", "eval.every=0"]


def _sets(*items: str) -> list[str]:
    return [a for s in items for a in ("--set", s)]


def test_registered_as_a_gan_training_modifier():
    import subprocess
    import sys

    from raynas.config import load_config
    from raynas.methods import get_method

    method = get_method("regan")
    assert method.modifier and method.task == "gan" and method.runner is None and method.shape == "schedule"
    assert method.default_grid == ("sparsity=0.1,0.3,0.5", "interval=1,5,10")
    cfg = load_config("quickstart", method="train")  # the regan section is part of every fixed GAN run
    assert not cfg.regan.enabled and cfg.regan.warmup == 1 and cfg.regan.interval == 1
    assert not hasattr(load_config("quickstart", method="eagan"), "regan")  # searches have none
    preset = load_config("regan-sngan-cifar10", method="train")
    assert preset.regan.enabled and preset.regan.sparsity == 0.3 and preset.regan.interval == 5
    assert preset.train.n_critic == 5 and preset.data.fraction == 0.1 and preset.train.dis_batch_size == 64
    from conftest import ROOT

    code = "import sys, raynas.methods.regan; assert 'torch' not in sys.modules"  # the method package stays light
    assert subprocess.run([sys.executable, "-c", code], cwd=str(ROOT)).returncode == 0


def test_bad_input_exits_2_before_any_run(capsys, tmp_path):
    out = ["--output-dir", str(tmp_path)]
    code, _, err = run_cli(capsys, "train", "--preset", "quickstart-classify", *_sets("regan.enabled=true"), *out)
    assert_user_error(code, err, "Re-GAN applies to GAN training only", "regan.enabled")
    code, _, err = run_cli(capsys, "search", "eagan", *_sets("regan.enabled=true"), *out)
    assert_user_error(code, err, "Re-GAN applies to fixed GAN training", "raynas retrain")
    code, _, err = run_cli(capsys, "train", *_sets("regan.enabled=true", "regan.sparsity=1.0"), *out)
    assert_user_error(code, err, "regan.sparsity must lie in [0, 1)")
    code, _, err = run_cli(capsys, "ablate", "regan", "--grid", "sparsity=0.3,-0.1", *out)
    assert_user_error(code, err, "regan.sparsity must lie in [0, 1)")
    code, _, err = run_cli(capsys, "train", *_sets("regan.enabled=true", "regan.interval=0"), *out)
    assert_user_error(code, err, "regan.interval", "minimum 1")
    code, _, err = run_cli(capsys, "train", *_sets("regan.enabled=true", "regan.include=*nothing*"), *out)
    assert_user_error(code, err, "selects no parameter", "l1.weight", "blocks.0.c1.weight")
    code, _, err = run_cli(capsys, "ablate", "regan", *_sets("regan.exclude=*"), *out)  # preset: regan off
    assert_user_error(code, err, "selects no parameter", "l1.weight")
    code, _, err = run_cli(capsys, "retrain", "eagan-cifar10-G", "--preset", "quickstart",
                           *_sets("regan.enabled=true", "regan.include=re:^nope"), *out)
    assert_user_error(code, err, "selects no parameter", "EaganGenerator")
    assert not list(tmp_path.iterdir()), "no run directory may be left behind"


@pytest.mark.slow
def test_sparsity_interval_grid_with_baseline(ray_session, capsys, tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "ablate", "regan", "--preset", "quickstart", "--grid", "regan.sparsity=0.3,0.5",
                             "--grid", "interval=1", *_sets(*TINY), "--resources", "cpu=0.5",  # three at once
                             "--output-dir", str(tmp_path), "--name", "abl")
    assert code == 0, err
    run = tmp_path / "abl"
    cells = pd.read_parquet(run / "ablation_sparsity_interval.parquet")
    assert len(cells) == 3  # two Re-GAN cells and the baseline
    base = cells[~cells["enabled"]]
    assert len(base) == 1 and math.isnan(base["sparsity"].iloc[0]) and math.isnan(base["interval"].iloc[0])
    on = cells[cells["enabled"]].sort_values("sparsity")
    assert on["sparsity"].tolist() == [0.3, 0.5] and on["interval"].tolist() == [1, 1]
    assert (cells["fid"] > 0).all() and (cells["is_mean"] >= 1 - 1e-6).all()
    # each cell's scores are the ones its trial reported to Tune at its last epoch
    reported = {}
    for result_file in (run / "tune").rglob("result.json"):
        last = json.loads(result_file.read_text().strip().splitlines()[-1])
        reported[last["config"]["cell"].get("regan.sparsity")] = (last["is_mean"], last["fid"])
    assert sorted(reported, key=str) == [0.3, 0.5, None]
    for _, c in cells.iterrows():
        assert (c["is_mean"], c["fid"]) == pytest.approx(reported[c["sparsity"] if c["enabled"] else None], rel=1e-6)
    assert (cells["stage"] == "final").all() and (cells["epoch"] == 3).all()
    # the last epoch (W S D with warmup 1, g 1) is dense: regrown weights are trained again; FLOPs skip the
    # pruned weights of the sparse epoch, so every Re-GAN cell trained for less than the baseline
    assert (on["train_flops"] < base["train_flops"].iloc[0]).all()
    assert on["train_flops"].iloc[1] < on["train_flops"].iloc[0]
    assert on["regan_phase"].tolist() == ["dense", "dense"]
    means = pd.read_parquet(run / "ablation_sparsity_interval_mean.parquet")
    assert len(means) == 3 and means["fid_mean"].notna().all()  # the baseline is a row of its own
    lines = out.splitlines()
    for plot in ("ablation_sparsity_interval.png", "regan_fid_heatmap.png", "regan_fid_vs_flops.png"):
        assert is_png(run / "plots" / plot), plot
        assert f"raynas: plot   {run / 'plots' / plot}" in lines
    drawn = {p.name: figures[p] for p in figures if p.parent == (run / "plots").resolve()}
    base_fid = base["fid"].iloc[0]
    # the grid plot: mean IS, FID and FLOPs against sparsity, one line for interval 1 (the baseline has no sparsity)
    on_means = means[means["sparsity"].notna()].sort_values("sparsity")
    panels = drawn["ablation_sparsity_interval.png"].axes
    assert sorted(panel.title.split(" ")[0] for panel in panels) == ["fid", "is_mean", "train_flops"]
    for panel in panels:
        metric = panel.title.split(" ")[0]
        (series,) = panel.errorbars
        assert panel.xlabel == "sparsity" and series.label == f"interval={on_means['interval'].iloc[0]}"
        assert series.x == [0.0, 1.0] and panel.xticklabels == ["0.3", "0.5"] and series.ls == "None"
        assert series.y == pytest.approx(on_means[f"{metric}_mean"].tolist(), rel=1e-9)
    # the heatmap: FID of the two Re-GAN cells over sparsity x interval, the baseline's FID in the title
    heat = drawn["regan_fid_heatmap.png"].axes[0]
    (image,) = heat.images
    np.testing.assert_allclose(image, [[f] for f in on["fid"]], rtol=1e-9)
    assert heat.title == f"FID over sparsity × interval; Re-GAN off: {base_fid:.3g}"
    assert heat.text_strings() == [f"{f:.3g}" for f in on["fid"]]
    # FID against training FLOPs: the Re-GAN cells and the baseline, each at (its FLOPs, its FID)
    ax = drawn["regan_fid_vs_flops.png"].axes[0]
    points = {p.label: sorted(p.xy.tolist()) for p in ax.scatters}
    assert points == {"Re-GAN": sorted(on[["train_flops", "fid"]].to_numpy(dtype=float).tolist()),
                      "Re-GAN off": [[float(base["train_flops"].iloc[0]), base_fid]]}
    assert ax.text_strings() == ["g=1", "g=1"]
    rows = RunDir(run).read()  # the union of every part's columns (a folder read takes the first part's)
    per_epoch = rows[rows["stage"] == "train"]
    assert len(per_epoch) == 9 and per_epoch[per_epoch["enabled"]]["regan_phase"].notna().all()


def test_grid_space_adds_one_baseline_per_fraction_and_plots_draw(tmp_path, monkeypatch):
    from raynas.methods.regan.figures import draw_regan_ablation
    from trainables.fixed_trial import regan_space

    space = regan_space({"regan.sparsity": [0.1, 0.3, 0.5], "regan.interval": [1, 5, 10],
                         "data.fraction": [0.1, 1.0]})
    cells = space["cell"]["grid_search"]
    assert len(cells) == 2 * (9 + 1)
    base = [c for c in cells if not c["regan.enabled"]]
    assert base == [{"data.fraction": 0.1, "regan.enabled": False}, {"data.fraction": 1.0, "regan.enabled": False}]
    assert regan_space({"regan.enabled": [True, False]})["cell"]["grid_search"] == [{"regan.enabled": True},
                                                                                  {"regan.enabled": False}]
    rows = [{"sparsity": c.get("regan.sparsity"), "interval": c.get("regan.interval"),
             "fraction": c["data.fraction"], "enabled": c["regan.enabled"], "seed": 0,
             "fid": 50.0 + 10 * (c.get("regan.sparsity") or 0.0) - 5 * c["data.fraction"],
             "train_flops": 1e9 * (1 - 0.5 * (c.get("regan.sparsity") or 0.0))} for c in cells]
    figures = capture_figures(monkeypatch)
    paths = draw_regan_ablation(pd.DataFrame(rows), pd.DataFrame(), ["sparsity", "interval", "fraction"], tmp_path)
    assert sorted(p.name for p in paths) == ["regan_fid_heatmap_fraction0.1.png", "regan_fid_heatmap_fraction1.png",
                                             "regan_fid_vs_flops.png"]
    assert all(is_png(p) for p in paths)
    # one heatmap per data fraction: FID over sparsity (rows) x interval (columns), the baseline's FID in the title
    for fraction in (0.1, 1.0):
        heat = figures[(tmp_path / f"regan_fid_heatmap_fraction{fraction:g}.png").resolve()].axes[0]
        expect = [[50.0 + 10 * s - 5 * fraction] * 3 for s in (0.1, 0.3, 0.5)]  # the interval does not matter here
        (image,) = heat.images
        np.testing.assert_allclose(image, expect, rtol=1e-12)
        assert (heat.ylabel, heat.xlabel) == ("sparsity", "interval")
        assert (heat.yticklabels, heat.xticklabels) == (["0.1", "0.3", "0.5"], ["1", "5", "10"])
        assert heat.title == (f"FID over sparsity × interval (data.fraction={fraction:g}); Re-GAN off: "
                              f"{50 - 5 * fraction:.3g}")
        assert heat.text_strings() == [f"{v:.3g}" for row in expect for v in row]
    # FID against training FLOPs: every Re-GAN cell and each baseline, per fraction
    ax = figures[(tmp_path / "regan_fid_vs_flops.png").resolve()].axes[0]
    points = {p.label: sorted(p.xy.tolist()) for p in ax.scatters}
    for fraction in (0.1, 1.0):
        on = sorted([1e9 * (1 - 0.5 * s), 50.0 + 10 * s - 5 * fraction] for s in (0.1, 0.3, 0.5) for _ in range(3))
        np.testing.assert_allclose(points[f"fraction {fraction:g}: Re-GAN"], on, rtol=1e-12)
        assert points[f"fraction {fraction:g}: Re-GAN off"] == [[1e9, 50.0 - 5 * fraction]]
    assert ax.legend == list(points)
    assert (ax.xlabel, ax.ylabel) == ("training FLOPs (pruned weights skipped)", "FID (lower is better)")
