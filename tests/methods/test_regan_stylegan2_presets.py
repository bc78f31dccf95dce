"""The Re-GAN paper-scale presets (stylegan2-fewshot, regan-stylegan2-fewshot, regan-stylegan2-cifar10,
regan-progan-cifar10, dartsgal-cats-vs-dogs): the paper's / authors' settings, a clear error without the folder they
need, and each runs end to end at tiny sizes on CPU (sizes shrunk with overrides, everything else the preset's)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_user_error, run_cli
from PIL import Image

from raynas.config import load_config
from raynas.gan.preflight import preflight
from raynas.gan.trainer import GANTrainer

CPU = torch.device("cpu")
# StyleGAN2 at 32 px with 8 channels; everything not a size stays the preset's
STYLEGAN2_TINY = ["data.resolution=32", "model.latent_dim=16", "model.mapping_layers=1", "model.channel_multiplier=1",
                  "model.max_channels=8", "train.iters_per_epoch=3", "train.gen_batch_size=4",
                  "train.dis_batch_size=4", "train.epochs=2", "eval.every=0", "eval.extractor=raynas-fmnist-cnn",
                  "regan.warmup=1", "regan.interval=1"]
PROGAN_TINY = ["model.latent_dim=8", "model.progan_channels=4", "model.progan_stage_epochs=[1,1,1,1]",
               "train.epochs=4", "train.iters_per_epoch=1", "train.gen_batch_size=4", "train.dis_batch_size=4",
               "eval.every=0", "eval.extractor=raynas-fmnist-cnn", "regan.warmup=3", "regan.interval=1"]


def image_folder(root: Path, n: int = 16, size: tuple[int, int] = (40, 36)) -> Path:
    """``n`` random RGB PNGs under ``root`` (a few in a sub-folder: the folder is read recursively)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        where = root / "more" if i % 4 == 0 else root
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(where / f"{i}.png")
    return root


def _train(cfg) -> tuple[GANTrainer, list[dict]]:
    preflight(cfg)
    t = GANTrainer(cfg, device=CPU)
    rows = [t.train_epoch() for _ in range(cfg.train.epochs)]
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)
    return t, rows


def test_fewshot_presets_follow_the_authors_stylegan2_code():
    base, regan = load_config("stylegan2-fewshot", method="train"), load_config("regan-stylegan2-fewshot")
    for cfg in (base, regan):
        t, m, d = cfg.train, cfg.model, cfg.data
        assert (d.name, d.resolution, d.root) == ("folder", 256, None)
        assert (m.generator, m.discriminator, m.latent_dim, m.mapping_layers, m.channel_multiplier) == \
            ("stylegan2", "stylegan2", 512, 8, 2)
        assert (t.gen_batch_size, t.dis_batch_size, t.lr_g, t.lr_d, t.beta1, t.beta2) == (16, 16, 0.002, 0.002, 0, 0.99)
        assert (t.loss, t.r1_gamma, t.r1_every, t.pl_weight, t.pl_every, t.style_mixing) == \
            ("nonsaturating", 10, 16, 2, 4, 0.9)
        assert t.augment == "diffaugment" and t.augment_policy == ("color", "translation", "cutout")
        assert t.epochs * t.iters_per_epoch == 800_000 and t.ema_decay == pytest.approx(0.5 ** (32 / 10_000), abs=1e-5)
        assert cfg.eval.num_samples == 5000 and cfg.eval.real_split == "train"
    r = regan.regan
    assert not base.regan.enabled and r.enabled
    assert (r.sparsity, r.interval, r.unit, r.warmup, r.dense_lr_factor, r.exclude) == (0.1, 10, "iter", 100, 0.1, None)
    # the table's rows differ only in regan.enabled and train.augment: everything else is the same config
    same = load_config("regan-stylegan2-fewshot", ["regan.enabled=false"], method="train").to_dict()
    other = base.to_dict()
    for key in ("data", "model", "train", "eval", "regan", "resources"):
        assert same[key] == other[key], key


def test_cifar10_presets_follow_the_authors_code():
    s = load_config("regan-stylegan2-cifar10")
    assert (s.data.name, s.data.resolution, s.data.fraction, s.model.generator) == ("cifar10", 32, 0.1, "stylegan2")
    assert (s.regan.sparsity, s.regan.interval, s.regan.unit, s.regan.warmup) == (0.1, 10, "iter", 100)
    p = load_config("regan-progan-cifar10")
    assert (p.model.generator, p.model.latent_dim, p.model.progan_channels) == ("progan", 512, 512)
    assert p.model.progan_stage_epochs == (2, 2, 2, 8) and p.train.epochs == 14 and p.train.loss == "wgan-gp"
    assert (p.train.lr_g, p.train.beta2, p.regan.sparsity, p.regan.interval, p.regan.unit) == (1e-3, 0.99, 0.3, 2,
                                                                                               "epoch")
    # Re-GAN starts in the 32-px stage after its 1 warm-up epoch (the authors' --warmup_epoch 1 of the last stage)
    phases = [p.regan.schedule.phase(e) for e in range(p.train.epochs)]
    assert phases[6:] == ["warmup", "sparse", "sparse", "dense", "dense", "sparse", "sparse", "dense"]


@pytest.mark.parametrize("argv", [["train", "--preset", "stylegan2-fewshot"], ["train", "--preset",
                                  "regan-stylegan2-fewshot"], ["search", "darts-gal", "--preset",
                                                               "dartsgal-cats-vs-dogs"]])
def test_folder_presets_say_they_need_the_folder(argv, capsys, tmp_path):
    code, _, err = run_cli(capsys, *argv, "--output-dir", str(tmp_path))
    assert_user_error(code, err, "data.name=folder needs the folder of your images", "data.root=DIR")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("preset", ["stylegan2-fewshot", "regan-stylegan2-fewshot"])
def test_fewshot_presets_train_on_a_folder_at_tiny_size(preset, tmp_path):
    root = image_folder(tmp_path / "shots")
    cfg = load_config(preset, [f"data.root={root}", *STYLEGAN2_TINY], method="train")
    t, rows = _train(cfg)
    assert t.num_images == 16 and t.sample_grid(2).shape == (2, 3, 32, 32)
    if cfg.regan.enabled:  # G updates W S D | S D S: the toRGB layers stay dense, the rest at 10 %
        assert [r["regan_phase"] for r in rows] == ["dense", "sparse"]
        assert not any("to_rgb" in n for n in t.regan.params) and t.regan.params
    else:
        assert "regan_phase" not in rows[-1]


def test_regan_stylegan2_cifar10_at_tiny_size(tmp_path):
    root = image_folder(tmp_path / "cifar-like", n=40)  # stands in for CIFAR-10, which tests never download
    cfg = load_config("regan-stylegan2-cifar10", ["data.name=folder", f"data.root={root}", *STYLEGAN2_TINY])
    t, rows = _train(cfg)
    assert t.num_images == 4  # data.fraction 0.1 of the 40 images
    assert rows[-1]["regan_phase"] == "sparse" and 0.05 < rows[-1]["regan_sparsity"] < 0.1


def test_regan_progan_cifar10_at_tiny_size(tmp_path):
    root = image_folder(tmp_path / "cifar-like", n=40)
    cfg = load_config("regan-progan-cifar10", ["data.name=folder", f"data.root={root}", *PROGAN_TINY])
    t, rows = _train(cfg)
    assert [r["regan_phase"] for r in rows] == ["warmup", "warmup", "warmup", "sparse"]
    assert t.G.step == 3 and rows[-1]["regan_sparsity"] == pytest.approx(0.3, abs=0.05)


def test_dartsgal_cats_vs_dogs_at_tiny_size(tmp_path):
    from raynas.methods.dartsgal.pipeline import DartsGalPipeline

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for label in ("cat", "dog"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (30, 34, 3), dtype=np.uint8)).save(
                    tmp_path / split / label / f"{i}.jpg")
    tiny = [f"data.root={tmp_path}", "data.resolution=16", "dartsgal.layers=3", "dartsgal.channels=4",
            "dartsgal.baseline_epochs=1", "dartsgal.prune_epochs=1", "dartsgal.retrain_epochs=1",
            "dartsgal.prune_batch_size=4", "dartsgal.n_critic=1", "dartsgal.mask_step=1", "train.batch_size=4",
            "train.eval_batch_size=8"]
    cfg = load_config("dartsgal-cats-vs-dogs", tiny)
    assert (cfg.data.name, cfg.dartsgal.genotype, cfg.dartsgal.n_critic) == ("folder", "darts-v2", 1)
    assert load_config("dartsgal-cats-vs-dogs").data.resolution == 64
    torch.manual_seed(0)
    pipe = DartsGalPipeline(cfg, CPU)
    baseline = pipe.baseline_trainer()
    baseline.train_epoch()
    pruner = pipe.pruner(baseline.model.state_dict())
    row = pruner.train_epoch()
    assert all(math.isfinite(v) for v in row.values() if isinstance(v, float))
