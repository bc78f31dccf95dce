"""EAGAN end to end in the shared Ray: two stages, outputs, and resume after the driver is killed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from figures import capture_figures, is_png
from tiny_eagan import TINY
from tiny_eagan import search_args as _args

from raynas.checkpoints import load_checkpoint
from raynas.cli import main
from raynas.config import load_config
from raynas.results import RunDir
from raynas.spaces import Genotype, get_space


def _union_volume(points, ref) -> float:
    """Volume of the union of the boxes [p, ref] (every objective minimised): inclusion-exclusion."""
    import itertools

    points = [p for p in points if all(a < b for a, b in zip(p, ref))]
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            corner = [max(c) for c in zip(*subset)]
            volume = 1.0
            for a, b in zip(corner, ref):
                volume *= max(0.0, b - a)
            total += (-1) ** (k + 1) * volume
    return total


@pytest.mark.slow
def test_two_stage_search_end_to_end(ray_session, tmp_path, capsys, monkeypatch):
    figures = capture_figures(monkeypatch)
    code = main(_args(tmp_path, "e2e", "eagan.rounds=2"))
    out, err = capsys.readouterr()
    assert code == 0, err
    run = RunDir.open(tmp_path / "e2e")
    df = run.read()
    assert len(df) == 2 * 2 * 4  # stages × rounds × population
    from raynas.results import dominates

    for (stage, _round), g in df.groupby(["stage", "round"]):
        assert len(g) == 4 and g["genotype"].nunique() == 4
        # rank 0 is exactly the rows no other row of the round dominates on (IS max, FID min, params min)
        points = g[["is_mean", "fid", "params"]].to_numpy(dtype=float).tolist()
        directions = ["max", "min", "min"]
        front = [not any(dominates(q, p, directions) for q in points) for p in points]
        assert [r == 0 for r in g["rank"]] == front
        assert g["best"].sum() == 1
        space = get_space("eagan-g" if stage == "g" else "eagan-d")
        for text in g["genotype"]:
            Genotype.from_json(text).validate()
            assert Genotype.from_json(text).space == space.name
    # Stage d scores discriminators: its params column is D sizes, not G sizes.
    assert set(df[df.stage == "d"]["params"]).isdisjoint(set(df[df.stage == "g"]["params"]))
    best_g = Genotype.load(run.path / "best_G.json")
    best_d = Genotype.load(run.path / "best_D.json")
    assert best_g.space == "eagan-g" and best_d.space == "eagan-d"
    chosen = df[(df.stage == "g") & df.best & (df["round"] == 1)]["genotype"].iloc[0]
    assert Genotype.from_json(chosen) == best_g
    assert list((run.path / "tensorboard").glob("events.out.tfevents*"))
    plot = run.path / "plots" / "pareto.png"
    lines = out.splitlines()
    for line in (f"raynas: best_G.json {run.path / 'best_G.json'}", f"raynas: best_D.json {run.path / 'best_D.json'}",
                 f"raynas: plot     {plot}", f"raynas: retrain  raynas retrain {run.path / 'best_G.json'} "
                 f"{run.path / 'best_D.json'} --preset quickstart"):
        assert line in lines
    # pareto.png: a panel per stage with every candidate at (FID, IS), the final round's (FID, IS) front as a
    # line and the searcher's final rank-0 rows ringed
    assert is_png(plot)
    panels = {ax.title.split(":")[0]: ax for ax in figures[plot.resolve()].axes
              if ax.title.endswith(": candidates by round")}
    assert sorted(panels) == ["d", "g"]  # (in the order the results' rows come, not always g first)
    for stage, ax in panels.items():
        rows = df[df.stage == stage]
        last = rows[rows["round"] == 1]
        assert (ax.xlabel, ax.ylabel) == ("fid (lower is better)", "is_mean (higher is better)")
        assert ax.legend == ["final round's front", "final round, searcher rank 0 (all objectives)"]
        everyone, ringed = ax.scatters
        assert sorted(everyone.xy.tolist()) == sorted(rows[["fid", "is_mean"]].to_numpy(dtype=float).tolist())
        assert sorted(ringed.xy.tolist()) == sorted(last[last["rank"] == 0][["fid", "is_mean"]].to_numpy(
            dtype=float).tolist())
        pts = last[["fid", "is_mean"]].to_numpy(dtype=float).tolist()
        front = sorted(p for p in pts if not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in pts))
        assert sorted(ax.line("final round's front").xy.tolist()) == front
    # The stage-1 winner's weights were exported for retraining; stage d's D likewise.
    assert load_checkpoint(run.path / "best_G.pt")["genotype"] == best_g.to_json()
    assert load_checkpoint(run.path / "best_D.pt")["genotype"] == best_d.to_json()
    assert sorted(p.name for p in (run.path / "checkpoints").glob("*.pt")) == ["stage-d_round001.pt",
                                                                             "stage-g_round001.pt"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run.path / "tensorboard")).Reload()
    refs = load_checkpoint(run.path / "search_state.pt")["hv_ref"]
    for stage in ("g", "d"):
        hv = [e.value for e in events.Scalars(f"stage_{stage}/hypervolume")]
        # the hypervolume of each round's front, recomputed box by box (inclusion-exclusion)
        expect = []
        for r in (0, 1):
            rows = df[(df.stage == stage) & (df["round"] == r) & (df["rank"] == 0)]
            pts = [(-a, b, c) for a, b, c in rows[["is_mean", "fid", "params"]].to_numpy(dtype=float)]
            expect.append(_union_volume(pts, (-refs[stage][0], refs[stage][1], refs[stage][2])))
        assert hv == pytest.approx(expect, rel=1e-5)
        assert [e.step for e in events.Scalars(f"stage_{stage}/best_fid")] == [0, 1]
        assert len(events.Images(f"stage_{stage}/best_samples")) == 2


@pytest.mark.slow
def test_killed_search_resumes_from_last_completed_round(ray_session, tmp_path, capsys):
    address = ray_session.get_runtime_context().gcs_address
    args = _args(tmp_path, "killed", "eagan.rounds=3", "eagan.stages=[g]", "eagan.epochs_per_round=2")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "raynas", *args, "--address", address], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state_file = tmp_path / "killed" / "search_state.pt"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if state_file.exists() and load_checkpoint(state_file)["round"] >= 0:
                break
            assert proc.poll() is None, "the search ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no round completed within 240 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = load_checkpoint(state_file)
    done = saved["round"]
    assert done < 2, "killed too late to test resuming"
    # What the searcher will ask next, from the saved state alone.
    from searchers.nsga2 import NSGA2Searcher

    space = get_space("eagan-g")
    cfg = load_config("quickstart", TINY)
    searcher = NSGA2Searcher.for_space(space, objectives=[("is", "max"), ("fid", "min"), ("params", "min")],
                                       pop_size=cfg.eagan.population, seed=cfg.train.seed)
    searcher.load_state_dict(saved["searcher"])
    expected_next = sorted(space.decode(v).to_json() for v in searcher.ask())

    code = main(["search", "eagan", "--resume", str(tmp_path / "killed")])
    _, err = capsys.readouterr()
    assert code == 0, err
    df = RunDir.open(tmp_path / "killed").read()
    assert sorted(df["round"].unique().tolist()) == [0, 1, 2]
    assert df.groupby("round").size().tolist() == [4, 4, 4], "a round was lost or written twice"
    resumed = sorted(df[df["round"] == done + 1]["genotype"].tolist())
    assert resumed == expected_next
    assert json.loads((tmp_path / "killed" / "best_G.json").read_text())["space"] == "eagan-g"


def test_actor_demands_that_can_never_fit_fail_fast(ray_session, monkeypatch):
    import trainables.launch as launch
    from raynas.errors import ConfigError

    monkeypatch.setattr(launch, "_EMBEDDED", True)  # as if the CLI had started this Ray itself
    launch.check_fits("two actors", [{"cpu": 1, "gpu": 0}, {"cpu": 1, "gpu": 0}])  # exactly the 2 CPUs
    with pytest.raises(ConfigError, match=r"gpu=1 but this Ray has 0 GPU\(s\)"):
        launch.check_fits("a GPU actor", [{"cpu": 0.5, "gpu": 1.0}])
    with pytest.raises(ConfigError, match=r"cpu=3 but this Ray has 2 CPU\(s\)"):
        launch.check_fits("three actors", [{"cpu": 1}, {"cpu": 1}, {"cpu": 1}])
    monkeypatch.setattr(launch, "_EMBEDDED", False)  # a real cluster may grow: warn, don't fail
    launch.check_fits("three actors", [{"cpu": 1}, {"cpu": 1}, {"cpu": 1}])


@pytest.mark.slow
def test_user_error_inside_an_actor_reaches_the_driver(ray_session, tmp_path):
    from raynas.errors import DatasetError
    from trainables.eagan.actors import SupernetHost
    from trainables.launch import find_user_error

    cfg = load_config("quickstart", [*TINY, "data.name=cifar10", f"data.root={tmp_path / 'nowhere'}"])
    host = SupernetHost.options(num_cpus=0.5).remote(cfg.to_dict(), "g")
    with pytest.raises(Exception, match=re.escape("dataset 'cifar10' (CIFAR-10, split 'train') not found")) as info:
        ray_session.get(host.ready.remote())
    user = find_user_error(info.value)
    assert isinstance(user, DatasetError) and "cifar-10-batches-py" in str(user)
    ray_session.kill(host)


def test_default_actor_fractions_fill_exactly_one_gpu(monkeypatch, tmp_path):
    """The first GPU run hung because host + Evaluators asked for 2 GPUs: check the plan, not a GPU."""
    import ray

    import trainables.launch as launch
    from raynas.errors import ConfigError
    from trainables.eagan.driver import EaganSearch

    monkeypatch.setattr(launch, "_EMBEDDED", True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 1.0})
    cfg = load_config("eagan-cifar10")
    run = RunDir.create(tmp_path, "plan", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="auto")
    host, ev = EaganSearch(cfg, run, workers=4, progress=False).actor_options()
    assert (host["num_gpus"], ev["num_gpus"]) == (0.5, 0.125)
    assert host["num_gpus"] + 4 * ev["num_gpus"] == 1.0
    with pytest.raises(ConfigError, match=r"gpu=1.125 but this Ray has 1 GPU\(s\)"):
        EaganSearch(cfg, run, workers=5, progress=False).actor_options()
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0})  # no GPUs: fractions are dropped
    host, ev = EaganSearch(cfg, run, workers=5, progress=False).actor_options()
    assert host["num_gpus"] == ev["num_gpus"] == 0


def test_stage_g_fixed_d_can_be_a_searched_discriminator(tmp_path, capsys):
    """EAGAN-GD3 feeds stage d's D* back into stage 1 as its fixed D."""
    import random

    from conftest import assert_user_error, run_cli

    from raynas.errors import ConfigError
    from raynas.methods.eagan.setup import build_search_discriminator, preflight_eagan
    from raynas.nn.discriminators import AutoGANDiscriminator
    from raynas.nn.eagan_d import EaganDiscriminator
    from raynas.nn.profile import count_params
    from raynas.nn.registry import build_network
    from raynas.spaces.eagan import EAGAN_CIFAR10_G

    base = ["eagan.search_df_dim=8"]
    assert isinstance(build_search_discriminator(load_config("quickstart", base)), AutoGANDiscriminator)
    d_star = get_space("eagan-d").sample(random.Random(3))
    d_star.save(tmp_path / "best_D.json")
    cfg = load_config("quickstart", [*base, f"eagan.fixed_d_genotype={tmp_path / 'best_D.json'}"])
    preflight_eagan(cfg)
    net = build_search_discriminator(cfg)
    assert isinstance(net, EaganDiscriminator) and net.genotype == d_star
    assert count_params(net) == count_params(build_network(d_star, resolution=32, channels=1, width=8))

    EAGAN_CIFAR10_G.save(tmp_path / "G.json")
    with pytest.raises(ConfigError, match="holds a 'eagan-g' genotype.*must be an 'eagan-d' genotype"):
        preflight_eagan(load_config("quickstart", [*base, f"eagan.fixed_d_genotype={tmp_path / 'G.json'}"]))
    code, _, err = run_cli(capsys, "search", "eagan", "--output-dir", str(tmp_path / "runs"),
                           "--set", "eagan.fixed_d_genotype=no/such/D.json")
    assert_user_error(code, err, "no/such/D.json does not exist")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_resumed_search_scores_exactly_like_an_uninterrupted_one(ray_session, tmp_path):
    """Resume restores the supernet, the optimisers and every RNG: after an interrupt at the end of round
    0, round 1 must score the same candidates with the same IS/FID as a run that never stopped."""
    from trainables.eagan.driver import EaganSearch

    cfg = load_config("quickstart", [*TINY, "eagan.rounds=2", "eagan.stages=[g]"])

    def new(name):
        return RunDir.create(tmp_path, name, config=cfg.to_dict(), seed=0, preset=cfg.preset, device="auto")

    straight = new("straight")
    EaganSearch(cfg, straight, progress=False).run_search()

    stopped = new("stopped")
    search = EaganSearch(cfg, stopped, progress=False)
    prune = search._prune_checkpoints

    def interrupt(*args, **kwargs):  # right after round 0's state, rows and checkpoint are on disk
        prune(*args, **kwargs)
        raise KeyboardInterrupt

    search._prune_checkpoints = interrupt
    with pytest.raises(KeyboardInterrupt):
        search.run_search()
    assert RunDir.open(stopped.path).read()["round"].tolist() == [0] * 4
    EaganSearch(cfg, RunDir.open(stopped.path), progress=False).run_search()

    cols = ["genotype", "fid", "is_mean", "params"]
    a = straight.read().sort_values(["round", "genotype"])[["round", *cols]].reset_index(drop=True)
    b = RunDir.open(stopped.path).read().sort_values(["round", "genotype"])[["round", *cols]].reset_index(drop=True)
    assert len(a) == len(b) == 8
    assert a["genotype"].tolist() == b["genotype"].tolist()
    assert a["fid"].tolist() == pytest.approx(b["fid"].tolist(), rel=1e-6)
    assert a["is_mean"].tolist() == pytest.approx(b["is_mean"].tolist(), rel=1e-6)


@pytest.mark.slow
def test_coupled_baseline_search_end_to_end(ray_session, tmp_path, capsys):
    """Fig. 6's baseline: (G, D) pairs evolved together in one stage; outputs both halves."""
    from raynas.nn.profile import count_params
    from raynas.nn.registry import build_network

    code = main(_args(tmp_path, "coupled", "eagan.rounds=1", "eagan.stages=[gd]"))
    _, err = capsys.readouterr()
    assert code == 0, err
    run = RunDir.open(tmp_path / "coupled")
    df = run.read()
    assert len(df) == 4 and set(df["stage"]) == {"gd"} and df["genotype"].nunique() == 4
    space = get_space("eagan-gd")
    pair = Genotype.load(run.path / "best_GD.json")
    g, d = space.split(pair)
    assert Genotype.load(run.path / "best_G.json") == g and Genotype.load(run.path / "best_D.json") == d
    assert load_checkpoint(run.path / "best_D.pt")["genotype"] == d.to_json()
    assert set(json.loads((run.path / "summary.json").read_text())) >= {"best_G.json", "best_D.json", "best_GD.json"}
    # The size objective of a pair is G and D together, at the search widths.
    row = df[df["genotype"] == pair.to_json()].iloc[0]
    assert row["params"] == (count_params(build_network(g, resolution=32, channels=1, width=8, latent_dim=12))
                             + count_params(build_network(d, resolution=32, channels=1, width=8)))


def test_stage_lists_that_cannot_run_are_refused_up_front(tmp_path, capsys):
    from conftest import assert_user_error, run_cli

    for stages, fragment in (("[g,gd]", "gd is the coupled baseline"), ("[d]", "stage g must run first")):
        code, _, err = run_cli(capsys, "search", "eagan", "--output-dir", str(tmp_path),
                               "--set", f"eagan.stages={stages}")
        assert_user_error(code, err, fragment)
    code, _, err = run_cli(capsys, "search", "eagan", "--output-dir", str(tmp_path), "--set", "eagan.stages=[gd]",
                           "--set", "eagan.fixed_d_genotype=eagan-cifar10-G")
    assert_user_error(code, err, "has no stage g")
    assert not any(tmp_path.iterdir())


def test_round_stats_merge_epoch_by_epoch_parts():
    from trainables.eagan.round_results import merge_train_stats

    parts = [{"d_loss": 1.0, "g_loss": 3.0, "train_seconds": 2.0, "images_per_s": 50.0, "batches": [3, 1]},
             {"d_loss": 2.0, "g_loss": float("nan"), "train_seconds": 1.0, "images_per_s": 200.0, "batches": [0, 4]}]
    m = merge_train_stats(parts)
    assert m["train_seconds"] == 3.0 and m["images_per_s"] == pytest.approx(300.0 / 3.0)
    assert m["d_loss"] == 1.5 and m["g_loss"] == 3.0  # an epoch without a G step does not count as NaN
    assert m["batches"] == [3, 5] and (m["min_batches_per_candidate"], m["max_batches_per_candidate"]) == (3, 5)


@pytest.mark.slow
def test_a_dead_evaluator_and_a_dead_host_do_not_end_the_search(ray_session, tmp_path, capsys):
    """Kill -9 equivalents inside a real search: an Evaluator exits while scoring round 0, the SupernetHost
    while training round 1. Both are restarted (the host from round 0's checkpoint), the work is redone, and
    the search finishes with every row once."""
    from trainables.eagan.driver import EaganSearch

    cfg = load_config("quickstart", [*TINY, "eagan.rounds=2", "eagan.stages=[g]"], method="eagan")
    run = RunDir.create(tmp_path, "faults", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    markers = {"evaluator": str(tmp_path / "evaluator.killed"), "host": str(tmp_path / "host.killed")}
    search = EaganSearch(cfg, run, faults=markers)
    search.run_search()
    out = capsys.readouterr().out
    assert all(os.path.exists(m) for m in markers.values()), "an actor was not killed, so nothing recovered"
    import re

    assert re.search(r"Evaluator \d died while scoring", out) and "the SupernetHost died" in out
    df = run.read()
    assert df.groupby("round").size().to_dict() == {0: 4, 1: 4}
    assert df["candidate_id"].is_unique and df["fid"].notna().all()
    assert search.restarts == {"host": 1, "evaluator": 1}
    assert (run.path / "best_G.json").is_file()
