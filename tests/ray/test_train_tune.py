"""The fixed-GAN trainable under Tune: two trials in the shared Ray, checkpoints, resume after a kill."""

from __future__ import annotations

import copy
import os
import re
import signal

import pytest
import torch

from raynas.config import load_config
from raynas.errors import TrainingDiverged
from raynas.gan.trainer import GANTrainer
from raynas.results import RunDir

TINY = [
    "model.gf_dim=8", "model.df_dim=8", "model.latent_dim=16",
    "train.iters_per_epoch=3", "train.gen_batch_size=8", "train.dis_batch_size=8",
    "eval.num_samples=120", "eval.batch_size=60", "eval.every=1", "data.limit=400",
]


def tiny_config(tmp_path, *extra):
    return load_config("quickstart", [*TINY, f"run.output_dir={tmp_path}", *extra], method="train")


def make_run(cfg, name):
    return RunDir.create(cfg.run.output_dir, name, config=cfg.to_dict(), seed=cfg.train.seed,
                         preset=cfg.preset, device="cpu")


@pytest.mark.slow
def test_two_trials_report_and_checkpoint(ray_session, tmp_path):
    from trainables.fixed_trial import train_fixed as train_gan
    from trainables.launch import run_trainable

    cfg = tiny_config(tmp_path, "train.epochs=2")
    run = make_run(cfg, "two")
    results = run_trainable(train_gan, cfg, run, resources={"cpu": 1}, num_samples=2)
    assert len(results) == 2
    df = run.read()
    for result in results:
        assert result.error is None
        assert result.metrics["epoch"] == 2
        # what Tune reports for the last epoch is what the results table holds for it
        row = df[(df["candidate_id"] == result.metrics["trial_id"]) & (df["epoch"] == 2)].iloc[0]
        assert (result.metrics["fid"], result.metrics["is_mean"]) == pytest.approx((row["fid"], row["is_mean"]))
        assert result.checkpoint is not None
    assert len(df) == 4
    assert sorted(df.groupby("candidate_id")["epoch"].apply(sorted).tolist()) == [[1, 2], [1, 2]]
    assert (df["num_samples"] == 120).all()
    # TensorBoard got sample grids next to Tune's scalars.
    assert list((run.path / "tune").rglob("events.out.tfevents*"))
    # `raynas metrics checkpoint:...` rebuilds the EMA generator from the checkpoint and reproduces the
    # FID the trial reported (torch-fidelity draws the same latents; the real statistics are cached).
    from raynas.export.api import load_generator
    from raynas.metrics import DatasetSource, evaluate_generator

    first = list(results)[0]
    G, latent_dim = load_generator(first.checkpoint.path)
    again = evaluate_generator(G, latent_dim, DatasetSource("embedded", "test", resolution=32, channels=1),
                               metrics=("fid",), protocol="quick", num_samples=120, extractor="raynas-fmnist-cnn",
                               device="cpu", batch_size=60)
    assert again.fid == pytest.approx(first.metrics["fid"], rel=1e-4)


@pytest.mark.slow
def test_killed_trial_resumes_from_checkpoint(ray_session, tmp_path):
    from trainables.fixed_trial import train_fixed as train_gan
    from trainables.launch import run_trainable

    marker = tmp_path / "crashed.txt"
    cfg = tiny_config(tmp_path, "train.epochs=3", "eval.every=3")
    run = make_run(cfg, "resume")
    results = run_trainable(train_gan, cfg, run, resources={"cpu": 1}, max_failures=1,
                            param_space={"_crash_after_epoch": 1, "_crash_marker": str(marker)})
    assert marker.exists(), "the worker was not killed, so nothing was resumed"
    (result,) = list(results)
    assert result.error is None
    assert result.metrics["epoch"] == 3
    # Epoch 1 ran once: the retried worker restored the epoch-1 checkpoint instead of starting over.
    assert sorted(run.read()["epoch"].tolist()) == [1, 2, 3]


def test_ctrl_c_during_tune_is_an_interrupted_run_that_resumes(ray_session, tmp_path, capsys, monkeypatch):
    """Tune catches the first Ctrl-C itself and ends its trials as TERMINATED: raynas must still say the run was
    interrupted (exit 130 with the resume command), never print it as finished; the resume runs the trial on."""
    from conftest import run_cli

    import trainables.launch
    from raynas.errors import RunInterrupted
    from trainables.launch import run_trainable

    marker = tmp_path / "pressed"

    def trial(config):  # presses Ctrl-C in the driver once, after its first report
        import time

        from ray import tune

        for epoch in range(1, 4):
            tune.report({"epoch": epoch})
            if not os.path.exists(config["_marker"]):
                open(config["_marker"], "w").close()
                os.kill(config["_driver_pid"], signal.SIGINT)
                time.sleep(60)  # Tune stops the trial long before this
        return None

    cfg = tiny_config(tmp_path)
    run = make_run(cfg, "interrupted")
    with pytest.raises(RunInterrupted, match=f"^{re.escape(run.location)}$") as info:
        run_trainable(trial, cfg, run, resources={"cpu": 1},
                      param_space={"_driver_pid": os.getpid(), "_marker": str(marker)})
    assert marker.exists() and info.value.run_path == run.location  # what the CLI prints after --resume
    (result,) = list(run_trainable(trial, cfg, run, resources={"cpu": 1}, resume=True))
    assert result.metrics["epoch"] == 3 and result.metrics["done"]

    def interrupted(*args, **kwargs):
        raise RunInterrupted(str(tmp_path / "cli-run"))

    monkeypatch.setattr(trainables.launch, "run_trainable", interrupted)
    code, out, err = run_cli(capsys, "train", "--preset", "quickstart", *[a for t in TINY for a in ("--set", t)],
                             "--output-dir", str(tmp_path), "--name", "cli-run")
    assert code == 130, err
    assert "interrupted" in err and "resume" in err and "cli-run" in err
    assert "raynas: results" not in out + err  # nothing is reported as finished


def test_every_trainable_turns_its_trial_config_into_a_config_the_same_way():
    """Search trials, grid cells, Re-GAN cells, the seed selection and fixed runs share one conversion
    (``trainables.common.trial_config``): the run's resolved config plus the trial's dotted keys, the method's
    short grid aliases (``kprime``, ``seed``) and a ``cell`` dict of dotted keys; a user's flat config of
    ``--set`` keys too. Bug caught: three conversions that each knew only some of these (a search ignored a
    ``cell`` dict, a fixed run or Re-GAN cell ignored the aliases), so a key meant something in one trainable
    and nothing in the next."""
    from raynas.config import FIXED
    from trainables.common import trial_config, trial_values

    damgan = load_config("quickstart", [], method="damgan").to_dict()
    assert trial_config({"raynas": damgan, "run_dir": "x"}).to_dict() == damgan  # no trial values: as resolved
    cfg = trial_config({"raynas": damgan, "run_dir": "x", "kprime": 2, "seed": 7, "train.lr_g": 1e-3,
                        "retrain_epochs": 1, "_crash_after_epoch": None, "cell": {"damgan.selector": "darts"}})
    assert (cfg.damgan.kprime, cfg.train.seed, cfg.train.lr_g, cfg.damgan.selector) == (2, 7, 1e-3, "darts")
    regan = load_config("quickstart", [], method="regan").to_dict()
    cell = {"raynas": regan, "run_dir": "x", "cell": {"regan.sparsity": 0.5, "regan.enabled": True},
            "train.seed": 3, "sparsity": None, "retrain_epochs": None}
    cfg = trial_config(cell)
    assert (cfg.regan.sparsity, cfg.regan.enabled, cfg.train.seed) == (0.5, True, 3)
    assert trial_values(cell, regan) == {"train.seed": 3, "regan.sparsity": 0.5, "regan.enabled": True}
    fixed = trial_config({"preset": "quickstart", "train.epochs": 2, "seed": 5}, FIXED)  # no method: no aliases
    assert (fixed.method, fixed.train.epochs, fixed.train.seed) == (FIXED, 2, 0)
    flat = trial_config({"preset": "quickstart", "method": "damgan", "kprime": 8, "train.seed": 4})
    assert (flat.method, flat.damgan.kprime, flat.train.seed) == ("damgan", 8, 4)


def test_trainer_state_round_trip(tmp_path):
    cfg = tiny_config(tmp_path, "train.epochs=2")
    a = GANTrainer(cfg, device=torch.device("cpu"))
    a.train_epoch()
    state = copy.deepcopy(a.state_dict())  # state_dict() shares tensors with the live model
    b = GANTrainer(cfg, device=torch.device("cpu"))
    b.load_state_dict(state)
    assert b.epoch == 1 and b.step == a.step == 3
    for (k, pa), pb in zip(a.G.state_dict().items(), b.G.state_dict().values()):
        assert torch.equal(pa, pb), k
    # Same RNG and data-sampler state after restore → the next epoch is identical on both.
    # (Optimizer.load_state_dict keeps tensors by reference, so each load gets its own copy.)
    a.load_state_dict(copy.deepcopy(state))
    la = a.train_epoch()
    b.load_state_dict(copy.deepcopy(state))
    lb = b.train_epoch()
    assert la["d_loss"] == pytest.approx(lb["d_loss"], rel=1e-6)
    assert la["g_loss"] == pytest.approx(lb["g_loss"], rel=1e-6)


def test_nan_loss_stops_with_clear_error_and_keeps_results(tmp_path):
    from raynas.checkpoints import load_checkpoint, save_checkpoint

    cfg = tiny_config(tmp_path, "train.epochs=3")
    run = make_run(cfg, "nan")
    trainer = GANTrainer(cfg, device=torch.device("cpu"))
    trainer.train_epoch()
    ckpt = run.path / "state.pt"
    save_checkpoint(ckpt, trainer.state_dict())
    run.append([{"epoch": 1, "d_loss": 0.5}])
    with torch.no_grad():
        next(trainer.D.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"^The (discriminator|generator) loss became (nan|inf|-inf) at step "
                                               r"\d+; the update was skipped so the weights stay finite"):
        trainer.train_epoch()
    assert load_checkpoint(ckpt)["epoch"] == 1
    assert run.read()["epoch"].tolist() == [1]


@pytest.mark.slow
def test_diverged_trial_stops_cleanly_and_keeps_earlier_results(ray_session, tmp_path):
    from raynas.errors import RaynasError
    from trainables.fixed_trial import train_fixed as train_gan
    from trainables.launch import run_trainable

    cfg = tiny_config(tmp_path, "train.epochs=4", "eval.every=0")
    run = make_run(cfg, "diverge")
    with pytest.raises(RaynasError, match=r"^training diverged: The (discriminator|generator) loss became "
                                          r"(nan|inf|-inf) at step \d+; .*\. Checkpoints and results up to the last "
                                          r"good epoch are kept in the run directory\.$"):
        run_trainable(train_gan, cfg, run, resources={"cpu": 1}, param_space={"_nan_after_epoch": 1})
    assert run.read()["epoch"].tolist() == [1]
    assert list((run.path / "tune").rglob("state.pt")), "the epoch-1 checkpoint must stay on disk"


@pytest.mark.slow
def test_user_error_inside_a_trial_is_reported_once_without_a_remote_traceback(ray_session, tmp_path):
    from raynas.errors import GenotypeError
    from trainables.fixed_trial import train_fixed as train_gan
    from trainables.launch import run_trainable

    # preflight would refuse this on the driver; a file that vanishes before the trial starts gets here
    cfg = tiny_config(tmp_path, "train.epochs=1", "model.generator=genotype",
                      f"model.g_genotype={tmp_path / 'gone.json'}")
    run = make_run(cfg, "usererr")
    with pytest.raises(GenotypeError, match=re.escape(f"{tmp_path / 'gone.json'} does not exist")) as info:
        run_trainable(train_gan, cfg, run, resources={"cpu": 1})
    message = str(info.value)
    assert "Traceback" not in message and "ray::" not in message
