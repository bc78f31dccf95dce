"""Re-GAN on Ray: a trial killed in mid sparse phase resumes in that phase with the same masks (and ends exactly
where an uninterrupted run ends), and `raynas retrain` of an EAGAN genotype composes with --set regan.enabled=true."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli
from figures import capture_figures, is_png

from raynas.checkpoints import load_checkpoint
from raynas.config import load_config
from raynas.gan.trainer import GANTrainer
from raynas.results import RunDir

TINY = ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=12", "train.iters_per_epoch=2",
        "train.gen_batch_size=8", "train.dis_batch_size=8", "data.limit=200", "eval.num_samples=100",
        "eval.batch_size=50", "eval.every=0"]
REGAN = ["regan.enabled=true", "regan.warmup=1", "regan.interval=2", "regan.sparsity=0.5"]


def _checkpoints(run: RunDir) -> dict[int, dict]:
    states = [load_checkpoint(p) for p in sorted((run.path / "tune").rglob("state.pt"))]
    return {s["epoch"]: s for s in states}


@pytest.mark.slow
def test_killed_in_sparse_phase_resumes_with_the_same_masks(ray_session, tmp_path):
    from trainables.fixed_trial import train_fixed
    from trainables.launch import run_trainable

    cfg = load_config("quickstart", [*TINY, *REGAN, "train.epochs=4", f"run.output_dir={tmp_path}"], method="train")
    run = RunDir.create(cfg.run.output_dir, "resume", config=cfg.to_dict(), seed=0, preset="quickstart", device="cpu")
    marker = tmp_path / "crashed.txt"
    # epochs W S S D: killed after epoch 2, the first of two sparse epochs
    (result,) = run_trainable(train_fixed, cfg, run, resources={"cpu": 1}, max_failures=1,
                              param_space={"_crash_after_epoch": 2, "_crash_marker": str(marker)})
    assert marker.exists(), "the worker was not killed, so nothing was resumed"
    assert result.error is None and result.metrics["epoch"] == 4
    df = run.read().sort_values("epoch")
    assert df["epoch"].tolist() == [1, 2, 3, 4]  # epoch 2 ran once: the retry restored its checkpoint
    assert df["regan_phase"].tolist() == ["warmup", "sparse", "sparse", "dense"]
    assert df["lr_g"].tolist() == pytest.approx([2e-4, 2e-4, 2e-4, 2e-5])
    assert df["regan_sparsity"].iloc[1:3].tolist() == pytest.approx([0.5, 0.5], abs=0.01)
    assert (df["train_flops"].diff().iloc[1:] > 0).all()
    states = _checkpoints(run)  # Tune keeps the last two: epochs 3 (sparse, after the resume) and 4
    assert states[3]["regan"]["phase"] == "sparse" and states[3]["regan"]["unit"] == 2
    # the resumed run is exactly the uninterrupted one: same masks, moments, RNG, FLOPs, weights
    straight = GANTrainer(cfg, device=torch.device("cpu"))
    for _ in range(3):
        straight.train_epoch()
    for name, keep in straight.regan.masks.items():
        assert torch.equal(states[3]["regan"]["masks"][name], keep), name
    straight.train_epoch()
    final = states[4]
    assert final["regan"]["phase"] == "dense" and not final["regan"]["active"]
    assert final["flops"]["g"] == pytest.approx(straight.flops.g)
    for name, value in straight.G.state_dict().items():
        torch.testing.assert_close(final["G"][name], value, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
def test_retrain_an_eagan_genotype_with_regan(ray_session, capsys, tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    sets = [a for s in [*TINY, *REGAN, "train.epochs=2", "eval.every=1"] for a in ("--set", s)]
    code, out, err = run_cli(capsys, "retrain", "eagan-cifar10-G", "--preset", "quickstart", "--protocol", "quick",
                             *sets, "--output-dir", str(tmp_path), "--name", "eagan-regan")
    assert code == 0, err
    run = RunDir.open(tmp_path / "eagan-regan")
    df = run.read().sort_values("epoch")
    assert df["regan_phase"].tolist() == ["warmup", "sparse"]
    assert df["regan_sparsity"].iloc[1] == pytest.approx(0.5, abs=0.01)
    assert df["fid"].notna().all() and df["genotype"].str.contains("eagan-g").all()
    plot = run.path / "plots" / "regan.png"
    assert f"raynas: plot     {plot}" in out.splitlines() and is_png(plot)
    # regan.png: G's measured sparsity and the FID against the epoch, each epoch shaded by its phase
    fig = figures[plot.resolve()]
    sparsity, fid = fig.axes
    assert fig.legends == [["warmup", "sparse", "dense"]]
    assert sparsity.line("overall").xy.tolist() == [[float(e), s] for e, s in zip(df["epoch"], df["regan_sparsity"])]
    (line,) = fid.lines
    assert line.xy.tolist() == [[float(e), f] for e, f in zip(df["epoch"], df["fid"])]
    assert fid.title == "FID of the EMA generator (lower is better)" and sparsity.title.startswith("sparsity of G")
    state = _checkpoints(run)[2]
    assert state["regan"]["active"] and any("cells" in n or "fc" in n for n in state["regan"]["masks"])
    # TensorBoard: the epoch's phase, sparsity, lr, FLOPs and FID as scalars next to the sample grids
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {t for events in (run.path / "tune").rglob("events.out.tfevents*")  # Tune writes its own file too
            for t in EventAccumulator(str(events)).Reload().Tags()["scalars"]}
    assert {"regan/phase", "regan/sparsity", "regan/sparsity_min", "regan/sparsity_max", "train/lr_g",
            "train/train_flops", "eval/fid", "eval/is_mean"} <= set(tags), tags
