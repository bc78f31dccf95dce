"""train.augment: DiffAugment's transforms move and cut what they should and pass gradients, ADA's p follows
r_t by the paper's step and is the identity at p = 0, APA swaps the expected share of reals, and a tiny GAN
run with each setting trains and resumes exactly from its checkpoint."""

from __future__ import annotations

import copy

import pytest
import torch

from raynas.config import load_config
from raynas.errors import CheckpointError, ConfigError
from raynas.gan.augment import (
    ADA,
    AdaptiveP,
    ada_augment,
    cutout,
    diff_augment,
    pseudo_augment,
    translate,
)
from raynas.gan.trainer import GANTrainer

CPU = torch.device("cpu")


def test_translation_moves_content_by_the_shift_with_zero_fill():
    x = torch.zeros(2, 1, 5, 5)
    x[:, 0, 1, 1] = 1.0
    out = translate(x, dx=torch.tensor([2, -1]), dy=torch.tensor([1, 0]))
    assert out.shape == x.shape
    assert out[0, 0, 2, 3] == 1 and out[0].sum() == 1   # right 2, down 1
    assert out[1, 0, 1, 0] == 1 and out[1].sum() == 1   # left 1
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 2, 5, 5)
    moved = translate(ramp, torch.tensor([2]), torch.tensor([0]))
    assert torch.equal(moved[0, :, :, :2], torch.zeros(2, 5, 2))          # uncovered columns are 0
    assert torch.equal(moved[0, :, :, 2:], ramp[0, :, :, :3])
    mirrored = translate(ramp, torch.tensor([2]), torch.tensor([0]), mode="reflect")
    assert mirrored[0, 0, 0].tolist() == [2, 1, 0, 1, 2]                   # reflected, edge not repeated


def test_cutout_zeroes_a_square_of_the_expected_size():
    x = torch.ones(3, 3, 16, 16)
    out = cutout(x, cx=torch.tensor([8, 0, 15]), cy=torch.tensor([8, 0, 8]), size=8)
    zeros = (out == 0).all(dim=1)
    assert int(zeros[0].sum()) == 64 and zeros[0, 4:12, 4:12].all()       # whole square inside
    assert int(zeros[1].sum()) == 16 and zeros[1, :4, :4].all()           # clipped at the corner
    assert int(zeros[2].sum()) == 8 * 5 and zeros[2, 4:12, 11:].all()     # clipped at the right edge
    # DiffAugment's own cutout: half the side, the same square in every channel
    torch.manual_seed(0)
    d = diff_augment(torch.ones(4, 3, 16, 16), ("cutout",))
    per_image = (d == 0).all(dim=1).flatten(1).sum(1)
    assert (per_image <= 64).all() and (per_image > 0).all()
    assert torch.equal((d == 0).any(dim=1), (d == 0).all(dim=1))


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), ("color", "translation", "cutout")])
def test_diffaugment_keeps_shapes_and_passes_gradients(policy):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    out = diff_augment(x, policy)
    assert out.shape == x.shape
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    gray = diff_augment(torch.randn(2, 1, 8, 8), policy)
    assert gray.shape == (2, 1, 8, 8)


def test_ada_is_the_identity_at_p_zero_and_augments_at_p_one():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    assert torch.equal(ada_augment(x, 0.0), x)
    state = torch.get_rng_state()
    ada_augment(x, 0.0)
    assert torch.equal(torch.get_rng_state(), state)  # p = 0 draws nothing either
    y = ada_augment(x, 1.0)
    assert y.shape == x.shape and not torch.equal(y, x)
    xr = x.clone().requires_grad_(True)
    ada_augment(xr, 0.5).sum().backward()
    assert xr.grad is not None


def test_adaptive_p_moves_by_the_paper_step_toward_target():
    batch, interval, kimg = 8, 4, 500.0
    step = batch * interval / (kimg * 1000)
    a = AdaptiveP(p=0.5, target=0.6, kimg=kimg, interval=interval)
    for _ in range(interval - 1):
        a.observe(torch.ones(batch))          # r_t = 1 > 0.6: D overfits
        assert a.p == 0.5                     # only every `interval` steps
    a.observe(torch.ones(batch))
    assert a.rt == 1.0 and a.p == pytest.approx(0.5 + step)
    for _ in range(interval):                 # r_t = 0 < 0.6: p falls by the same step
        a.observe(torch.tensor([1.0, -1.0] * 4))
    assert a.rt == 0.0 and a.p == pytest.approx(0.5)
    for _ in range(interval):                 # r_t = 0.5 (6 of 8 positive) < 0.6
        a.observe(torch.tensor([1.0] * 6 + [-1.0] * 2))
    assert a.rt == 0.5 and a.p == pytest.approx(0.5 - step)
    low = AdaptiveP(p=0.0, interval=1)
    low.observe(-torch.ones(4))
    assert low.p == 0.0                       # clipped at 0
    high = AdaptiveP(p=1.0, interval=1)
    high.observe(torch.ones(4))
    assert high.p == 1.0                      # clipped at 1
    # p goes 0 -> 1 in `kimg` thousand images when D keeps overfitting
    fast = AdaptiveP(p=0.0, kimg=0.064, interval=1)
    for _ in range(7):
        fast.observe(torch.ones(8))
    assert fast.p == pytest.approx(7 * 8 / 64)
    fast.observe(torch.ones(8))
    assert fast.p == pytest.approx(1.0)


def test_apa_replaces_the_expected_fraction_of_reals():
    torch.manual_seed(0)
    real, fake = torch.zeros(4000, 1, 2, 2), torch.ones(4000, 1, 2, 2)
    mixed = pseudo_augment(real, fake, 0.3)
    swapped = mixed.flatten(1).mean(1)
    assert set(swapped.unique().tolist()) <= {0.0, 1.0}
    assert float(swapped.mean()) == pytest.approx(0.3, abs=0.03)
    assert torch.equal(pseudo_augment(real, fake, 0.0), real)


# ---------------------------------------------------------------------------- in the trainer
TINY = ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=16", "train.iters_per_epoch=3",
        "train.gen_batch_size=4", "train.dis_batch_size=4", "data.limit=64", "train.epochs=2",
        "data.resolution=16"]


def trainer(*extra: str) -> GANTrainer:
    return GANTrainer(load_config("quickstart", [*TINY, *extra], method="train"), device=CPU)


@pytest.mark.parametrize("augment", ["none", "diffaugment", "ada", "apa"])
def test_tiny_training_with_each_augment_resumes_exactly(augment):
    # kimg 0.02: one adjustment after 2 steps of 4 images moves p by 0.4, so a resume that lost p would differ
    extra = [f"train.augment={augment}", "train.augment_p=0.5", "train.augment_interval=2", "train.augment_kimg=0.02"]
    a = trainer(*extra)
    stats = a.train_epoch()
    state = copy.deepcopy(a.state_dict())
    if augment in ("ada", "apa"):
        assert state["augment"]["name"] == augment and "augment_p" in a.row(stats)
        # 3 D steps, p adjusted after the 2nd (r_t is a multiple of 1/4, never 0.6), one step counted since
        assert state["augment"]["p"] in (pytest.approx(0.1), pytest.approx(0.9)) and state["augment"]["steps"] == 1
    sa = a.train_epoch()
    b = trainer(*extra)
    b.load_state_dict(state)  # restores the global RNG too: b's epoch draws what a's second epoch drew
    sb = b.train_epoch()
    assert sa["d_loss"] == sb["d_loss"] and sa["g_loss"] == sb["g_loss"]
    for k, v in a.G.state_dict().items():
        assert torch.equal(v, b.G.state_dict()[k]), k
    if augment in ("ada", "apa"):
        assert a.augment.adaptive.state_dict() == b.augment.adaptive.state_dict()
        assert a.row(sa)["augment_p"] == b.row(sb)["augment_p"]


def test_resume_with_another_augment_is_refused():
    a = trainer("train.augment=ada")
    state = a.state_dict()
    with pytest.raises(CheckpointError, match="train.augment=ada"):
        trainer().load_state_dict(state)
    with pytest.raises(CheckpointError, match="train.augment=none"):
        trainer("train.augment=apa").load_state_dict(trainer().state_dict())


def test_augment_settings_are_validated():
    with pytest.raises(ConfigError):
        load_config("quickstart", ["train.augment=mixup"], method="train")
    with pytest.raises(ConfigError):
        load_config("quickstart", ["train.augment_policy=color,rotate"], method="train")
    with pytest.raises(ConfigError):
        load_config("quickstart", ["train.augment_target=1.0"], method="train")
    cfg = load_config("quickstart", ["train.augment=diffaugment", "train.augment_policy=translation,cutout"],
                      method="train")
    assert cfg.train.augment_policy == ("translation", "cutout")


def test_ada_object_reports_p():
    ada = ADA(AdaptiveP(p=0.25))
    assert ada.stats() == {"augment_p": 0.25}
