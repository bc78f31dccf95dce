"""SWD-NAS through the CLI: bad input gets exit 2 and one message before anything runs, `arch show` speaks the darts
keys, the presets resolve to the paper's settings, and a tiny search runs end to end in the shared Ray."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_user_error, run_cli
from figures import capture_figures, is_png

from raynas.config import load_config
from raynas.methods import get_method
from raynas.results import format_table
from raynas.spaces import Genotype

TINY = ("--set", "swd.channels=4", "--set", "swd.k=2", "--set", "swd.steps=2", "--set", "swd.multiplier=2",
        "--set", "swd.epochs=1", "--set", "swd.batch_size=16", "--set", "data.limit=48", "--set", "data.test_limit=32",
        "--set", "model.channels=4", "--set", "model.layers=5")


@pytest.mark.parametrize("argv, fragments", [
    (("search", "swd-nas", "--set", "swd.k=3"), ("swd.k=3 does not divide", "Valid k: 1, 2, 4, 8")),
    (("search", "swd-nas", "--set", "swd.channels=16", "--set", "swd.k=32"), ("swd.k=32", "1, 2, 4, 8, 16")),
    (("search", "swd-nas", "--set", "swd.ua_pool=gmp"), ("swd.ua_pool", "'gmp' is not allowed", "gap, gap+gmp")),
    (("search", "swd-nas", "--set", "swd.la_pool=avg"), ("swd.la_pool", "'avg' is not allowed")),
    (("search", "swd-nas", "--set", "swd.layers=4"), ("swd.layers", "below the minimum 5")),
    (("ablate", "swd-nas", "--grid", "k=4,3"), ("swd.k=3 does not divide", "Valid k")),
    (("ablate", "swd-nas", "--grid", "ua_pool=gap,max"), ("swd.ua_pool", "'max' is not allowed")),
])
def test_bad_settings_exit_2_before_any_run(capsys, tmp_path, argv, fragments):
    code, _, err = run_cli(capsys, *argv, "--preset", "quickstart-classify", "--output-dir", str(tmp_path))
    assert_user_error(code, err, *fragments)
    assert not any(tmp_path.iterdir())  # no run directory, no trial


def test_a_genotype_with_the_wrong_number_of_cells_exits_2(capsys, tmp_path):
    g = json.loads(Genotype.load("swd-nas-cifar10").to_json())
    g["cells"] = g["cells"][:4]
    bad = tmp_path / "four.json"
    bad.write_text(json.dumps(g))
    for argv in (("arch", "show", str(bad)), ("retrain", str(bad), "--preset", "swd-nas-cifar10", "--output-dir",
                                                str(tmp_path / "runs"))):
        code, _, err = run_cli(capsys, *argv)
        assert_user_error(code, err, "exactly 5 cells", "this one has 4")
    assert not (tmp_path / "runs").exists()


def test_arch_show_has_the_darts_keys_and_draws(capsys, tmp_path, monkeypatch):
    code, out, _ = run_cli(capsys, "arch", "show", "swd-nas-cifar10", "--json")
    assert code == 0
    summary = json.loads(out)
    code, out, _ = run_cli(capsys, "arch", "show", "darts-v2", "--json")
    assert set(summary) == set(json.loads(out))
    assert summary["params"] == 3_169_198 and summary["layers"] == 20 and summary["channels"] == 36
    assert summary["reduction_positions"] == [6, 13]
    png = tmp_path / "swd.png"
    figures = capture_figures(monkeypatch)
    code, out, _ = run_cli(capsys, "arch", "show", "swd-nas-cifar10", "--layers", "8", "--channels", "16",
                           "--dataset", "cifar100", "--png", str(png))
    assert code == 0 and is_png(png)
    lines = out.splitlines()
    assert lines[0] == "swd-nas  8 cells, C=16, 32x32x3, 100 classes, reductions at [2, 5]"
    assert lines[-1] == f"raynas: diagram {png}"
    # the diagram: the genotype's five cells, one panel each, with their four nodes and their own ops on the edges
    genotype = Genotype.load("swd-nas-cifar10")
    panels = figures[png.resolve()].axes
    assert [ax.title for ax in panels] == ["cell 0 (normal)", "cell 1 (reduce)", "cell 2 (normal)",
                                           "cell 3 (reduce)", "cell 4 (normal)"]
    for ax, cell in zip(panels, genotype.cells):
        nodes = {"$c_{k-2}$", "$c_{k-1}$", "$c_{k}$", "0", "1", "2", "3"}
        texts = ax.text_strings()
        assert set(texts) & nodes == nodes
        assert sorted(t for t in texts if t not in nodes) == sorted(op for op, _ in cell.ops)


def test_presets_hold_the_paper_settings_and_retrain_the_shipped_genotype():
    from raynas.build import build_classifier
    from raynas.nn.darts_net import count_parameters

    cfg = load_config("swd-nas-cifar10", method="swd-nas")
    s = cfg.swd
    assert (s.k, s.layers, s.channels, s.epochs, s.batch_size, s.lr, s.lr_min, s.momentum, s.weight_decay,
            s.grad_clip) == (4, 5, 16, 30, 64, 0.025, 0.001, 0.9, 3e-4, 5.0)
    assert (s.ua, s.ua_pool, s.la_pool, s.awn, s.residual, s.stats) == (True, "gap+gmp", "gap", True, True, "val")
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.train.cutout_length, cfg.train.auxiliary_weight,
            cfg.train.drop_path_prob, cfg.model.layers, cfg.model.channels) == (96, 600, 16, 0.4, 0.2, 20, 36)
    assert load_config("swd-nas-cifar100", method="swd-nas").data.name == "cifar100"
    # what `raynas retrain swd-nas-cifar10 --preset swd-nas-cifar10` builds (the genotype's space picks the net)
    rcfg = load_config("swd-nas-cifar10", ["model.genotype=swd-nas-cifar10"], method="train")
    with torch.device("meta"):
        assert count_parameters(build_classifier(rcfg)) == 3_169_198
    # Table II: the CIFAR-10 cells transferred to ImageNet, 20 cells, C=48 (paper: 6.3M)
    icfg = load_config("swd-nas-imagenet")
    assert (icfg.data.name, icfg.model.imagenet, icfg.train.batch_size, icfg.train.label_smoothing) == (
        "imagenet", True, 256, 0.1)
    with torch.device("meta"):
        assert count_parameters(build_classifier(icfg)) == 6_280_192
    method = get_method("swd-nas")
    assert method.section == "swd" and method.outputs == ("best.json", "alpha.json")


def test_tiny_search_end_to_end_in_ray(ray_session, capsys, tmp_path):
    from raynas.nn.registry import build_network
    from raynas.results import RunDir
    from raynas.results.schema import shown_columns

    code, out, err = run_cli(capsys, "search", "swd-nas", "--preset", "quickstart-classify", *TINY,
                             "--output-dir", str(tmp_path), "--name", "tiny")
    assert code == 0, err
    run = tmp_path / "tiny"
    best = Genotype.load(run / "best.json")
    assert best.space == "swd-nas" and len(best.cells) == 5
    assert all(op != "none" for cell in best.cells for op, _ in cell.ops)
    net = build_network(best, channels=1, width=4, layers=5, num_classes=10)
    assert net(torch.randn(2, 1, 32, 32))[0].shape == (2, 10)
    alpha = json.loads((run / "alpha.json").read_text())
    assert len(alpha) == 5 * 5 and all(sum(v) == pytest.approx(1.0) for v in alpha.values())
    rows = RunDir.open(run).read()
    rows = rows[rows["stage"] == "search"]
    assert len(rows) == 1 and rows["k"].iloc[0] == 2
    table = json.loads(rows["alpha_table"].iloc[0])
    assert set(table) == set(alpha) and all(table[e] == pytest.approx(alpha[e]) for e in alpha)
    assert rows["params"].iloc[0] > 0
    # the row's validation accuracy and loss are the ones the trial reported to Tune, and the printed table is
    # the row
    (result_file,) = list((run / "tune").rglob("result.json"))
    last = json.loads(result_file.read_text().strip().splitlines()[-1])
    assert (rows["val_acc"].iloc[0], rows["val_loss"].iloc[0]) == (last["val_acc"], last["val_loss"])
    assert format_table(rows, columns=list(shown_columns(rows, "swd-nas"))) in out
    assert f"raynas: swd-nas search finished: {run}" in out.splitlines()


def test_every_swd_grid_draws_its_best_of_seeds_plot(tmp_path, monkeypatch):
    """Fig. 4's picture (best of seeds and search cost per k) is written for every `raynas ablate swd-nas` grid."""
    import pandas as pd

    from raynas.methods.swdnas.ablation import ablation_plots

    cells = pd.DataFrame({"k": [2, 2, 4, 4], "seed": [0, 1, 0, 1], "test_acc": [0.5, 0.6, 0.7, 0.65],
                          "search_seconds": [10.0, 12.0, 8.0, 9.0]})
    figures = capture_figures(monkeypatch)
    out = ablation_plots(cells, pd.DataFrame(), ["k"], tmp_path)
    assert out == [tmp_path / "best_of_seeds_k.png"] and is_png(out[0])
    acc, cost = figures[out[0].resolve()].axes
    # left: every seed's accuracy as a dot, the best per k as a marker; right: the mean search time, min-max bars.
    # k is a grid of chosen values: evenly spaced categories (k=2 at 0, k=4 at 1), no line joining them
    assert [dots.xy.tolist() for dots in acc.scatters] == [[[0, 0.5], [0, 0.6]], [[1, 0.7], [1, 0.65]]]
    best = acc.line("best of seeds (max)")
    assert best.xy.tolist() == [[0, 0.6], [1, 0.7]] and best.ls == "None"
    assert (acc.ylabel, acc.xlabel, acc.xticklabels, acc.legend) == ("test_acc", "k", ["2", "4"],
                                                                     ["every seed", "best of seeds (max)"])
    (spent,) = cost.errorbars
    assert spent.xy.tolist() == [[0, 11.0], [1, 8.5]] and spent.yerr.tolist() == [1.0, 0.5] and spent.ls == "None"
    assert (cost.ylabel, cost.xlabel, cost.xticklabels) == ("search cost (seconds, mean, min-max)", "k", ["2", "4"])
    assert ablation_plots(cells.drop(columns="test_acc"), pd.DataFrame(), ["k"], tmp_path / "none") == []
