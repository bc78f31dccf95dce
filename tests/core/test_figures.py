"""Figures read back by content (series, ticks, legends, titles): each test draws from small hand-made results and
checks that the picture says what the data says (stage order, every edge, one colour per op, honest y-ranges,
trials named by seed, grid values as categories, genotype diagrams, and that `raynas report` redraws it all)."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest
from conftest import assert_user_error, run_cli
from figures import capture_figures, read_figure

from raynas.results import RunDir


def _ints(labels: list[str]) -> list[float]:
    """Tick labels as numbers (matplotlib writes a minus as U+2212)."""
    return [float(t.replace("\u2212", "-")) for t in labels if t]


def _eagan_run(tmp_path, name: str, stages=("g", "d"), rounds: int = 2, method: str = "eagan") -> RunDir:
    """An EAGAN search whose result parts are written per (stage, round) like the driver's, so that they are
    read back in file-name order: every d part before every g part, though g ran first."""
    run = RunDir.create(tmp_path, name, config={"method": method, "eagan": {"stages": list(stages)}}, seed=0,
                        preset="p", device="cpu")
    for stage in stages:
        for r in range(rounds):
            run.append([{"method": method, "stage": stage, "round": r, "epoch": r, "candidate_id": f"{stage}{r}-{i}",
                         "is_mean": 1.0 + r + i + (10 if stage == "d" else 0), "fid": 90.0 - r - i, "params": 10 + i}
                        for i in range(3)], key=f"{stage}-round{r:03d}")
    return run


def test_eagan_rounds_and_pareto_follow_the_order_the_stages_ran(tmp_path, monkeypatch):
    from raynas.plots import draw_run_plots

    run = _eagan_run(tmp_path, "decoupled")
    assert run.read()["stage"].iloc[0] == "d"  # the parts come back d first: the order must come from the run
    figures = capture_figures(monkeypatch)
    draw_run_plots(run)
    rounds = figures[(run.plots_dir / "rounds.png").resolve()]
    for ax, col in zip(rounds.axes, ("is_mean", "fid")):
        # g ran first: rounds 0-1 are g's, 2-3 d's; the stage boundary between them
        assert [line.label for line in ax.lines] == ax.legend == ["stage g", "stage d"]
        g, d = ax.lines
        assert (g.x, d.x) == ([0.0, 1.0], [2.0, 3.0]) and ax.vlines == [1.5]
        assert g.y[0] == (3.0 if col == "is_mean" else 88.0)  # g's round 0: best IS 1+0+2, best FID 90-0-2
        assert g.color != d.color  # each stage its own colour
        ticks = _ints(ax.xticklabels)
        assert ticks and all(t == int(t) for t in ticks)  # rounds are counted: integer ticks only
    pareto = figures[(run.plots_dir / "pareto.png").resolve()]
    assert [ax.title for ax in pareto.axes if ax.title] == ["g: candidates by round", "d: candidates by round"]


def test_compare_colours_every_stage_of_every_run_and_refuses_other_methods(tmp_path, capsys, monkeypatch):
    a, b = _eagan_run(tmp_path, "a"), _eagan_run(tmp_path, "b", stages=("gd",), rounds=3)
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "report", str(a.path), "--compare", str(b.path))
    assert code == 0, err
    compare = figures[(a.plots_dir / "compare.png").resolve()]
    for ax in compare.axes:
        assert ax.legend == ["a g", "a d", "b gd"]
        assert [line.x for line in ax.lines] == [[0.0, 1.0], [2.0, 3.0], [0.0, 1.0, 2.0]]
        assert len({line.color for line in ax.lines}) == 3
        assert all(t == int(t) for t in _ints(ax.xticklabels))
    other = RunDir.create(tmp_path, "darts-run", config={"method": "darts"}, seed=0, preset="p", device="cpu")
    other.append([{"method": "darts", "stage": "search", "epoch": 1, "candidate_id": "t", "val_acc": 0.5}])
    code, out, err = run_cli(capsys, "report", str(a.path), "--compare", str(other.path))
    assert_user_error(code, err, "different methods", "a (eagan)", "darts-run (darts)")
    assert len(err.strip().splitlines()) == 1
    empty = RunDir.create(tmp_path, "no-rounds", config={"method": "eagan"}, seed=0, preset="p", device="cpu")
    empty.append([{"method": "eagan", "stage": "g", "epoch": 0, "candidate_id": "x", "fid": 50.0}])
    code, out, err = run_cli(capsys, "report", str(a.path), "--compare", str(empty.path))
    assert_user_error(code, err, "no-rounds has no per-round search results")


def _alpha_rows(edges: dict[str, int], epochs: int, value, genotype: str, seeds=(0,)) -> list[dict]:
    return [{"stage": "search", "epoch": e, "seed": s, "candidate_id": f"30b1d_0000{s}", "genotype": genotype,
             "alpha_table": json.dumps({edge: [value(s, e, edge, i) for i in range(n)] for edge, n in edges.items()})}
            for s in seeds for e in range(1, epochs + 1)]


def test_swd_alpha_plot_draws_every_edge_of_every_cell(tmp_path, monkeypatch):
    from raynas.plots import draw_alpha_evolution

    edges = {f"cell{c}.edge{e}": 8 for c in range(5) for e in range(14)}  # SWD-NAS: 5 cells x 14 edges
    rows = _alpha_rows(edges, 2, lambda s, e, edge, i: 0.3 if i == 2 else 0.1, json.dumps({"space": "swd-nas"}))
    figures = capture_figures(monkeypatch)
    out = draw_alpha_evolution(pd.DataFrame(rows), tmp_path / "alpha.png")
    drawn = [ax.title for ax in figures[out.resolve()].visible_axes()]
    assert drawn == list(edges)  # all 70, cells 2-4 included


def test_damgan_alpha_plot_one_colour_per_op_a_y_label_and_a_range_that_does_not_magnify_noise(tmp_path,
                                                                                                monkeypatch):
    from raynas.plots import draw_alpha_evolution
    from raynas.spaces import get_space

    space = get_space("damgan-g")
    genotype = space.sample(random.Random(0)).to_json()
    edges = {name: len(cands) for name, (*_, cands) in zip(space.edge_names(), space.edges())}
    # DA's α is a mean attention around 2: differences of a few thousandths are noise
    rows = _alpha_rows(edges, 3, lambda s, e, edge, i: 2.0 + 0.01 * ((i + e) % 3 - 1), genotype)
    figures = capture_figures(monkeypatch)
    fig = figures[draw_alpha_evolution(pd.DataFrame(rows), tmp_path / "alpha.png").resolve()]
    colours: dict[str, set] = {}
    for ax in fig.visible_axes():
        for line in ax.lines:
            colours.setdefault(line.label, set()).add(line.color)
        span = _ints(ax.yticklabels)  # shared y: the first panel of each row carries the labels
        assert not span or max(span) - min(span) >= 0.4  # not a 1.98-2.01 axis
        assert all(t == int(t) for t in _ints(ax.xticklabels))  # epochs are counted
    assert _ints(fig.visible_axes()[0].yticklabels) and _ints(fig.visible_axes()[-1].xticklabels)
    assert all(len(c) == 1 for c in colours.values())  # an op has one colour in every panel ...
    by_colour = {next(iter(c)) for c in colours.values()}
    assert len(by_colour) == len(colours) >= 6  # ... and no two ops share one
    assert sorted(fig.legends[0]) == sorted(colours)
    assert fig.supylabel.startswith("α")


def test_darts_alpha_plot_keeps_uniform_weights_on_a_wide_axis_says_so_and_draws_every_seed(tmp_path, monkeypatch):
    from raynas.plots import draw_alpha_evolution

    edges = {f"normal.{k}": 8 for k in range(14)}
    rows = _alpha_rows(edges, 2, lambda s, e, edge, i: 0.125 + (0.0003 if i == s else -0.0003 / 7),
                       json.dumps({"space": "darts"}), seeds=(0, 1))
    figures = capture_figures(monkeypatch)
    fig = figures[draw_alpha_evolution(pd.DataFrame(rows), tmp_path / "alpha.png").resolve()]
    ax = fig.visible_axes()[0]
    ticks = _ints(ax.yticklabels)
    assert min(ticks) <= 0.0 and max(ticks) >= 1.0  # softmax weights on [0, 1], not 0.1248-0.1254
    assert "seed=0" in fig.suptitle and "seed=1" in fig.suptitle and "near uniform" in fig.suptitle
    assert sorted({line.ls for line in ax.lines}) == ["-", "--"]  # one line style per seed ...
    assert len(ax.lines) == 16 and "seed=0 (-)" in fig.legends[0] and "seed=1 (--)" in fig.legends[0]


def test_curves_are_labelled_by_seed_and_regan_titles_name_no_trial(tmp_path, monkeypatch):
    from raynas.methods.regan.figures import draw_regan_curves
    from raynas.plots import draw_training_curves

    rows = [{"candidate_id": f"30b1d_0000{s}", "seed": s, "stage": "train", "epoch": e, "fid": 50.0 - e - s,
             "regan_phase": "sparse" if e == 2 else "dense", "regan_sparsity": 0.3, "regan_sparsity_min": 0.1,
             "regan_sparsity_max": 0.5}
            for s in (0, 1) for e in (1, 2, 3)]
    df = pd.DataFrame(rows)
    figures = capture_figures(monkeypatch)
    curves = figures[draw_training_curves(df, tmp_path / "curves.png").resolve()]
    assert curves.axes[-1].legend == ["seed=0", "seed=1"]
    grid = df.assign(k=[2, 2, 2, 4, 4, 4], seed=0)  # two grid cells, one seed: the grid value tells them apart
    assert figures[draw_training_curves(grid, tmp_path / "g.png", label_by=["k"]).resolve()].axes[-1].legend == [
        "k=2, seed=0", "k=4, seed=0"]
    regan = figures[draw_regan_curves(df, tmp_path / "regan.png").resolve()]
    titles = [ax.title for ax in regan.axes]
    assert not any("30b1d" in t for t in titles)
    for seed in (0, 1):
        assert f"sparsity of G at the epoch's end (seed={seed})" in titles
    assert regan.axes[0].legend == ["overall", "min–max over G's weight tensors"]


def test_grid_axes_are_categories_without_lines(tmp_path, monkeypatch):
    from raynas.plots import draw_grid

    means = pd.DataFrame({"k": [2, 4, 2, 4], "ua": [True, True, False, False], "test_acc_mean": [0.5, 0.6, 0.4, 0.7],
                          "test_acc_std": [0.1, 0.0, 0.05, 0.02]})
    figures = capture_figures(monkeypatch)
    ax = figures[draw_grid(means, ["k", "ua"], [("test_acc", "max")], tmp_path / "g.png").resolve()].axes[0]
    assert ax.xticklabels == ["2", "4"] and ax.legend == ["ua=False", "ua=True"]
    off, on = ax.errorbars
    assert all(s.ls == "None" for s in ax.errorbars)  # no line claims values between k=2 and k=4
    assert [round(x) for x in off.x] == [round(x) for x in on.x] == [0, 1]  # evenly spaced, side by side
    assert off.x[0] < on.x[0] and off.y == [0.4, 0.7] and off.yerr.tolist() == pytest.approx([0.05, 0.02])


def test_genotype_diagram_readable_labels_no_collisions_and_a_legend_for_none_and_dead_edges():
    from matplotlib.patches import Circle, FancyArrowPatch

    from raynas.spaces import get_space
    from raynas.spaces.draw import render_cells
    from raynas.spaces.eagan import EAGAN_CIFAR10_G

    space = get_space("eagan-g")
    for genotype in (EAGAN_CIFAR10_G, *(space.sample(random.Random(s)) for s in range(4))):
        fig = render_cells(genotype)
        data = read_figure(fig)
        (ax,) = fig.axes
        edges = space.edge_list(genotype)
        nodes = {n for s, d, _ in edges for n in (s, d)}
        width = fig.get_size_inches()[0]
        node_texts = [t for t in ax.texts if t.get_text() in nodes]
        assert len(node_texts) == len(nodes)
        assert all(t.get_fontsize() >= min(12.0, 0.5 * width) for t in node_texts)  # grows with the figure
        renderer = fig.canvas.get_renderer()
        boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in ax.texts if t not in node_texts]
        circles = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, Circle)]
        for i, a in enumerate(boxes):
            assert not any(a.overlaps(b) for b in boxes[i + 1:]), "two edge labels collide"
            assert not any(a.overlaps(c) for c in circles), "an edge label covers a node"
        # dead edges are the ones the space itself calls dead (the fixed cross-cell skips are never searched)
        searched = [(s, d) for s, d, op in edges if not op.endswith(" skip")]
        dead = sorted(searched[k] for k in space.dead_edges(space.encode(genotype)))
        dotted = [p for p in ax.patches if isinstance(p, FancyArrowPatch) and p.get_linestyle() == ":"]
        assert len(dotted) == len(dead)
        legend = data.legends[0]
        assert ("none: no connection" in legend) == any(op == "none" for *_, op in edges)
        assert ("dead: its output never reaches the network's output" in legend) == bool(dead)
    assert any(space.dead_edges(space.encode(EAGAN_CIFAR10_G)) for _ in [0])  # the paper's G has a dead edge


def test_report_redraws_every_plot_the_run_drew(tmp_path, capsys, monkeypatch):
    from raynas.methods.dartsgal.genotype import DartsGalGenotype, load_source
    from raynas.results.ablation import ABLATION_FILE

    grid = RunDir.create(tmp_path, "swd-ablation", config={"method": "swd-nas"}, seed=0, preset="p", device="cpu")
    (grid.path / ABLATION_FILE).write_text(json.dumps({"grid": {"swd.k": [2, 4]}, "seeds": 2}))
    grid.append([{"method": "swd-nas", "stage": "retrain", "k": k, "seed": s, "epoch": 1,
                  "candidate_id": f"t{k}{s}", "test_acc": 0.5 + k / 10 + s / 100, "params": 100 * k,
                  "search_seconds": 10.0 + s} for k in (2, 4) for s in (0, 1)])
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "report", str(grid.path))
    assert code == 0, err
    for name in ("ablation_k.png", "best_of_seeds_k.png", "curves.png"):
        assert f"raynas: plot {grid.plots_dir / name}" in out.splitlines(), out
    best = figures[(grid.plots_dir / "best_of_seeds_k.png").resolve()].axes[0]
    assert best.line("best of seeds (max)").y == [0.71, 0.91] and best.xticklabels == ["2", "4"]
    assert figures[(grid.plots_dir / "curves.png").resolve()].axes[0].legend == [
        "k=2, seed=0", "k=2, seed=1", "k=4, seed=0", "k=4, seed=1"]

    pruned = RunDir.create(tmp_path, "gal", config={"method": "darts-gal"}, seed=0, preset="p", device="cpu")
    pruned.append([{"method": "darts-gal", "stage": "final", "epoch": 1, "candidate_id": "t", "test_acc": 0.5}])
    DartsGalGenotype.full(load_source("darts-v2"), 3, 4, 1).save(pruned.path / "pruned.json")
    code, out, err = run_cli(capsys, "report", str(pruned.path))
    assert code == 0 and f"raynas: plot {pruned.plots_dir / 'pruned.png'}" in out.splitlines(), err
    assert figures[(pruned.plots_dir / "pruned.png").resolve()].suptitle.startswith("darts-gal: 12 of 12 nodes kept")

    edge = RunDir.create(tmp_path, "edge", config={"method": "damgan"}, seed=0, preset="p", device="cpu")
    edge.append([{"method": "damgan", "stage": "edge", "epoch": 1, "candidate_id": "t", "is_mean": 2.0}])
    pd.DataFrame({"op": ["conv_1x1", "conv_3x3"], "alpha_weight": [0.2, 0.8], "is_mean": [2.0, 3.0]}).to_parquet(
        edge.path / "ablation_edge.parquet")
    (edge.path / "edge_correlation.json").write_text(json.dumps(
        {"edge": "cell0.normal[0]", "selector": "da", "is": {"pearson": 1.0, "spearman": 1.0}}))
    code, out, err = run_cli(capsys, "report", str(edge.path))
    assert code == 0 and f"raynas: plot {edge.plots_dir / 'ablation_edge.png'}" in out.splitlines(), err
    (points,) = figures[(edge.plots_dir / "ablation_edge.png").resolve()].axes[0].scatters
    assert points.xy.tolist() == [[0.2, 2.0], [0.8, 3.0]]


@pytest.mark.parametrize("stages", [("g", "d")])
def test_stage_order_from_the_config_else_the_usual_order(stages):
    from raynas.plots import stage_order

    df = pd.DataFrame({"stage": ["d", "g", "retrain", "search"]})
    assert stage_order(df, stages) == ["g", "d", "search", "retrain"]
    assert stage_order(df, ["d", "g"]) == ["d", "g", "search", "retrain"]


@pytest.fixture
def toy_figure():
    """A figure registered from this test module (as a method's figures module would), drawn only for runs
    with a ``toy_score`` column, listed between the genotype diagrams and the ablation grids; forgotten after."""
    from raynas.plots import register_run_figure, unregister_run_figure
    from raynas.plots.common import plt, save
    from raynas.plots.registry import ARCHITECTURES

    drawn: list[str] = []

    def draw(run: RunDir, df: pd.DataFrame):
        drawn.append(run.path.name)
        fig, ax = plt.subplots()
        ax.plot(df["epoch"], df["toy_score"], label="toy score")
        return save(fig, run.plots_dir / "toy.png")

    register_run_figure("toy", draw, lambda run, df: "toy_score" in df, order=ARCHITECTURES + 5)
    yield drawn
    unregister_run_figure("toy")


def test_a_registered_figure_is_drawn_by_report_where_it_applies_and_nowhere_else(tmp_path, capsys, monkeypatch,
                                                                                  toy_figure):
    from raynas.plots import draw_run_plots

    toy = RunDir.create(tmp_path, "toy", config={"method": "darts"}, seed=0, preset="p", device="cpu")
    toy.append([{"method": "darts", "stage": "search", "epoch": e, "candidate_id": "t", "val_acc": 0.5,
                 "toy_score": 2.0 * e} for e in (1, 2)])
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "report", str(toy.path))
    assert code == 0, err
    plots = [line for line in out.splitlines() if line.startswith("raynas: plot ")]
    assert plots == [f"raynas: plot {toy.plots_dir / name}" for name in ("curves.png", "toy.png")]  # in order
    assert figures[(toy.plots_dir / "toy.png").resolve()].axes[0].line("toy score").y == [2.0, 4.0]
    assert toy_figure == ["toy"]

    other = RunDir.create(tmp_path, "other", config={"method": "darts"}, seed=0, preset="p", device="cpu")
    other.append([{"method": "darts", "stage": "search", "epoch": 1, "candidate_id": "t", "val_acc": 0.5}])
    assert draw_run_plots(other) == [other.plots_dir / "curves.png"]  # not a run it applies to: never drawn
    assert toy_figure == ["toy"] and not (other.plots_dir / "toy.png").exists()
