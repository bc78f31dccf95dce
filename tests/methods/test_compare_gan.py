"""`raynas compare` over GAN spaces: random-gan (random search with weight sharing on DAMGAN's supernet) is
uniform per seed and ranks by FID; a tiny damgan-vs-random comparison through the CLI, with FID's direction
followed by the paired tests (checked by hand) and the budget enforced."""

from __future__ import annotations

import random

import pandas as pd
import pytest
import yaml
from conftest import assert_user_error, run_cli

from raynas.methods import get_method


def _tiny_random_gan(extra=()):
    import torch

    from raynas.config import load_config
    from raynas.methods.random.gan import RandomGanSearch

    cfg = load_config("quickstart", [*get_method("random-gan").smoke_overrides, *extra], method="random-gan")
    return RandomGanSearch(cfg, torch.device("cpu"))


def test_random_gan_trains_uniform_paths_and_picks_the_lowest_fid(monkeypatch):
    from raynas.methods.random import gan
    from raynas.spaces import get_space

    search = _tiny_random_gan(["random_gan.candidates=3"])
    # the paths it trains are the seeded uniform sampler's draws, one per step
    expected = random.Random("random-gan-paths-0")
    first = gan.sample_genotype("damgan-g", expected)
    seen = []
    real_subnet = gan.SupernetSubnet
    monkeypatch.setattr(gan, "SupernetSubnet", lambda net, g: seen.append(g) or real_subnet(net, g))
    assert search.derive_genotype() == search.candidates[0]  # before the last epoch: unranked
    search.train_epoch()
    assert seen == [first]
    # the candidates are fixed by the seed and valid; the pick is the lowest FID on the supernet
    assert search.candidates == gan.candidate_genotypes(search.cfg, 3)
    for g in search.candidates:
        get_space("damgan-g").validate(g)
    fids = dict(zip(search.candidates, [30.0, 10.0, 20.0]))

    class Scores:
        def __init__(self, g):
            self.g = g

        def as_row(self):
            return {"fid": fids[self.g], "is_mean": 1.0}

    monkeypatch.setattr(search, "evaluate_subnet", Scores)
    assert search.done() and search.derive_genotype() == search.candidates[1]
    assert search.evaluate(search.candidates[1])["fid"] == 10.0
    table = search.alpha_table()
    assert all(sum(v) == 1.0 for v in table.values())  # one-hot: the pick's op on every edge
    assert gan.rank_key({"fid": None, "is_mean": 3.0}) == -3.0  # IS ranks where FID is not computed


def test_random_gan_refuses_the_darts_selector():
    from raynas.config import load_config
    from raynas.errors import ConfigError
    from raynas.methods.random.gan import check_search

    cfg = load_config("quickstart", ["random_gan.selector=darts"], method="random-gan")
    with pytest.raises(ConfigError, match="random_gan.selector"):
        check_search(cfg)


TINY = [*get_method("damgan").smoke_overrides, *get_method("random-gan").smoke_overrides]


@pytest.mark.slow
def test_compare_damgan_with_random_through_the_cli(ray_session, tmp_path, capsys):
    sets = [a for item in dict.fromkeys(TINY) for a in ("--set", item)]
    code, out, err = run_cli(capsys, "compare", "--preset", "quickstart", "--methods", "damgan,random",
                             "--seeds", "2", "--budget", "epochs=1", "--output-dir", str(tmp_path), "--name", "g",
                             "--resources", "cpu=1", *sets)
    assert code == 0, err
    run = tmp_path / "g"
    table = pd.read_parquet(run / "compare.parquet")
    assert list(zip(table["method"], table["seed"])) == [("damgan", 0), ("damgan", 1), ("random-gan", 0),
                                                          ("random-gan", 1)]
    assert (table["search_epochs"] == 1).all() and (table["search_steps"] == 1).all()  # iters_per_epoch=1
    assert (table["train_flops"] > 0).all() and (table["search_seconds"] > 0).all()
    assert not table["budget_stopped"].any() and table["fid"].notna().all()
    fid = table.set_index(["method", "seed"])["fid"]
    d = [fid["random-gan", s] - fid["damgan", s] for s in (0, 1)]  # lower FID is better: baseline - method
    tests = pd.read_parquet(run / "compare_tests.parquet").iloc[0]
    assert (tests["method"], tests["baseline"], tests["pairs"]) == ("damgan", "random-gan", 2)
    assert tests["mean_diff"] == pytest.approx(sum(d) / 2)
    nz = [x for x in d if x != 0]
    same_sign = len(nz) == 2 and (nz[0] > 0) == (nz[1] > 0)
    assert tests["wilcoxon_p"] == pytest.approx(0.5 if same_sign else 1.0)
    if len(nz) == 2:  # W+ by hand: ranks of |d| (ties share 1.5), summed over the positive differences
        ranks = (1.5, 1.5) if abs(d[0]) == abs(d[1]) else ((1, 2) if abs(d[0]) < abs(d[1]) else (2, 1))
        assert tests["wilcoxon_w_plus"] == sum(r for r, x in zip(ranks, d) if x > 0)
    assert "metric: fid" in out and "lower fid is better" in out
    summary = pd.read_parquet(run / "compare_summary.parquet").set_index("method")
    assert summary.loc["damgan", "fid_best"] == min(fid["damgan", 0], fid["damgan", 1])
    assert (run / "plots" / "methods.png").is_file()

    code, _, err = run_cli(capsys, "compare", "--methods", "damgan,darts,random", "--budget", "epochs=1",
                           "--output-dir", str(tmp_path))
    assert_user_error(code, err, "mixes classifier and GAN searches")


@pytest.mark.slow
def test_the_device_hours_budget_stops_a_gan_search_and_the_table_shows_it(ray_session, tmp_path, capsys):
    sets = [a for item in dict.fromkeys([*TINY, "damgan.epochs=50", "random_gan.epochs=50"])
            for a in ("--set", item)]
    code, out, err = run_cli(capsys, "compare", "--preset", "quickstart", "--methods", "damgan,random-gan",
                             "--seeds", "1", "--budget", "device-hours=0.000001", "--output-dir", str(tmp_path),
                             "--name", "b", "--resources", "cpu=1", *sets)
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "b" / "compare.parquet")
    assert len(table) == 2 and table["budget_stopped"].all()
    assert (table["search_epochs"] < 50).all() and table["fid"].notna().all()


def test_random_beside_gan_methods_names_the_random_search_of_each_ones_space():
    from raynas.cli.compare import pairs_of, parse_methods

    names = parse_methods("eagan,damgan,random")
    assert names == ["eagan", "damgan", "eagan-random", "random-gan"]
    assert pairs_of(names) == {"eagan": "eagan-random", "damgan": "random-gan"}
    assert parse_methods("darts,random") == ["darts", "random"]
    assert pairs_of(["darts", "swd-nas", "random"]) == {"darts": "random", "swd-nas": "random"}


def test_eagan_rounds_within_an_epochs_budget():
    from raynas.cli.compare import eagan_budget
    from raynas.config import load_config
    from raynas.errors import ConfigError

    cfg = load_config("quickstart", ["eagan.warmup_epochs=2", "eagan.epochs_per_round=3", "eagan.stages=[g,d]",
                                     "eagan.rounds=18"], method="eagan")
    assert eagan_budget(cfg, 22) == ["eagan.rounds=3"]  # 11 epochs a stage: 2 warm-up + 3 rounds of 3
    with pytest.raises(ConfigError, match="one round"):
        eagan_budget(cfg, 9)


@pytest.mark.slow
def test_compare_eagan_with_its_random_searcher_through_the_cli(ray_session, tmp_path, capsys):
    tiny = [o for o in get_method("eagan").smoke_overrides if not o.startswith("eagan.rounds")]
    retrain = ["train.iters_per_epoch=1", "train.gen_batch_size=4", "train.dis_batch_size=4", "model.gf_dim=8",
               "model.df_dim=8"]
    sets = [a for item in [*tiny, *retrain] for a in ("--set", item)]
    # one seed keeps it short (each cell starts its actors); the damgan test checks two pairs by hand
    code, out, err = run_cli(capsys, "compare", "--preset", "quickstart", "--methods", "eagan,random",
                             "--seeds", "1", "--budget", "epochs=1", "--then-retrain", "--retrain-epochs", "1",
                             "--output-dir", str(tmp_path), "--name", "e", *sets)
    assert code == 0, err
    run = tmp_path / "e"
    table = pd.read_parquet(run / "compare.parquet")
    assert list(zip(table["method"], table["seed"])) == [("eagan", 0), ("eagan-random", 0)]
    assert (table["search_epochs"] == 1).all() and (table["search_seconds"] > 0).all()  # one round of one epoch
    assert table["fid"].notna().all() and table["train_flops"].isna().all()  # FLOPs: not counted in the actors
    assert (table["retrain_epochs"] == 1).all() and (table["retrain_seconds"] > 0).all()  # the retrained G's FID
    assert "after the retrain" in out
    fid = table.set_index(["method", "seed"])["fid"]
    d = fid["eagan-random", 0] - fid["eagan", 0]
    tests = pd.read_parquet(run / "compare_tests.parquet").iloc[0]
    assert (tests["method"], tests["baseline"], tests["pairs"]) == ("eagan", "eagan-random", 1)
    assert tests["mean_diff"] == pytest.approx(d) and tests["wilcoxon_p"] == 1.0  # one pair: both signs 1/2
    searchers = {cell.parent.parent.name: yaml.safe_load((cell / "config.yaml").read_text())["eagan"]["searcher"]
                 for cell in (run / "arms").glob("*/cells/cell-000")}
    assert searchers == {"eagan": "nsga2", "eagan-random": "random"}


@pytest.mark.slow
def test_the_device_hours_budget_ends_eagan_stages_after_the_round_that_spends_it(ray_session, tmp_path, capsys):
    tiny = [o for o in get_method("eagan").smoke_overrides if not o.startswith("eagan.rounds")]
    sets = [a for item in [*tiny, "eagan.rounds=3"] for a in ("--set", item)]
    code, out, err = run_cli(capsys, "compare", "--preset", "quickstart", "--methods", "eagan,eagan-random",
                             "--seeds", "1", "--budget", "device-hours=0.000001", "--output-dir", str(tmp_path),
                             "--name", "eb", *sets)
    assert code == 0, err
    table = pd.read_parquet(tmp_path / "eb" / "compare.parquet")
    assert len(table) == 2 and table["budget_stopped"].all()
    assert (table["search_epochs"] == 1).all()  # round 0 of 3 (one epoch each), then the budget ended the stage


def test_the_default_preset_follows_the_methods_task(tmp_path, capsys):
    # random_gan's own check refuses the darts selector: reached only once a GAN preset (quickstart) has loaded
    code, _, err = run_cli(capsys, "compare", "--methods", "damgan,random", "--budget", "epochs=1",
                           "--set", "random_gan.selector=darts", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "random_gan.selector")
    assert not any(tmp_path.iterdir())  # refused before any run directory
