"""DAMGAN search on Ray Tune: the search loop, fixed-op subnets, the CLI, the k' and edge ablations."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_user_error, run_cli
from figures import capture_figures, is_png

from raynas.cli import main
from raynas.config import load_config
from raynas.errors import ConfigError, GenotypeError
from raynas.gan.preflight import preflight
from raynas.methods.damgan.edges import check_edge_ops, edge_correlation, parse_edge, with_edge_op
from raynas.methods.damgan.generator_search import DamganSearch
from raynas.nn.attention import AttentionEdge
from raynas.nn.damgan_g import DamganSupernet, SupernetSubnet
from raynas.results import RunDir, format_table
from raynas.spaces import Genotype, get_space
from raynas.spaces.damgan import NORMAL_CANDIDATES, UP_CANDIDATES

SPACE = get_space("damgan-g")
TINY = [  # damgan.* drive the search, train.* the retrains
    "damgan.search_gf_dim=8", "damgan.kprime=2", "damgan.reduction=4",
    "damgan.iters_per_epoch=2", "damgan.gen_batch_size=8", "damgan.dis_batch_size=8", "damgan.epochs=1",
    "damgan.eval_every=0",
    "model.latent_dim=16", "model.gf_dim=8", "model.df_dim=8",
    "train.iters_per_epoch=2", "train.gen_batch_size=8", "train.dis_batch_size=8", "train.epochs=1",
    "data.limit=256", "eval.num_samples=64", "eval.batch_size=64", "eval.every=0",
]


@pytest.fixture
def one_thread():
    """Tiny convs on 2 shared cores run ~10x faster single-threaded (no thread-pool contention)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(tmp_path, *extra):
    return load_config("quickstart", [*TINY, f"run.output_dir={tmp_path}", *extra])


# ============================================================================ fixed-op mode
@pytest.mark.parametrize("selector", ["da", "darts"])
def test_fixed_op_paths_are_the_weighted_groups_of_the_mixture(selector):
    torch.manual_seed(0)
    edge = AttentionEdge("normal", NORMAL_CANDIDATES, 8, kprime=1, reduction=4, selector=selector)
    edge.train()
    x = torch.randn(3, 8, 6, 6)
    mixture = edge(x)
    recorded = float(edge.alpha_count)
    fixed = []
    for name in NORMAL_CANDIDATES:
        edge.fix(name)
        fixed.append(edge(x))
    edge.fix(None)
    # k' = 1: every map goes through the ops, so the mixture is exactly the sum of the single-op paths.
    torch.testing.assert_close(sum(fixed), mixture, rtol=1e-5, atol=1e-6)
    assert float(edge.alpha_count) == recorded  # fixed-op passes record no α, even in training mode
    # The darts path of op j is softmax(α)_j · op_j(UA-weighted x).
    if selector == "darts":
        x_w = x * edge.ua(x)[:, :, None, None]
        w = torch.softmax(edge.arch, 0)[2]
        torch.testing.assert_close(fixed[2], w * edge.ops[NORMAL_CANDIDATES[2]](x_w))
    torch.testing.assert_close(edge(x), mixture)  # back to the mixture
    with pytest.raises(GenotypeError, match="conv_9x9"):
        edge.fix("conv_9x9")


def test_supernet_subnet_runs_the_genotype_path_and_restores_the_mixture():
    torch.manual_seed(0)
    G = DamganSupernet(latent_dim=8, gf_dim=8, resolution=32, out_channels=1, kprime=2, reduction=4)
    g = SPACE.decode([1] * len(SPACE.edge_names()))
    z = torch.randn(4, 8)
    sub = SupernetSubnet(G, g).eval()
    with torch.no_grad():
        y = sub(z)
        mixture = G(z)
        with G.fixed(g):
            y2 = G(z)
    assert y.shape == (4, 1, 32, 32) and bool(y.abs().le(1).all())
    torch.testing.assert_close(y, y2)
    assert not torch.allclose(y, mixture)
    assert all(edge.fixed is None for _, edge in G.named_edges())
    with G.fixed(g):
        assert {e.fixed for _, e in G.named_edges()} == {1}


# ============================================================================ search loop
def test_search_epoch_records_alpha_derives_and_resumes_exactly(tmp_path, one_thread):
    # train.* differs from damgan.*: the search must read only damgan.* (train.* is the retrain's).
    cfg = tiny_config(tmp_path, "train.iters_per_epoch=5", "train.dis_batch_size=4", "train.lr_g=0.01")
    twin = DamganSearch(cfg, device=torch.device("cpu"))  # the same seed: the same two steps, taken by hand
    twin.begin_epoch()
    steps = []
    for _ in range(2):
        steps.append(twin.train_step())
        twin.step += 1
    a = DamganSearch(cfg, device=torch.device("cpu"))  # seeds the global RNGs again
    assert a.iters_per_epoch == 2 and (a.step_cfg.gen_batch_size, a.step_cfg.dis_batch_size) == (8, 8)
    assert a.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4) == a.opt_d.param_groups[0]["lr"]
    stats = a.train_epoch()
    assert a.epoch == 1 and a.step == 2
    assert stats["d_loss"] == pytest.approx((steps[0]["d_loss"] + steps[1]["d_loss"]) / 2, rel=1e-6)
    assert stats["g_loss"] == pytest.approx((steps[0]["g_loss"] + steps[1]["g_loss"]) / 2, rel=1e-6)
    # n_critic = 1: each of the 2 steps runs G in training mode twice (D's fakes, then G's update).
    for _, edge in a.G.named_edges():
        assert float(edge.alpha_count) == 4
    table = a.alpha_table()
    assert set(table) == set(SPACE.edge_names())
    g = a.derive_genotype()
    vector = SPACE.encode(g)
    assert vector == [int(np.argmax(table[n])) for n in SPACE.edge_names()]
    stats_ = a.alpha_stats()
    assert all(0 <= s["entropy"] <= math.log(6) + 1e-9 and 0 <= s["margin"] <= 1 for s in stats_.values())
    # The weight optimiser holds every supernet weight (attention MLPs included), no architecture vector.
    assert sum(p.numel() for grp in a.opt_g.param_groups for p in grp["params"]) == \
        sum(p.numel() for p in a.G.parameters())
    # Resume: a fresh search loaded from the state continues exactly like the original.
    state = a.state_dict()
    b = DamganSearch(cfg, device=torch.device("cpu"))
    b.load_state_dict(copy.deepcopy(state))  # state dicts (and loaded optimiser states) alias live tensors
    assert b.epoch == 1 and b.step == 2
    state = copy.deepcopy(state)
    a.load_state_dict(copy.deepcopy(state))  # the global RNG is shared in-process: restore it before each run
    la = a.train_epoch()
    b.load_state_dict(copy.deepcopy(state))
    lb = b.train_epoch()
    assert la["d_loss"] == pytest.approx(lb["d_loss"]) and la["g_loss"] == pytest.approx(lb["g_loss"])
    flat = [sum(a.alpha_table().values(), []), sum(b.alpha_table().values(), [])]
    assert flat[0] == pytest.approx(flat[1])


def test_darts_selector_single_and_bilevel(tmp_path, one_thread):
    single = DamganSearch(tiny_config(tmp_path, "damgan.selector=darts", "damgan.arch_lr=0.05"),
                          device=torch.device("cpu"))
    arch0 = [p.detach().clone() for p in single.G.arch_parameters()]
    assert len(arch0) == len(SPACE.edge_names())
    weight_ids = {id(p) for grp in single.opt_g.param_groups for p in grp["params"]}
    assert not weight_ids & {id(p) for p in single.G.arch_parameters()}
    out = single.train_epoch()
    assert "arch_loss" not in out
    assert any(not torch.equal(a, p) for a, p in zip(arch0, single.G.arch_parameters()))

    bilevel = tiny_config(tmp_path, "damgan.selector=darts", "damgan.bilevel=true", "damgan.arch_lr=0.05")
    twin = DamganSearch(bilevel, device=torch.device("cpu"))
    twin.begin_epoch()
    arch_losses = []
    for _ in range(twin.iters_per_epoch):
        arch_losses.append(twin.train_step()["arch_loss"])
        twin.step += 1
    bi = DamganSearch(bilevel, device=torch.device("cpu"))
    arch0 = [p.detach().clone() for p in bi.G.arch_parameters()]
    out = bi.train_epoch()
    assert out["arch_loss"] == pytest.approx(sum(arch_losses) / len(arch_losses), rel=1e-6)  # one α step per G step
    assert any(not torch.equal(a, p) for a, p in zip(arch0, bi.G.arch_parameters()))
    # The weight steps never accumulate gradients into α (it is stepped only by its own optimiser).
    assert all(not p.requires_grad and p.grad is None for p in bi.G.arch_parameters())
    g = bi.derive_genotype()
    assert SPACE.encode(g) == [int(np.argmax(a)) for a in bi.alpha_table().values()]
    with pytest.raises(ConfigError, match="darts selector only"):
        DamganSearch(tiny_config(tmp_path, "damgan.bilevel=true"), device=torch.device("cpu"))


def _due_epochs(search: DamganSearch, epochs: int) -> list[int]:
    due = []
    for epoch in range(1, epochs + 1):
        search.epoch = epoch
        if search.eval_due():
            due.append(epoch)
    return due


def test_eval_due_follows_damgan_eval_every_and_epochs(tmp_path, one_thread):
    # eval.every (the retrain's interval) differs: the search must follow damgan.eval_every.
    search = DamganSearch(tiny_config(tmp_path, "damgan.epochs=5", "damgan.eval_every=2", "eval.every=1"),
                          device=torch.device("cpu"))
    assert _due_epochs(search, 5) == [2, 4, 5]  # every 2nd epoch, and the last one
    search = DamganSearch(tiny_config(tmp_path, "damgan.epochs=3", "eval.every=1"), device=torch.device("cpu"))
    assert _due_epochs(search, 3) == [3]  # TINY's damgan.eval_every=0: the last epoch only


# ============================================================================ edge ablation helpers
def test_edge_parsing_and_op_swap():
    assert parse_edge("cell0:1->3") == "cell0.normal[0]"
    assert parse_edge("cell2:3->4") == "cell2.normal[2]"
    assert parse_edge("cell1:0->2") == "cell1.up[1]"
    assert parse_edge("cell2.skip[1]") == "cell2.skip[1]"
    for bad in ("cell3:1->3", "cell0:1->4", "edge"):
        with pytest.raises(ConfigError, match="cell0:1->3"):
            parse_edge(bad)
    base = SPACE.decode([0] * len(SPACE.edge_names()))
    g = with_edge_op(base, "cell0.normal[0]", "sep_conv_5x5")
    assert g.cells[0]["normal"] == ("sep_conv_5x5", "conv_1x1", "conv_1x1")
    assert SPACE.encode(g)[2] == NORMAL_CANDIDATES.index("sep_conv_5x5")
    assert with_edge_op(base, "cell2.skip[1]", "deconv").cells[2]["skip"] == ("nearest", "deconv")
    assert check_edge_ops("cell1.up[0]", ["deconv", "nearest"]) == ("deconv", "nearest")
    with pytest.raises(GenotypeError, match="unknown op 'conv_3x3'.*nearest, bilinear, deconv"):
        check_edge_ops("cell1.up[0]", ["conv_3x3"])
    assert UP_CANDIDATES == ("nearest", "bilinear", "deconv")


def test_edge_correlation_matches_reference_formulas():
    w = [0.9, 0.5, 0.7, 0.1, 0.3]
    s = [6.0, 4.0, 5.5, 2.0, 4.5]
    c = edge_correlation(w, s)
    assert c["pearson"] == pytest.approx(np.corrcoef(w, s)[0, 1])
    rank = lambda v: np.argsort(np.argsort(v)).astype(float)  # noqa: E731  (no ties here)
    assert c["spearman"] == pytest.approx(np.corrcoef(rank(w), rank(s))[0, 1])
    assert c["spearman"] == pytest.approx(0.9) and c["n"] == 5
    assert edge_correlation([1, 2, 3], [3, 2, 1])["spearman"] == pytest.approx(-1.0)
    assert math.isnan(edge_correlation([1, 2], [1, 2])["pearson"])          # too few points
    assert math.isnan(edge_correlation([1, 1, 1], [1, 2, 3])["spearman"])  # constant weights
    assert edge_correlation([1, 2, 3, float("nan")], [1, 2, 4, 5])["n"] == 3


def test_ablation_summaries_aggregate_over_seeds(tmp_path, monkeypatch):
    from raynas.methods.damgan.edges import draw_kprime, edge_summary, kprime_summary
    from raynas.methods.damgan.figures import draw_edge_ablation as draw_edge

    rows = [{"stage": "search", "kprime": 1, "selector": "da", "seed": 0, "epoch": 1, "is_mean": 9.0}]
    for k, seed, is_, fid in [(1, 0, 2.0, 50.0), (1, 1, 4.0, 40.0), (4, 0, 5.0, 30.0)]:
        rows.append({"stage": "retrain", "kprime": k, "selector": "da", "seed": seed, "is_mean": is_, "fid": fid,
                     "search_gpu_seconds": 10.0 * k, "genotype": "{}"})
    cells, agg = kprime_summary(pd.DataFrame(rows))
    assert len(cells) == 3 and cells["kprime"].tolist() == [1, 1, 4]
    k1 = agg[agg["kprime"] == 1].iloc[0]
    assert k1["is_mean_mean"] == pytest.approx(3.0) and k1["is_mean_std"] == pytest.approx(math.sqrt(2))
    assert k1["fid_mean"] == pytest.approx(45.0) and k1["seeds"] == 2
    assert agg[agg["kprime"] == 4].iloc[0]["search_gpu_seconds_mean"] == pytest.approx(40.0)
    figures = capture_figures(monkeypatch)
    path = draw_kprime(agg, tmp_path / "k.png")
    assert is_png(path)
    is_panel, fid_panel = figures[path.resolve()].axes
    assert (is_panel.title, fid_panel.title) == ("is_mean (higher is better)", "fid (lower is better)")
    assert is_panel.xlabel == fid_panel.xlabel == "k'  (edge ops see C/k' maps)"
    for panel, means, stds in ((is_panel, [3.0, 5.0], [math.sqrt(2), 0.0]),
                               (fid_panel, [45.0, 30.0], [math.sqrt(50), 0.0])):
        (series,) = panel.errorbars  # one line per selector, mean ± std over seeds against k'
        assert panel.legend == ["selector=da"] and series.label == "selector=da"
        # k' is a grid of chosen values: evenly spaced categories, markers with error bars and no joining line
        assert series.x == [0.0, 1.0] and panel.xticklabels == ["1", "4"] and series.ls == "None"
        assert series.y == pytest.approx(means)
        assert series.yerr.tolist() == pytest.approx(stds)

    edge_rows = [{"stage": "edge", "edge": "cell0.normal[0]", "op": op, "alpha_weight": a, "is_mean": i,
                  "fid": f, "selector": "da"}
                 for op, a, i, f in [("conv_1x1", 0.2, 2.0, 60.0), ("conv_3x3", 0.5, 3.0, 50.0),
                                     ("conv_5x5", 0.3, 2.5, 55.0)]]
    table, corr = edge_summary(pd.DataFrame(edge_rows), "cell0.normal[0]")
    assert table["op"].tolist() == ["conv_3x3", "conv_5x5", "conv_1x1"]
    assert corr["is"]["spearman"] == pytest.approx(1.0) and corr["neg_fid"]["spearman"] == pytest.approx(1.0)
    path = draw_edge(table, corr, tmp_path / "e.png")
    assert is_png(path)
    (ax,) = figures[path.resolve()].axes
    assert ax.title == "cell0.normal[0] (da): Pearson 0.98, Spearman 1.00"
    assert corr["is"]["pearson"] == pytest.approx(np.corrcoef([0.5, 0.3, 0.2], [3.0, 2.5, 2.0])[0, 1])
    assert (ax.xlabel, ax.ylabel) == ("architecture weight of the op (α)", "IS of the retrained subnet")
    (points,) = ax.scatters  # one point per op at (its α, its retrained IS), labelled with the op
    assert points.xy.tolist() == [[0.5, 3.0], [0.3, 2.5], [0.2, 2.0]]
    assert ax.texts == [("conv_3x3", (0.5, 3.0)), ("conv_5x5", (0.3, 2.5)), ("conv_1x1", (0.2, 2.0))]


# ============================================================================ CLI errors (before Ray starts)
def test_kprime_not_dividing_c_lists_the_divisors(capsys, tmp_path):
    code, _, err = run_cli(capsys, "search", "damgan", "--output-dir", str(tmp_path), "--set",
                           "damgan.search_gf_dim=12", "--set", "damgan.kprime=5")
    assert_user_error(code, err, "kprime=5", "1, 2, 3, 4, 6, 12")
    code, _, err = run_cli(capsys, "ablate", "damgan", "--output-dir", str(tmp_path), "--grid", "kprime=1,2,3")
    assert_user_error(code, err, "kprime=3", "1, 2, 4, 8, 16")
    code, _, err = run_cli(capsys, "ablate", "damgan", "--output-dir", str(tmp_path), "--grid", "width=1,2")
    assert_user_error(code, err, "kprime")
    assert not list(tmp_path.iterdir()), "no run directory may be created for a bad config"


def test_unknown_ops_and_edges_are_user_errors(capsys, tmp_path):
    bad = SPACE.decode([0] * len(SPACE.edge_names())).to_dict()
    bad["cells"][0]["normal"][0] = "conv_9x9"
    search_run = tmp_path / "search"
    search_run.mkdir()
    (search_run / "best_G.json").write_text(json.dumps(bad))
    (search_run / "alpha.json").write_text("{}")
    out = str(tmp_path / "runs")
    code, _, err = run_cli(capsys, "ablate", "damgan-edge", "--output-dir", out, "--search-run", str(search_run))
    assert_user_error(code, err, "unknown op 'conv_9x9'")
    code, _, err = run_cli(capsys, "ablate", "damgan-edge", "--output-dir", out, "--ops", "conv_3x3,max_pool")
    assert_user_error(code, err, "unknown op 'max_pool'", "sep_conv_7x7")
    code, _, err = run_cli(capsys, "ablate", "damgan-edge", "--output-dir", out, "--edge", "cell0:2->3")
    assert_user_error(code, err, "unknown edge 'cell0:2->3'")
    code, _, err = run_cli(capsys, "search", "damgan", "--output-dir", out, "--set", "damgan.n_critic=0")
    assert_user_error(code, err, "damgan.n_critic")
    code, _, err = run_cli(capsys, "search", "damgan", "--output-dir", out, "--set", "damgan.epochs=abc")
    assert_user_error(code, err, "damgan.epochs: expected an integer, got 'abc'")
    code, _, err = run_cli(capsys, "ablate", "damgan", "--output-dir", out, "--set", "damgan.lr_g=-1")
    assert_user_error(code, err, "damgan.lr_g")
    # The retrain checks the model section; a search preflights without it (its genotype does not exist yet).
    cfg = tiny_config(tmp_path, "model.generator=genotype")
    preflight(cfg, check_model=False)
    with pytest.raises(ConfigError, match="model.g_genotype"):
        preflight(cfg)
    assert not (tmp_path / "runs").exists()


# ============================================================================ Ray Tune
def _tiny_args(tmp_path, name, cpu=1.0):
    args = ["--output-dir", str(tmp_path), "--name", name, "--resources", f"cpu={cpu}"]
    for item in TINY:
        args += ["--set", item]
    return args


@pytest.fixture(scope="module")
def search_run(ray_session, tmp_path_factory):
    """One short search trial through the CLI, shared by the end-to-end and the edge-ablation tests."""
    tmp = tmp_path_factory.mktemp("damgan-search")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["search", "damgan", *_tiny_args(tmp, "s"), "--set", "damgan.epochs=2",
                     "--set", "model.generator=genotype",  # like damgan-cifar10: no genotype exists yet
                     "--then-retrain", "--retrain-epochs", "1"])
    assert code == 0
    return RunDir.open(tmp / "s"), out.getvalue()


@pytest.mark.slow
def test_search_trial_end_to_end_in_shared_ray(search_run):
    run, out = search_run
    g = Genotype.load(run.path / "best_G.json")
    alpha = json.loads((run.path / "alpha.json").read_text())
    assert set(alpha) == set(SPACE.edge_names()) and len(alpha["cell0.normal[0]"]) == 6
    assert SPACE.encode(g) == [int(np.argmax(alpha[n])) for n in SPACE.edge_names()]
    df = run.read().sort_values("epoch")
    assert df["epoch"].tolist() == [1, 2] and set(df["stage"]) == {"search"} and set(df["method"]) == {"damgan"}
    assert (df["kprime"] == 2).all() and (df["selector"] == "da").all() and (df["gpu_seconds"] == 0).all()
    assert Genotype.from_json(df["genotype"].iloc[-1]) == g
    assert df["is_mean"].isna().tolist() == [True, False]  # eval.every=0: only after the last epoch
    assert df["num_samples"].iloc[-1] == 64
    # The last epoch's FID is the derived subnet's, recomputed from the trial's final checkpoint.
    from raynas.checkpoints import load_checkpoint
    from raynas.config import RaynasConfig, from_dict

    (state_file,) = sorted((run.path / "tune").rglob("checkpoint_000001/state.pt"))
    search = DamganSearch(from_dict(RaynasConfig, run.config), device=torch.device("cpu"))
    search.load_state_dict(load_checkpoint(state_file)["search"])
    assert search.evaluate(g)["fid"] == pytest.approx(df["fid"].iloc[-1], rel=1e-4)
    assert df["alpha_entropy_mean"].between(0, math.log(6)).all() and (df["params"] > 0).all()
    # The printed table is the run's rows, and the closing lines name the files the search wrote.
    assert format_table(df, columns=["seed", "epoch", "d_loss", "g_loss", "alpha_entropy_mean", "alpha_margin_mean",
                                     "is_mean", "fid", "params", "wall_seconds"]) in out
    lines = out.splitlines()
    for line in (f"raynas: damgan search finished: {run.path}", f"raynas: genotype  {run.path / 'best_G.json'}",
                 f"raynas: α table   {run.path / 'alpha.json'}", f"raynas: retrain   {run.path / 'retrain'}",
                 *(f"raynas: plot     {run.plots_dir / name}" for name in ("curves.png", "alpha.png", "best_G.png"))):
        assert line in lines
    # The Tune result carries the per-edge entropy/margin (Tune flattens it) and the genotype JSON.
    (result_file,) = list((run.path / "tune").rglob("result.json"))
    last = json.loads(result_file.read_text().strip().splitlines()[-1])
    assert set(last["alpha"]) == set(SPACE.edge_names())
    assert {"entropy", "margin"} <= set(last["alpha"]["cell0.up[0]"])
    assert Genotype.from_json(last["genotype"]) == g
    assert list((run.path / "tune").rglob("genotypes/epoch_0002.json"))


@pytest.mark.slow
def test_then_retrain_trains_the_found_genotype_with_the_foundation_trainable(search_run):
    run, out = search_run
    retrain = RunDir.open(run.path / "retrain")
    df = retrain.read()
    assert df["method"].tolist() == ["gan"] and df["epoch"].tolist() == [1]
    assert Genotype.from_json(df["genotype"].iloc[0]) == Genotype.load(run.path / "best_G.json")
    from raynas.config import RaynasConfig, from_dict
    from raynas.export.api import load_generator
    from raynas.methods.damgan.generator_search import derived_params
    from raynas.metrics import DatasetSource, evaluate_generator

    rcfg = from_dict(RaynasConfig, retrain.config)
    assert df["params"].iloc[0] == derived_params(Genotype.load(run.path / "best_G.json"), rcfg)
    # The retrain's FID is its EMA generator's, recomputed from the checkpoint it left.
    G, latent_dim = load_generator(retrain.path)
    e = rcfg.eval
    again = evaluate_generator(G, latent_dim, DatasetSource("embedded", e.real_split, resolution=32, channels=1),
                               metrics=("fid",), protocol=e.protocol, num_samples=e.num_samples,
                               extractor=e.extractor, device="cpu", batch_size=e.batch_size)
    assert again.fid == pytest.approx(df["fid"].iloc[0], rel=1e-4)
    assert list((run.path / "retrain" / "tune").rglob("state.pt")), "the retrain checkpoints like any train run"
    assert f"raynas: retrained the found genotype in {retrain.path}" in out.splitlines()
    assert format_table(df, columns=["epoch", "d_loss", "g_loss", "is_mean", "fid", "kid_mean", "wall_seconds"]) in out


def test_gpu_request_without_gpu_is_refused_before_any_run_dir(ray_session, tmp_path, capsys):
    if ray_session.cluster_resources().get("GPU"):
        pytest.skip("this machine has a GPU")
    code, _, err = run_cli(capsys, "search", "damgan", *_tiny_args(tmp_path, "gpu"), "--resources", "gpu=0.25")
    assert_user_error(code, err, "gpu=0.25", "0 GPU(s)", "--resources gpu=0")
    assert not (tmp_path / "gpu").exists()


@pytest.mark.slow
def test_kprime_grid_two_cells_resumes_after_kill(ray_session, tmp_path, capsys, monkeypatch):
    from ray import tune

    from raynas.errors import RaynasError
    from trainables.grid_cell import ablation_cell as damgan_ablation_cell
    from trainables.launch import run_trainable

    marker = tmp_path / "crashed.txt"
    cfg = tiny_config(tmp_path, "damgan.epochs=2")
    run = RunDir.create(tmp_path, "grid", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    space = {"kprime": tune.grid_search([1, 2]), "retrain_epochs": 1,
             "_crash_after_epoch": 1, "_crash_marker": str(marker)}
    with pytest.raises(RaynasError, match="trial failed"):
        run_trainable(damgan_ablation_cell, cfg, run, resources={"cpu": 1}, param_space=space, max_failures=0)
    assert marker.exists(), "no worker was killed, so nothing was resumed"
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "ablate", "damgan", "--resume", str(run.path))
    assert code == 0, err
    df = run.read()
    search = df[df["stage"] == "search"]
    # Each cell ran each search epoch exactly once: the killed one resumed from its epoch-1 checkpoint.
    assert sorted(zip(search["kprime"], search["epoch"])) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    cells = pd.read_parquet(run.path / "ablation_kprime.parquet")
    assert sorted(cells["kprime"].tolist()) == [1, 2] and (cells["retrain_epochs"] == 1).all()
    # Each cell's scores in the summary are the ones its trial reported when it finished.
    reported = {}
    for result_file in (run.path / "tune").rglob("result.json"):
        last = json.loads(result_file.read_text().strip().splitlines()[-1])
        reported[last["config"]["kprime"]] = (last["is_mean"], last["fid"])
    for _, c in cells.iterrows():
        assert (c["is_mean"], c["fid"]) == pytest.approx(reported[c["kprime"]], rel=1e-6)
    assert (cells["search_gpu_seconds"] == 0).all() and cells["search_seconds"].gt(0).all()
    for gj in cells["genotype"]:
        Genotype.from_json(gj).validate()
    means = pd.read_parquet(run.path / "ablation_kprime_mean.parquet")
    assert sorted(means["kprime"]) == [1, 2] and (means["seeds"] == 1).all()
    # The printed tables are the two summaries; the plot shows each k' cell's mean IS and FID.
    assert format_table(cells, columns=["kprime", "seed", "is_mean", "fid", "params", "search_gpu_seconds",
                                        "search_seconds"]) in out
    assert format_table(means, columns=["kprime", "seeds", "is_mean_mean", "is_mean_std", "fid_mean", "fid_std",
                                        "search_gpu_seconds_mean", "search_seconds_mean"]) in out
    plot = run.plots_dir / "ablation_kprime.png"
    assert f"raynas: plot   {plot}" in out.splitlines() and is_png(plot)
    means = means.sort_values("kprime")
    for panel, metric in zip(figures[plot.resolve()].axes, ("is_mean", "fid")):
        assert panel.title.startswith(f"{metric} (") and panel.xlabel == "kprime"
        (series,) = panel.errorbars  # the grid has one axis: one unlabelled line
        assert series.label == "" and panel.legend == []
        assert series.x == [0.0, 1.0] and panel.xticklabels == ["1", "2"] and series.ls == "None"
        assert series.y == pytest.approx(means[f"{metric}_mean"].tolist(), rel=1e-6)


@pytest.mark.slow
def test_edge_ablation_correlates_alpha_with_retrained_is(search_run, tmp_path, capsys, monkeypatch):
    ops = "conv_1x1,conv_3x3,sep_conv_3x3"
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "ablate", "damgan-edge", *_tiny_args(tmp_path, "edge", cpu=0.5),
                             "--edge", "cell0:1->3", "--ops", ops, "--retrain-epochs", "1",
                             "--search-run", str(search_run[0].path))
    assert code == 0, err
    run = RunDir.open(tmp_path / "edge")
    alpha = json.loads((search_run[0].path / "alpha.json").read_text())["cell0.normal[0]"]
    table = pd.read_parquet(run.path / "ablation_edge.parquet")
    assert sorted(table["op"]) == sorted(ops.split(","))
    reported = {}
    for result_file in (run.path / "tune").rglob("result.json"):
        last = json.loads(result_file.read_text().strip().splitlines()[-1])
        reported[last["config"]["edge_op"]] = last["is_mean"]
    for _, r in table.iterrows():
        assert r["alpha_weight"] == pytest.approx(alpha[NORMAL_CANDIDATES.index(r["op"])])
        assert r["is_mean"] == pytest.approx(reported[r["op"]], rel=1e-6)  # the trial's own final IS
    df = run.read()
    base = Genotype.load(search_run[0].path / "best_G.json")
    for _, r in df.iterrows():  # each retrained genotype is the searched one with only the edge switched
        g = Genotype.from_json(r["genotype"])
        assert g.cells[0]["normal"][0] == r["op"]
        assert with_edge_op(base, "cell0.normal[0]", r["op"]) == g
    corr = json.loads((run.path / "edge_correlation.json").read_text())
    ref = edge_correlation(table["alpha_weight"].tolist(), table["is_mean"].tolist())
    assert corr["is"]["pearson"] == pytest.approx(ref["pearson"], nan_ok=True)
    assert corr["is"]["spearman"] == pytest.approx(ref["spearman"], nan_ok=True)
    assert corr["selector"] == "da"
    c = corr["is"]
    lines = out.splitlines()
    assert ("raynas: α of cell0.normal[0]: " + ", ".join(
        f"{op}={alpha[NORMAL_CANDIDATES.index(op)]:.4g}" for op in ops.split(","))) in lines
    assert (f"raynas: cell0.normal[0] (da): α vs IS  Pearson {c['pearson']:.3f} (p={c['pearson_p']:.3g}), "
            f"Spearman {c['spearman']:.3f} (p={c['spearman_p']:.3g}), n=3") in lines
    assert format_table(table, columns=["op", "alpha_weight", "is_mean", "fid", "params"]) in out
    # The plot: one point per op at (its α, its retrained IS), labelled with the op, the correlations in the title.
    plot = run.plots_dir / "ablation_edge.png"
    assert f"raynas: plot   {plot}" in lines and is_png(plot)
    (ax,) = figures[plot.resolve()].axes
    assert ax.title == f"cell0.normal[0] (da): Pearson {c['pearson']:.2f}, Spearman {c['spearman']:.2f}"
    (points,) = ax.scatters
    assert points.xy.tolist() == table[["alpha_weight", "is_mean"]].values.tolist()
    assert ax.texts == [(r["op"], (r["alpha_weight"], r["is_mean"])) for _, r in table.iterrows()]


@pytest.mark.slow
def test_the_search_and_its_retrain_list_as_finished_with_their_summaries(search_run):
    """Issue 24: ``raynas runs`` finds the search and its nested --then-retrain run, both finished, each with a
    summary.json (the retrain's: the fixed training that scored the found generator)."""
    from raynas.results.runs import find_runs

    run, _ = search_run
    infos = {i.name: i for i in find_runs(run.path.parent)}
    assert infos["s"].status == infos["retrain"].status == "finished"
    assert infos["retrain"].location == str(run.path / "retrain")
    summary = json.loads((run.path / "retrain" / "summary.json").read_text())
    assert summary["method"] == "train" and summary["best"]["selected_by"]["metric"] in ("fid", "is_mean")
    assert json.loads((run.path / "summary.json").read_text())["best"]["genotype"] == str(run.path / "best_G.json")
