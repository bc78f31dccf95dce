"""`raynas compare`: the paired tests against hand computations, the budget stopping a search mid-epoch with its
spend measured, and a tiny darts-vs-random comparison through the CLI in the shared Ray."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import assert_user_error, run_cli

from raynas.results.compare import paired_t_test, paired_tests, summarize, wilcoxon_signed_rank


def t4_two_sided(t: float) -> float:
    """Two-sided p of Student's t on 4 degrees of freedom, from its closed-form CDF."""
    cdf = 0.5 + 3 / 8 * (t / math.sqrt(1 + t * t / 4)) * (1 - t * t / (12 * (1 + t * t / 4)))
    return 2 * (1 - cdf)


def test_wilcoxon_signed_rank_and_paired_t_by_hand():
    d = [0.02, -0.01, 0.03, 0.04, 0.01]
    # |d| ranks: the two 0.01 tie at 1.5, then 3, 4, 5; W+ = 3 + 4 + 5 + 1.5 = 13.5, W- = 1.5. Of the 32 equally
    # likely sign assignments 3 give W+ <= 1.5 ({}, either 1.5) and 3 give W+ >= 13.5: p = 6/32
    w = wilcoxon_signed_rank(d)
    assert (w["n"], w["w_plus"], w["w_minus"]) == (5, 13.5, 1.5)
    assert w["p"] == pytest.approx(6 / 32)
    # t = mean / (sd / sqrt(n)): mean 0.018, sd sqrt(1480e-6 / 4)
    t = 0.018 / (math.sqrt(1480e-6 / 4) / math.sqrt(5))
    out = paired_t_test(d)
    assert out["t"] == pytest.approx(t) and out["df"] == 4
    assert out["p"] == pytest.approx(t4_two_sided(t), rel=1e-9)
    # zeros are dropped (Wilcoxon's convention); nothing left: no evidence either way
    assert wilcoxon_signed_rank([0.0, 0.0])["p"] == 1.0
    assert wilcoxon_signed_rank([0.0, 1.0, 2.0])["n"] == 2


def test_paired_tests_pair_by_seed_and_follow_the_metric_direction():
    table = pd.DataFrame({"method": ["darts", "darts", "random", "random", "darts"],
                          "seed": [1, 0, 0, 1, 2], "fid": [10.0, 20.0, 25.0, 12.0, 5.0]})
    tests = paired_tests(table, "fid", "random", direction="min")
    row = tests.iloc[0]
    # seed 2 has no random run; differences (random - darts, lower FID is better): seed 0: 5, seed 1: 2
    assert (row["method"], row["pairs"], row["mean_diff"]) == ("darts", 2, 3.5)
    assert row["wilcoxon_w_plus"] == 3 and row["wilcoxon_p"] == pytest.approx(0.5)
    t = 3.5 / (math.sqrt(4.5) / math.sqrt(2))  # on 1 degree of freedom Student's t is Cauchy
    assert row["t"] == pytest.approx(t) and row["t_p"] == pytest.approx(1 - 2 * math.atan(t) / math.pi)
    summary = summarize(table, "fid", "min").set_index("method")
    assert summary.loc["darts", "fid_best"] == 5.0 and summary.loc["darts", "fid_median"] == 10.0
    assert summary.loc["random", "fid_std"] == pytest.approx(math.sqrt(((25 - 18.5) ** 2 + (12 - 18.5) ** 2) / 1))


def _tiny_search():
    import torch

    from raynas.config import load_config
    from raynas.methods import get_method
    from raynas.methods.random.search import random_search

    cfg = load_config("quickstart-classify", [*get_method("random").smoke_overrides, "random.epochs=2"],
                      method="random")
    return random_search(cfg, torch.device("cpu"))


def test_the_budget_stops_a_search_mid_epoch_and_its_spend_is_measured():
    from trainables.compare import search_within_budget

    def run(limit):
        search = _tiny_search()
        ticks = iter(range(10 ** 6))
        clock = lambda: float(next(ticks))  # noqa: E731  (one second per reading: deterministic)
        cost = {"search_seconds": 0.0, "search_gpu_seconds": 0.0, "steps": 0, "train_flops": 0.0,
                "flops_per_step": None}
        epochs = []

        def run_epoch():
            start = clock()
            search.train_epoch()
            cost["search_seconds"] += clock() - start
            return {"epoch": search.epoch}

        stopped, last = search_within_budget(search, cost, limit, run_epoch, epochs.append, clock=clock)
        return search, cost, stopped, epochs

    search, cost, stopped, epochs = run(math.inf)
    per_epoch = search.iters_per_epoch
    assert per_epoch == 2 and not stopped and cost["steps"] == 2 * per_epoch and len(epochs) == 2
    assert cost["flops_per_step"] > 0 and cost["train_flops"] == pytest.approx(sum(cost["flops_counted"]))
    full = cost["search_seconds"]  # 3 clock readings per epoch: 6

    # half a second short of the whole: the second epoch's first step fits (5 s spent), its second would not
    search, cost, stopped, epochs = run(full - 0.5)
    assert stopped and search.epoch == 1 and cost["steps"] == per_epoch + 1
    assert cost["search_seconds"] >= full - 0.5  # stopped at the step where the limit was reached, not before
    assert len(cost["flops_counted"]) == cost["steps"]  # every step so far counted (fewer than FLOP_SAMPLE_STEPS)
    assert cost["train_flops"] == pytest.approx(sum(cost["flops_counted"]))
    assert len(epochs) == 1  # the cut epoch was never reported as finished


@pytest.mark.slow
def test_compare_darts_with_random_through_the_cli(ray_session, tmp_path, capsys):
    tiny = ["data.limit=32", "darts.layers=3", "darts.channels=4", "darts.steps=2", "darts.multiplier=2",
            "darts.batch_size=16", "random.layers=3", "random.channels=4", "random.steps=2", "random.multiplier=2",
            "random.batch_size=16", "random.candidates=2", "train.eval_batch_size=64"]
    sets = [a for item in tiny for a in ("--set", item)]
    code, out, err = run_cli(capsys, "compare", "--preset", "quickstart-classify", "--methods", "darts,random",
                             "--seeds", "2", "--budget", "epochs=1", "--output-dir", str(tmp_path), "--name", "c",
                             "--resources", "cpu=1", *sets)
    assert code == 0, err
    run = tmp_path / "c"
    table = pd.read_parquet(run / "compare.parquet")
    assert list(zip(table["method"], table["seed"])) == [("darts", 0), ("darts", 1), ("random", 0), ("random", 1)]
    assert (table["search_epochs"] == 1).all() and (table["search_steps"] == 1).all()  # 16 images, batch 16
    assert (table["train_flops"] > 0).all() and (table["search_seconds"] > 0).all()
    assert not table["budget_stopped"].any()
    acc = table.set_index(["method", "seed"])["val_acc"]
    d = [acc["darts", s] - acc["random", s] for s in (0, 1)]
    tests = pd.read_parquet(run / "compare_tests.parquet").iloc[0]
    assert tests["pairs"] == 2 and tests["mean_diff"] == pytest.approx(sum(d) / 2)
    # exact Wilcoxon on two pairs by hand: of the 4 sign assignments, one has W+ = 0 and one W+ = max, so two
    # differences of one sign give p = 2/4; opposite signs (or a zero difference) give p = 1
    nz = [x for x in d if x != 0]
    same_sign = len(nz) == 2 and (nz[0] > 0) == (nz[1] > 0)
    assert tests["wilcoxon_p"] == pytest.approx(0.5 if same_sign else 1.0)
    assert "Wilcoxon signed-rank" in out and "paired t-test" in out
    assert (run / "plots" / "methods.png").is_file()
    code, out, err = run_cli(capsys, "results", str(run))
    assert code == 0 and "per method:" in out and "random" in out
    code, _, err = run_cli(capsys, "compare", "--methods", "darts,eagan", "--budget", "epochs=1",
                           "--output-dir", str(tmp_path))
    assert_user_error(code, err, "mixes classifier and GAN searches")
    code, _, err = run_cli(capsys, "compare", "--methods", "darts,random", "--budget", "hours=1",
                           "--output-dir", str(tmp_path))
    assert_user_error(code, err, "--budget 'hours=1'")
    (tmp_path / "plain").mkdir()
    code, _, err = run_cli(capsys, "compare", "--resume", str(tmp_path / "plain"))
    assert_user_error(code, err, "is not a `raynas compare` run")


def test_the_alpha_figure_of_a_comparison_whose_trials_search_different_spaces(tmp_path):
    import json

    from raynas.plots.alpha import draw_alpha_evolution

    darts = {"normal.2.0": [0.5, 0.5], "normal.2.1": [0.2, 0.8]}
    swd = {"cell0.2.0": [0.9, 0.1]}  # an SWD-NAS trial names its edges per cell
    rows = [{"candidate_id": tid, "seed": seed, "stage": "search", "epoch": e, "alpha_table": json.dumps(t),
             "genotype": json.dumps({"space": space})}
            for tid, seed, space, t in (("a", 0, "darts", darts), ("b", 1, "swd-nas", swd)) for e in (1, 2)]
    out = draw_alpha_evolution(pd.DataFrame(rows), tmp_path / "alpha.png")
    assert out is not None and out.is_file()
