"""Data-parallel training of one fixed network (``--num-workers N``, issue 21).

Two processes on gloo must compute what one process computes at the same global batch: each takes a fixed slice
of every global batch, the gradients are summed, BatchNorm is synchronised (``train.sync_bn``). The core tests
spawn plain ``torch.distributed`` processes under ``RAYNAS_NUMERICS=float64``, where the only difference left is
the order of floating-point sums (~1e-13): they compare at 1e-9. The Ray tests run the real route (Ray Train's
TorchTrainer inside the run's Tune trial) in float32 and compare with a bound far above float32 rounding (1e-4
relative on the per-epoch losses) and far below any real difference (a wrong slice or an unsummed gradient moves
the losses by > 1e-2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from raynas.config import FIXED, load_config
from raynas.distributed import Replicas
from raynas.errors import ConfigError

CLASSIFY = ["data.limit=64", "data.test_limit=64", "model.layers=3", "model.channels=4", "train.batch_size=16",
            "train.sync_bn=true", "train.eval_batch_size=64", "train.epochs=2"]
GAN = ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=16", "train.iters_per_epoch=3",
       "train.gen_batch_size=8", "train.dis_batch_size=8", "data.limit=64", "train.epochs=2", "train.sync_bn=true",
       "regan.enabled=true", "regan.warmup=1", "regan.interval=1", "regan.sparsity=0.3", "regan.exclude=[*bias]",
       "eval.num_samples=120", "eval.batch_size=60"]


def tiny(task: str, *extra: str):
    if task == "gan":
        return load_config("quickstart", [*GAN, *extra], method=FIXED, task="gan")
    return load_config("quickstart-classify", [*CLASSIFY, *extra], method=FIXED, task="classify")


# ------------------------------------------------------------------------------------------ Replicas
def test_slices_cover_the_global_batch_once_in_order():
    for n in (16, 17, 3):
        parts = [Replicas(r, 2).bounds(n) for r in range(2)]
        assert parts[0][0] == 0 and parts[0][1] == parts[1][0] and parts[1][1] == n
        assert sum(Replicas(r, 2).share(n) for r in range(2)) == pytest.approx(1.0)
    x = torch.arange(10)
    assert torch.equal(torch.cat([Replicas(r, 3).part(x)[0] for r in range(3)]), x)
    assert Replicas().part(x)[0] is x  # one process: the batch itself


def test_a_batch_the_workers_cannot_share_is_a_config_error():
    with pytest.raises(ConfigError, match="train.batch_size=15 is not divisible by 2 workers"):
        Replicas(0, 2).check_batch(15, "train.batch_size")
    with pytest.raises(ConfigError, match="last batch of 1 cannot be split across 2 workers"):
        Replicas(0, 2).check_last_batch(65, 16, "the training part")
    Replicas(0, 2).check_last_batch(66, 16, "the training part")  # 2 images: one each


# ------------------------------------------------------------------------------------------ processes
def _train(index: int, task: str, out: str, init: str) -> None:
    """Spawned process ``index``: 0 trains alone, 1 and 2 are ranks 0 and 1 of a group; two epochs of the tiny
    network each, its numbers written to JSON."""
    torch.set_num_threads(1)
    rank, size = (0, 1) if index == 0 else (index - 1, 2)
    if size > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=size)
    from raynas.fixed_training import fixed_trainer

    trainer = fixed_trainer(tiny(task), torch.device("cpu"), Replicas.current())
    stats = [trainer.train_epoch() for _ in range(2)]
    net = trainer.G if task == "gan" else trainer.model
    result = {"stats": [{k: v for k, v in s.items() if isinstance(v, float) and "second" not in k and "per_s" not in k}
                        for s in stats],
              "params": torch.cat([p.detach().flatten() for p in net.parameters()]).tolist(),
              "buffers": torch.cat([b.detach().flatten().double() for b in net.buffers()]).tolist()}
    if task == "gan":
        result["ema"] = torch.cat([p.detach().flatten() for p in trainer.ema.module.parameters()]).tolist()
        result["masks"] = {n: m.flatten().tolist() for n, m in trainer.regan.masks.items()}
        result["flops"] = trainer.flops.stats()
    Path(f"{out}-{size}-{rank}.json").write_text(json.dumps(result))


def _spawn_runs(tmp_path, monkeypatch, task: str) -> tuple[dict, dict, dict]:
    import torch.multiprocessing as mp

    monkeypatch.setenv("RAYNAS_NUMERICS", "float64")  # the spawned interpreters compute in float64
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = str(tmp_path / task)
    mp.spawn(_train, args=(task, out, str(tmp_path / "init")), nprocs=3)  # one process alone, a group of two
    return tuple(json.loads(Path(f"{out}-{s}-{r}.json").read_text()) for s, r in ((1, 0), (2, 0), (2, 1)))


def _close(a, b, tol: float = 1e-9) -> None:
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    assert a.shape == b.shape
    assert torch.allclose(a, b, rtol=tol, atol=tol), float((a - b).abs().max())


def _same_stats(one: list[dict], two: list[dict]) -> None:
    for s1, s2 in zip(one, two, strict=True):
        assert s1.keys() == s2.keys()
        for key in s1:
            assert math.isclose(s1[key], s2[key], rel_tol=1e-9, abs_tol=1e-12), (key, s1[key], s2[key])


def test_two_processes_train_the_classifier_one_process_trains(tmp_path, monkeypatch):
    one, rank0, rank1 = _spawn_runs(tmp_path, monkeypatch, "classify")
    assert rank0 == rank1  # both workers hold the same network, bit for bit
    _same_stats(one["stats"], rank0["stats"])  # train loss and accuracy over the global batch
    _close(one["params"], rank0["params"])
    _close(one["buffers"], rank0["buffers"])  # synchronised BatchNorm: the global batch's running statistics


def test_two_processes_train_the_gan_and_regan_masks_match(tmp_path, monkeypatch):
    one, rank0, rank1 = _spawn_runs(tmp_path, monkeypatch, "gan")
    assert rank0 == rank1  # G, EMA-G and Re-GAN's masks are the same on both ranks
    # and the masks one process computes (biases are left dense: after a few Adam steps from 0 many share one
    # magnitude, so their order would rest on the last bit)
    assert rank0["masks"] and rank0["masks"] == one["masks"]
    assert sum(v.count(False) for v in rank0["masks"].values()) > 0  # the sparse phase pruned something
    assert rank0["flops"] == one["flops"]  # FLOPs of the global batches, counted once
    _same_stats(one["stats"], rank0["stats"])
    _close(one["params"], rank0["params"])
    _close(one["ema"], rank0["ema"])


# ------------------------------------------------------------------------------------------ Ray Train
def _reference_losses(task: str, epochs: int) -> list[float]:
    """One process, in this (float32) process, scoring when due as ``fit`` does (a GAN's scoring draws from the
    global RNG): the numbers a 2-worker run must reproduce."""
    from raynas.fixed_training import fixed_trainer

    trainer = fixed_trainer(tiny(task, f"train.epochs={epochs}"), torch.device("cpu"))
    key = "d_loss" if task == "gan" else "train_loss"
    losses = []
    for _ in range(epochs):
        losses.append(trainer.train_epoch()[key])
        if trainer.eval_due():
            trainer.score()
    return losses


@pytest.mark.slow
def test_ray_train_workers_killed_mid_run_resume_and_match_one_worker(ray_session, tmp_path):
    """Rank 1 dies after epoch 1 (its checkpoint written by rank 0): Ray Train restarts the group from that
    checkpoint; every epoch's row is written once, by rank 0, with the numbers one worker computes."""
    from raynas.results import RunDir
    from trainables.data_parallel import TRIAL_RESOURCES, WORKER_RESOURCES
    from trainables.fixed_trial import train_fixed
    from trainables.launch import run_trainable

    cfg = tiny("classify", "resources.workers=2", f"run.output_dir={tmp_path}")
    run = RunDir.create(tmp_path, "dp", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    marker = tmp_path / "killed"
    results = run_trainable(train_fixed, cfg, run, resources=TRIAL_RESOURCES,
                            param_space={WORKER_RESOURCES: {"cpu": 1.0}, "_crash_after_epoch": 1,
                                         "_crash_rank": 1, "_crash_marker": str(marker)})
    assert marker.exists(), "no worker was killed, so nothing was resumed"
    (result,) = list(results)
    assert result.error is None and result.metrics["epoch"] == 2
    df = run.read().sort_values("epoch")
    assert df["epoch"].tolist() == [1, 2]  # epoch 1 was not trained (or written) twice
    assert df["num_workers"].tolist() == [2, 2] and df["global_batch"].tolist() == [16, 16]
    assert run.meta["num_workers"] == 2
    want = _reference_losses("classify", 2)
    for got, ref in zip(df["train_loss"].tolist(), want, strict=True):
        assert math.isclose(got, ref, rel_tol=1e-4), (got, ref)
    assert df["test_acc"].notna().all()  # scored by rank 0


@pytest.mark.slow
def test_retrain_with_two_workers_through_the_cli(ray_session, tmp_path, capsys):
    """The issue's command at tiny sizes."""
    from conftest import run_cli

    from raynas.results import RunDir

    sets = [a for s in [*CLASSIFY, "train.epochs=1"] for a in ("--set", s)]
    code, out, err = run_cli(capsys, "retrain", "darts-v2", "--preset", "quickstart-classify", *sets,
                             "--num-workers", "2", "--resources", "cpu=1", "--output-dir", str(tmp_path),
                             "--name", "r2")
    assert code == 0, err
    run = RunDir.open(tmp_path / "r2")
    assert run.config["resources"]["workers"] == 2 and run.meta["num_workers"] == 2
    assert [w["rank"] for w in run.meta["workers"]] == [0, 1]  # where each rank ran (one node here)
    assert len({w["node_id"] for w in run.meta["workers"]}) == 1
    assert run.read()["epoch"].tolist() == [1]


@pytest.mark.slow
def test_a_gan_with_two_workers_through_the_cli_matches_one_worker(ray_session, tmp_path, capsys):
    """EMA-G scored by rank 0 after every epoch, Re-GAN pruning in epoch 2: the losses one worker computes."""
    from conftest import run_cli

    from raynas.results import RunDir

    sets = [a for s in GAN for a in ("--set", s)]
    code, out, err = run_cli(capsys, "train", "--preset", "quickstart", *sets, "--num-workers", "2",
                             "--resources", "cpu=1", "--output-dir", str(tmp_path), "--name", "g2")
    assert code == 0, err
    df = RunDir.open(tmp_path / "g2").read().sort_values("epoch")
    assert df["epoch"].tolist() == [1, 2] and df["fid"].notna().all()
    assert df["global_batch"].tolist() == [8, 8] and df["regan_phase"].tolist() == ["warmup", "sparse"]
    for got, ref in zip(df["d_loss"].tolist(), _reference_losses("gan", 2), strict=True):
        assert math.isclose(got, ref, rel_tol=1e-4), (got, ref)


def test_num_workers_refuses_a_batch_it_cannot_share(tmp_path, capsys):
    """Before Ray starts and before a run directory exists."""
    from conftest import assert_user_error, run_cli

    sets = [a for s in [*CLASSIFY, "train.batch_size=15"] for a in ("--set", s)]
    code, _, err = run_cli(capsys, "train", "--preset", "quickstart-classify", *sets, "--num-workers", "2",
                           "--output-dir", str(tmp_path), "--name", "bad")
    assert_user_error(code, err, "train.batch_size=15", "2 workers")
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_a_trial_of_a_users_own_tuner_trains_with_two_workers(ray_session, tmp_path):
    """A flat trial config with ``resources.workers=2`` (the trial holds its default CPU, the workers half a CPU
    each) trains on Ray Train workers: one results table with the 2-worker rows."""
    from ray import tune

    from trainables.tuner import experiment_run, train_fixed

    space = {"preset": "quickstart-classify", "task": "classify", "resources.workers": 2, "resources.cpu": 0.5,
             "data.limit": 64, "data.test_limit": 64, "model.layers": 3, "model.channels": 4, "train.batch_size": 16,
             "train.eval_batch_size": 64, "train.epochs": 1}
    tuner = tune.Tuner(train_fixed, param_space=space,
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="own", verbose=0))
    [result] = tuner.fit()
    assert result.error is None and result.metrics["epoch"] == 1
    df = experiment_run(tmp_path / "own").read()
    assert df["num_workers"].tolist() == [2] and df["test_acc"].notna().all()


def test_workers_belong_to_fixed_runs_only():
    with pytest.raises(ConfigError, match="resources.workers=2: data-parallel workers train one fixed network"):
        load_config("quickstart", ["resources.workers=2"])  # eagan's search
    assert tiny("classify", "resources.workers=2").resources.workers == 2


@pytest.mark.slow
def test_resume_continues_a_run_whose_worker_was_killed(ray_session, tmp_path, capsys):
    """No retries left (``run.max_failures=0``): rank 1's death after epoch 1 ends the run with an error; ``raynas
    train --resume`` restores the trial, whose TorchTrainer (same name) continues from epoch 1's checkpoint."""
    from conftest import run_cli

    from raynas.errors import RaynasError
    from raynas.results import RunDir
    from trainables.data_parallel import TRIAL_RESOURCES, WORKER_RESOURCES
    from trainables.fixed_trial import train_fixed
    from trainables.launch import run_trainable

    cfg = tiny("classify", "resources.workers=2", "run.max_failures=0", f"run.output_dir={tmp_path}")
    run = RunDir.create(tmp_path, "killed", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    marker = tmp_path / "killed-once"
    with pytest.raises(RaynasError, match="internal error"):
        run_trainable(train_fixed, cfg, run, resources=TRIAL_RESOURCES,
                      param_space={WORKER_RESOURCES: {"cpu": 1.0}, "_crash_after_epoch": 1, "_crash_rank": 1,
                                   "_crash_marker": str(marker)})
    assert marker.exists() and run.read()["epoch"].tolist() == [1]
    code, _, err = run_cli(capsys, "train", "--resume", str(run.path))
    assert code == 0, err
    assert sorted(run.read()["epoch"].tolist()) == [1, 2]  # epoch 1 from before the kill, epoch 2 resumed
