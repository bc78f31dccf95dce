"""Re-GAN inside the fixed GAN trainer (no Ray): real epochs keep pruned weights and their EMA copies at
exactly 0, the dense phase runs at lr × 0.1, the epoch rows carry phase / lr / sparsity / FLOPs, the
checkpoint restores a run in mid sparse phase with the same masks, and any generator (SNGAN, an EAGAN or a
DAMGAN genotype) composes with it."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from raynas.config import load_config
from raynas.gan.regan_masks import num_pruned
from raynas.gan.trainer import GANTrainer

CPU = torch.device("cpu")
TINY = ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=16", "train.iters_per_epoch=3",
        "train.gen_batch_size=8", "train.dis_batch_size=8", "data.limit=200", "train.lr_g=1e-3"]


def trainer(*extra: str) -> GANTrainer:
    return GANTrainer(load_config("quickstart", [*TINY, "regan.enabled=true", *extra], method="train"), device=CPU)


def assert_masked_zero(t: GANTrainer) -> None:
    ema = dict(t.ema.module.named_parameters())
    assert t.regan.masks
    for name, keep in t.regan.masks.items():
        p = t.regan.params[name]
        assert torch.all(p[~keep] == 0), name
        assert torch.all(ema[name][~keep] == 0), name
        assert int((~keep).sum()) == num_pruned(p.numel(), t.cfg.regan.sparsity), name


def test_schedule_rows_lr_and_truly_sparse_epochs():
    # warmup 1, g 2: W S S D D S; sparsity 0.5
    t = trainer("train.epochs=6", "regan.warmup=1", "regan.interval=2", "regan.sparsity=0.5")
    rows, dense_lr = [], []
    for _ in range(6):
        stats = t.train_epoch()
        rows.append(t.row(stats))
        if t.regan.phase == "sparse":
            assert_masked_zero(t)  # after real epochs: every masked weight and its EMA copy is exactly 0
        if t.regan.phase == "dense":
            dense_lr.append(t.opt_g.param_groups[0]["lr"])
    assert [r["regan_phase"] for r in rows] == ["warmup", "sparse", "sparse", "dense", "dense", "sparse"]
    assert [r["regan_unit"] for r in rows] == list(range(6))
    assert [r["lr_g"] for r in rows] == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-3])
    assert all(r["lr_g"] == pytest.approx(r["regan_lr_g"]) for r in rows)
    assert dense_lr == pytest.approx([1e-4, 1e-4])
    sparse = [r for r in rows if r["regan_phase"] == "sparse"]
    assert all(r["regan_sparsity"] == pytest.approx(0.5, abs=0.01) and r["regan_sparsity_max"] == 0.5 for r in sparse)
    assert rows[0]["regan_sparsity"] < 0.01  # dense warm-up: nothing pruned
    # FLOPs grow every epoch; a sparse epoch costs less than the warm-up epoch (pruned weights skipped)
    flops = [r["train_flops"] for r in rows]
    assert all(b > a for a, b in zip(flops, flops[1:]))
    assert flops[1] - flops[0] < flops[0]
    assert rows[3]["train_flops"] - rows[2]["train_flops"] == pytest.approx(flops[0])  # dense epoch = full cost


def test_iteration_units_count_generator_updates():
    t = trainer("train.epochs=2", "train.n_critic=3", "train.iters_per_epoch=6", "regan.unit=iter", "regan.warmup=1",
                "regan.interval=1")
    t.train_epoch()  # G updates at steps 0 and 3: units 0 (warm-up) and 1 (sparse)
    assert t.regan.unit == 1 and t.regan.phase == "sparse"
    assert_masked_zero(t)
    t.train_epoch()  # units 2 (dense) and 3 (sparse)
    assert t.regan.unit == 3 and t.regan.phase == "sparse"
    assert_masked_zero(t)


def test_checkpoint_in_mid_sparse_phase_restores_phase_masks_and_flops():
    a = trainer("train.epochs=5", "regan.warmup=1", "regan.interval=3", "regan.sparsity=0.4")
    a.train_epoch()
    a.train_epoch()  # epoch 1: first of three sparse epochs
    state = copy.deepcopy(a.state_dict())
    assert state["regan"]["phase"] == "sparse" and state["regan"]["active"] and state["flops"]["g"] > 0
    b = trainer("train.epochs=5", "regan.warmup=1", "regan.interval=3", "regan.sparsity=0.4")
    b.load_state_dict(copy.deepcopy(state))
    assert b.regan.phase == "sparse" and b.regan.active and b.regan.unit == 1
    assert b.flops.total == pytest.approx(a.flops.total)
    for name, keep in a.regan.masks.items():
        assert torch.equal(b.regan.masks[name], keep), name
    sa, sb = a.train_epoch(), b.train_epoch()  # the next sparse epoch is the same on both
    assert sa["d_loss"] == pytest.approx(sb["d_loss"], rel=1e-6)
    for name, keep in a.regan.masks.items():
        assert torch.equal(b.regan.masks[name], keep), name
    assert_masked_zero(b)
    # a checkpoint written with Re-GAN off cannot resume a Re-GAN run
    from raynas.errors import CheckpointError

    off = GANTrainer(load_config("quickstart", [*TINY, "train.epochs=5"], method="train"), device=CPU)
    with pytest.raises(CheckpointError, match="Re-GAN"):
        off.load_state_dict(copy.deepcopy(state))


def test_regan_off_keeps_training_unchanged_but_counts_flops():
    t = GANTrainer(load_config("quickstart", [*TINY, "train.epochs=1"], method="train"), device=CPU)
    assert t.regan is None
    row = t.row(t.train_epoch())
    assert row["train_flops"] > 0 and not any(k.startswith("regan_") for k in row)
    assert "regan" not in t.state_dict()


def test_data_fraction_trains_on_a_seeded_subset():
    a = trainer("data.fraction=0.25")
    assert a.num_images == 50
    b = trainer("data.fraction=0.25")
    assert torch.equal(a.real.sample(8), b.real.sample(8))


@pytest.mark.parametrize("space", ["eagan", "damgan"])
def test_composes_with_genotype_generators(space, tmp_path):
    if space == "eagan":
        genotype = "eagan-cifar10-G"
    else:
        from raynas.spaces import get_space

        genotype = str(tmp_path / "damgan_G.json")
        get_space("damgan-g").sample(random.Random(3)).save(genotype)
    t = trainer("train.epochs=2", "regan.warmup=1", "regan.interval=1", "model.generator=genotype",
                f"model.g_genotype={genotype}", "model.latent_dim=12")
    assert type(t.G).__name__ != "SNGANGenerator"
    t.train_epoch()
    t.train_epoch()
    assert t.regan.phase == "sparse"
    assert_masked_zero(t)
    assert t.row({"d_loss": 0.0, "g_loss": 0.0, **t.regan.stats()})["regan_sparsity"] > 0.25
