"""`raynas ablate regan` over train.augment × regan.enabled: the Re-GAN paper's few-shot table (StyleGAN2 with no
augmentation, APA or DiffAugment, each with Re-GAN off and on) as one Tune grid on any image folder, its tables
(one row per cell, means over seeds) and the FID heatmap in the table's layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from figures import capture_figures, is_png
from test_regan_stylegan2_presets import STYLEGAN2_TINY, image_folder

from raynas.config import load_config
from raynas.methods import get_method
from raynas.results import RunDir
from raynas.results.ablation import grid_summary

FID = {("none", False): 86.67, ("none", True): 72.92, ("apa", False): 68.74, ("apa", True): 64.28,
       ("diffaugment", False): 46.31, ("diffaugment", True): 45.7}  # the paper's Obama column


def test_short_grid_keys_and_the_table_layout_figure(tmp_path, monkeypatch):
    from raynas.cli.search import parse_grid
    from raynas.methods.regan.figures import draw_regan_ablation

    root = image_folder(tmp_path / "shots")
    method = get_method("regan")
    make = lambda extra=(): load_config("regan-stylegan2-fewshot",  # noqa: E731
                                        [f"data.root={root}", *STYLEGAN2_TINY, *extra])
    grid = parse_grid(["augment=diffaugment,apa,none", "enabled=false,true"], method, make)
    assert grid == {"train.augment": ["diffaugment", "apa", "none"], "regan.enabled": [False, True]}
    # two seeds per cell, cells in any order: the tables sort them, the figure puts the rows in the paper's order
    rows = [{"augment": a, "enabled": on, "seed": s, "fid": FID[a, on] + s, "train_flops": 1e9 * (0.9 if on else 1)}
            for (a, on) in reversed(list(FID)) for s in (0, 1)]
    cells, means = grid_summary(pd.DataFrame(rows), ["augment", "enabled"], stage=None)
    assert len(cells) == 12 and len(means) == 6 and (means["seeds"] == 2).all()
    assert means.set_index(["augment", "enabled"])["fid_mean"].to_dict() == pytest.approx(
        {k: v + 0.5 for k, v in FID.items()})
    figures = capture_figures(monkeypatch)
    paths = draw_regan_ablation(cells, means, ["augment", "enabled"], tmp_path)
    assert sorted(p.name for p in paths) == ["regan_fid_augment.png", "regan_fid_vs_flops.png"]
    assert all(is_png(p) for p in paths)
    heat = figures[(tmp_path / "regan_fid_augment.png").resolve()].axes[0]
    (image,) = heat.images
    expect = [[FID[a, False] + 0.5, FID[a, True] + 0.5] for a in ("none", "apa", "diffaugment")]
    np.testing.assert_allclose(image, expect, rtol=1e-12)
    assert (heat.ylabel, heat.xlabel) == ("augment", "Re-GAN")
    assert (heat.yticklabels, heat.xticklabels) == (["none", "apa", "diffaugment"], ["off", "on"])
    assert heat.text_strings() == [f"{v:.3g}" for row in expect for v in row]


@pytest.mark.slow
def test_augment_grid_on_a_folder_keeps_regan_off_and_on_apart(ray_session, capsys, tmp_path):
    root = image_folder(tmp_path / "shots")
    sets = [f"data.root={root}", *STYLEGAN2_TINY, "train.epochs=1", "eval.num_samples=32", "eval.batch_size=32",
            "data.resolution=16"]
    # one augmentation keeps it short (two trials): the full table is --grid augment=none,apa,diffaugment
    code, out, err = run_cli(capsys, "ablate", "regan", "--preset", "regan-stylegan2-fewshot", "--grid", "augment=apa",
                             *[a for s in sets for a in ("--set", s)], "--resources", "cpu=1,gpu=0",
                             "--output-dir", str(tmp_path), "--name", "table")
    assert code == 0, err
    run = tmp_path / "table"
    assert json.loads((run / "ablation.json").read_text())["grid"] == {"train.augment": ["apa"]}
    # no regan.enabled axis: Re-GAN adds its off cell per augmentation, and the tables keep the two apart
    cells = pd.read_parquet(run / "ablation_augment.parquet")
    assert sorted(zip(cells["augment"], cells["enabled"])) == [("apa", False), ("apa", True)]
    assert (cells["fid"] > 0).all() and (cells["epoch"] == 1).all()
    assert cells[cells["enabled"]]["regan_phase"].notna().all()
    means = pd.read_parquet(run / "ablation_augment_mean.parquet")
    assert sorted(means["enabled"]) == [False, True] and (means["seeds"] == 1).all()
    per_epoch = RunDir(run).read()
    per_epoch = per_epoch[per_epoch["stage"] == "train"]
    assert len(per_epoch) == 2 and per_epoch["augment_p"].notna().all()  # APA ran in both cells
    assert is_png(run / "plots" / "regan_fid_augment.png")
    assert f"raynas: plot   {run / 'plots' / 'regan_fid_augment.png'}" in out.splitlines()
