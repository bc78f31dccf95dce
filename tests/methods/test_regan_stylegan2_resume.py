"""A tiny StyleGAN2 + Re-GAN + DiffAugment run at 32 px on a folder of generated images, through the CLI
(`raynas train --preset regan-stylegan2-fewshot`), killed with SIGKILL once its first checkpoint is on disk and
continued with `raynas train --resume`: it completes with every epoch's row exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli
from test_regan_stylegan2_presets import STYLEGAN2_TINY, image_folder

from raynas.results import RunDir

EPOCHS = 6


def _checkpoints(run) -> list:
    return sorted((run / "tune").rglob("state.pt")) if (run / "tune").is_dir() else []


@pytest.mark.slow
def test_killed_stylegan2_regan_diffaugment_run_resumes_through_the_cli(ray_session, tmp_path, capsys):
    root = image_folder(tmp_path / "shots")
    sets = [f"data.root={root}", *STYLEGAN2_TINY, f"train.epochs={EPOCHS}", "train.checkpoint_every=1",
            "eval.num_samples=32", "eval.batch_size=32"]
    args = ["train", "--preset", "regan-stylegan2-fewshot", *[a for s in sets for a in ("--set", s)],
            "--resources", "cpu=1,gpu=0",  # saved with the run: the resume below runs on CPUs without it
            "--output-dir", str(tmp_path), "--name", "killed",
            "--address", ray_session.get_runtime_context().gcs_address]
    log = tmp_path / "driver.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "raynas", *args], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    run = tmp_path / "killed"
    deadline = time.time() + 240
    try:
        while not _checkpoints(run):
            assert proc.poll() is None, f"the run ended before its first checkpoint:\n{log.read_text()[-3000:]}"
            if time.time() > deadline:
                pytest.fail("no checkpoint within 240 s")
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the driver, by its process group: no other Ray process
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # the trial belonged to the killed driver; Ray ends it: wait until no checkpoint is being added
    seen, still = _checkpoints(run), time.time()
    while time.time() - still < 3 and time.time() < deadline:
        time.sleep(0.2)
        if _checkpoints(run) != seen:
            seen, still = _checkpoints(run), time.time()
    before = RunDir.open(run).read()
    done = sorted(before["epoch"]) if "epoch" in before else []
    assert len(done) < EPOCHS, "killed too late to test resuming"
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert code == 0, err
    df = RunDir.open(run).read()
    train = df[df["stage"] == "train"] if "stage" in df else df
    assert sorted(train["epoch"]) == list(range(1, EPOCHS + 1)), "an epoch was lost or written twice"
    train = train.sort_values("epoch")
    # 3 G updates per epoch, warm-up 1, g 1: W S D | S D S | D S D ...: the epoch ends dense, then sparse
    assert train["regan_phase"].tolist() == ["dense", "sparse"] * (EPOCHS // 2)
    sparse = train[train["regan_phase"] == "sparse"]
    assert ((sparse["regan_sparsity"] > 0.05) & (sparse["regan_sparsity"] < 0.1)).all()  # toRGB stays dense
    assert train["train_flops"].is_monotonic_increasing
    assert df["fid"].notna().any() and (df["fid"].dropna() > 0).all()


def test_resources_gpu_0_runs_a_gpu_preset_on_cpus(ray_session):
    """Every paper preset asks for gpu=1; `raynas train --resources gpu=0` runs it on CPUs, as the refusal without
    it says (the request used to be checked against the preset's gpu=1 whatever --resources said)."""
    from argparse import Namespace

    from raynas.cli.common import trial_resources
    from raynas.config import load_config
    from raynas.errors import ConfigError

    if ray_session.cluster_resources().get("GPU", 0) > 0:
        pytest.skip("this Ray has a GPU: nothing is refused")
    cfg = load_config("regan-stylegan2-fewshot")
    assert cfg.resources.gpu == 1
    assert trial_resources(Namespace(resources="cpu=1,gpu=0"), cfg) == {"cpu": 1.0, "gpu": 0.0}
    with pytest.raises(ConfigError, match=r"asks for gpu=1 but this Ray has 0 GPU\(s\).*--resources gpu=0"):
        trial_resources(Namespace(resources="cpu=1"), cfg)
