"""raynas.gan: hinge losses, EMA, the shared training step, checkpoints and RNG state."""

from __future__ import annotations

import os
import random
import re

import numpy as np
import pytest
import torch
from torch import nn

from raynas.device import Precision
from raynas.errors import CheckpointError, TrainingDiverged
from raynas.gan import (
    EMA,
    StepConfig,
    capture_rng_state,
    d_hinge_loss,
    g_hinge_loss,
    gan_train_step,
    load_checkpoint,
    make_optimizers,
    restore_rng_state,
    sample_latent,
    save_checkpoint,
)

LATENT = 8
CPU = Precision.for_device(torch.device("cpu"))


# ---------------------------------------------------------------------------- helpers
class TinyG(nn.Module):
    def __init__(self, bn: bool = False):
        super().__init__()
        self.fc = nn.Linear(LATENT, 2 * 4 * 4)
        self.bn = nn.BatchNorm1d(2 * 4 * 4) if bn else nn.Identity()

    def forward(self, z):
        return torch.tanh(self.bn(self.fc(z))).view(-1, 2, 4, 4)


class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2 * 4 * 4, 1)

    def forward(self, x):
        return self.fc(x.flatten(1))


class FakeSource:
    """Stand-in BatchSource: uniform images in [-1, 1] (or NaN when poisoned)."""

    def __init__(self, poison: bool = False):
        self.poison = poison
        self.requests: list[int] = []

    def sample(self, n: int) -> torch.Tensor:
        self.requests.append(n)
        x = torch.rand(n, 2, 4, 4) * 2 - 1
        return torch.full_like(x, float("nan")) if self.poison else x


def _snapshot(m: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def _same(a: list[torch.Tensor], m: nn.Module) -> bool:
    return all(torch.equal(x, p) for x, p in zip(a, m.parameters()))


def _setup(n_critic: int = 1, ema: bool = True):
    torch.manual_seed(0)
    G, D = TinyG(), TinyD()
    opt_g, opt_d = make_optimizers(G.parameters(), D.parameters(), 1e-2, 1e-2)
    cfg = StepConfig(gen_batch_size=6, dis_batch_size=4, latent_dim=LATENT, n_critic=n_critic)
    return G, D, opt_g, opt_d, cfg, (EMA(G, 0.9) if ema else None)


# ---------------------------------------------------------------------------- losses
def test_hinge_losses_match_hand_computation():
    real = torch.tensor([2.0, 0.5, -1.0])   # relu(1 - r) = 0, 0.5, 2   -> mean 2.5/3
    fake = torch.tensor([-2.0, 0.0, 1.5])   # relu(1 + f) = 0, 1, 2.5   -> mean 3.5/3
    assert d_hinge_loss(real, fake).item() == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert g_hinge_loss(fake).item() == pytest.approx(-(-2.0 + 0.0 + 1.5) / 3)


def test_hinge_gradients_flow():
    real = torch.tensor([0.5, 2.0], requires_grad=True)
    fake = torch.tensor([-0.5, -3.0], requires_grad=True)
    d_hinge_loss(real, fake).backward()
    # d/dr mean(relu(1-r)) = -1/n where active; d/df mean(relu(1+f)) = 1/n where active
    assert torch.allclose(real.grad, torch.tensor([-0.5, 0.0]))
    assert torch.allclose(fake.grad, torch.tensor([0.5, 0.0]))
    f2 = torch.tensor([1.0, 3.0], requires_grad=True)
    g_hinge_loss(f2).backward()
    assert torch.allclose(f2.grad, torch.tensor([-0.5, -0.5]))


def test_hinge_losses_are_float32_under_bf16():
    logits = torch.tensor([0.3, -0.7], dtype=torch.bfloat16)
    assert d_hinge_loss(logits, logits).dtype == torch.float32
    assert g_hinge_loss(logits).dtype == torch.float32


# ---------------------------------------------------------------------------- EMA
def test_ema_update_formula_and_buffers():
    torch.manual_seed(0)
    model = TinyG(bn=True)
    ema = EMA(model, decay=0.75)
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    old = _snapshot(ema.module)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.train()
    model(torch.randn(5, LATENT))  # changes BN running stats
    ema.update(model)
    for o, e, p in zip(old, ema.module.parameters(), model.parameters()):
        assert torch.allclose(e, 0.75 * o + 0.25 * p, rtol=0, atol=1e-7)
        assert not torch.equal(e, p)
    for e, b in zip(ema.module.buffers(), model.buffers()):
        assert torch.equal(e, b)
    assert ema.module.bn.num_batches_tracked.item() == 1
    assert ema.num_updates == 1


def test_ema_state_round_trip_and_mismatch():
    torch.manual_seed(0)
    model = TinyG()
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.fc.weight.mul_(3)
    ema.update(model)
    other = EMA(TinyG(), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.5 and other.num_updates == 1
    assert all(torch.equal(a, b) for a, b in zip(other.module.parameters(), ema.module.parameters()))
    with pytest.raises(ValueError, match="parameter shape"):
        ema.update(TinyD())
    with pytest.raises(ValueError, match="1 parameters"):
        ema.update(nn.Linear(2, 2, bias=False))
    with pytest.raises(ValueError, match=re.escape("EMA decay must lie in [0, 1], got 1.5")):
        EMA(model, decay=1.5)


# ---------------------------------------------------------------------------- training step
def _recording(D, logits):
    """D's forward, keeping a copy of every output (the real, fake and G-step logits of one step)."""

    def forward(x):
        out = D(x)
        logits.append(out.detach().float().clone())
        return out

    return forward


def _hinge_by_hand(logits):
    """The step's statistics from its D outputs: hinge losses and the mean real/fake logits."""
    real, fake, *g_fake = logits
    out = {"d_loss": float(torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()),
           "d_real": float(real.mean()), "d_fake": float(fake.mean())}
    return {**out, "g_loss": float(-g_fake[0].mean())} if g_fake else out


def _scores(out):
    """The step's returned statistics without the g_loss of a step that did not update G."""
    return {k: v for k, v in out.items() if v is not None}


def test_step_updates_d_every_step_and_g_on_critic_steps():
    G, D, opt_g, opt_d, cfg, ema = _setup(n_critic=2)
    src = FakeSource()
    for step in range(4):
        g0, d0, e0 = _snapshot(G), _snapshot(D), _snapshot(ema.module)
        logits = []
        out = gan_train_step(G, D, opt_g, opt_d, src, cfg, step=step, precision=CPU, ema=ema,
                             d_forward=_recording(D, logits))
        # the returned losses are the hinge losses of the logits D gave in this step
        assert len(logits) == (3 if step % 2 == 0 else 2)
        assert _scores(out) == pytest.approx(_hinge_by_hand(logits), rel=1e-5, abs=1e-7)
        assert not _same(d0, D), f"D must change at step {step}"
        if step % 2 == 0:
            assert out["g_loss"] is not None
            assert not _same(g0, G)
            assert not _same(e0, ema.module)
        else:
            assert out["g_loss"] is None
            assert _same(g0, G) and _same(e0, ema.module)
            # fakes for D are detached: G gets no gradient from the D update
            assert all(p.grad is None for p in G.parameters())
    assert ema.num_updates == 2
    assert src.requests == [cfg.dis_batch_size] * 4
    # D's requires_grad flags are restored after the G update
    assert all(p.requires_grad for p in D.parameters())


def test_step_returns_hinge_values_consistent_with_logits():
    G, D, opt_g, opt_d, cfg, _ = _setup()
    out = gan_train_step(G, D, opt_g, opt_d, FakeSource(), cfg, step=0, precision=CPU)
    # hinge loss lower bound: relu(1-r)+relu(1+f) >= (1-r)+(1+f) with means, i.e. >= 2 - d_real + d_fake
    assert out["d_loss"] >= 2 - out["d_real"] + out["d_fake"] - 1e-6
    assert set(out) == {"d_loss", "g_loss", "d_real", "d_fake"}


def test_step_uses_forward_overrides_and_batch_sizes():
    G, D, opt_g, opt_d, cfg, _ = _setup()
    g_batches, d_batches = [], []

    def g_fwd(z):
        g_batches.append(z.shape[0])
        return G(z)

    def d_fwd(x):
        d_batches.append(x.shape[0])
        return D(x)

    gan_train_step(G, D, opt_g, opt_d, FakeSource(), cfg, step=0, precision=CPU, g_forward=g_fwd,
                   d_forward=d_fwd)
    assert g_batches == [4, 6]          # D's fakes, then G's fakes
    assert d_batches == [4, 4, 6]       # real, fake (D update), fake (G update)


def test_step_under_bf16_autocast_on_cpu():
    G, D, opt_g, opt_d, cfg, _ = _setup()
    prec = Precision(device=torch.device("cpu"), amp=True, channels_last=False)
    logits = []
    out = gan_train_step(G, D, opt_g, opt_d, FakeSource(), cfg, step=0, precision=prec,
                         d_forward=_recording(D, logits))
    assert len(logits) == 3
    # bf16 keeps about 3 significant digits: the hand computation in float32 agrees to that
    assert _scores(out) == pytest.approx(_hinge_by_hand(logits), rel=1e-2, abs=1e-2)


def test_nan_in_d_loss_raises_before_any_update():
    G, D, opt_g, opt_d, cfg, ema = _setup()
    gan_train_step(G, D, opt_g, opt_d, FakeSource(), cfg, step=0, precision=CPU, ema=ema)  # Adam has state
    g0, d0, e0 = _snapshot(G), _snapshot(D), _snapshot(ema.module)
    with pytest.raises(TrainingDiverged, match=r"discriminator loss became nan at step 7.*learning rate"):
        gan_train_step(G, D, opt_g, opt_d, FakeSource(poison=True), cfg, step=7, precision=CPU, ema=ema)
    assert _same(g0, G) and _same(d0, D) and _same(e0, ema.module)


def test_nan_in_g_loss_raises_before_g_update():
    G, D, opt_g, opt_d, cfg, ema = _setup()
    calls = []

    def d_fwd(x):  # finite for the D update's two calls, NaN in the G update
        calls.append(1)
        out = D(x)
        return out * float("nan") if len(calls) > 2 else out

    g0, d0 = _snapshot(G), _snapshot(D)
    with pytest.raises(TrainingDiverged, match="generator loss.*step 3"):
        gan_train_step(G, D, opt_g, opt_d, FakeSource(), cfg, step=3 * cfg.n_critic, precision=CPU, ema=ema,
                       d_forward=d_fwd)
    assert _same(g0, G) and ema.num_updates == 0
    assert not _same(d0, D)  # the (finite) D update of this step went through
    assert all(p.requires_grad for p in D.parameters())


def test_step_config_validation_and_latent():
    with pytest.raises(ValueError, match="n_critic"):
        StepConfig(gen_batch_size=2, dis_batch_size=2, latent_dim=4, n_critic=0)
    z = sample_latent(1000, 16, "cpu", torch.Generator().manual_seed(3))
    assert z.shape == (1000, 16)
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05
    z2 = sample_latent(1000, 16, torch.device("cpu"), torch.Generator().manual_seed(3))
    assert torch.equal(z, z2)


def test_make_optimizers_adam_betas_and_frozen_params():
    G, D = TinyG(), TinyD()
    D.fc.bias.requires_grad_(False)
    opt_g, opt_d = make_optimizers(G.parameters(), D.parameters(), 1e-3, 4e-3)
    assert isinstance(opt_g, torch.optim.Adam)
    assert opt_g.param_groups[0]["betas"] == (0.0, 0.9) and opt_d.param_groups[0]["lr"] == 4e-3
    assert len(opt_d.param_groups[0]["params"]) == 1


# ---------------------------------------------------------------------------- checkpoints
def _trained_state():
    G, D, opt_g, opt_d, cfg, ema = _setup()
    gan_train_step(G, D, opt_g, opt_d, FakeSource(), cfg, step=0, precision=CPU, ema=ema)
    return {"G": G.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "ema": ema.state_dict(), "step": 1, "rng": capture_rng_state(), "note": "x"}


def test_checkpoint_round_trip_and_atomic(tmp_path):
    state = _trained_state()
    path = save_checkpoint(tmp_path / "sub" / "last.pt", state)
    assert path.is_file()
    assert sorted(os.listdir(path.parent)) == ["last.pt"]  # no temporary file left behind
    loaded = load_checkpoint(path)
    assert loaded["step"] == 1 and loaded["note"] == "x"
    for k, v in state["G"].items():
        assert torch.equal(v, loaded["G"][k])
    G2, D2, opt_g2, _, _, _ = _setup()
    G2.load_state_dict(loaded["G"])
    opt_g2.load_state_dict(loaded["opt_g"])
    s_old = state["opt_g"]["state"]
    s_new = opt_g2.state_dict()["state"]
    assert s_old.keys() == s_new.keys()
    for k in s_old:
        assert torch.equal(s_old[k]["exp_avg"], s_new[k]["exp_avg"])
    # overwrite keeps a single file and replaces the contents
    save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2
    assert sorted(os.listdir(path.parent)) == ["last.pt"]


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    good = save_checkpoint(tmp_path / "good.pt", _trained_state())
    data = good.read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
        load_checkpoint(trunc)
    assert str(trunc) in str(info.value)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match=re.escape(f"Checkpoint {garbage} is corrupt or truncated")):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"G": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a raynas checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(tmp_path)


def test_rng_state_capture_restore_gives_identical_draws(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # populate numpy's cached gaussian path
    state = capture_rng_state()

    def draw():
        return (random.random(), np.random.randn(3).tolist(), torch.randn(3).tolist())

    first = draw()
    draw()  # advance further
    restore_rng_state(state)
    assert draw() == first
    # the state survives a checkpoint round trip, also with weights_only loading
    save_checkpoint(tmp_path / "rng.pt", {"rng": state})
    for weights_only in (False, True):
        restore_rng_state(load_checkpoint(tmp_path / "rng.pt", weights_only=weights_only)["rng"])
        assert draw() == first
    with pytest.raises(CheckpointError, match="^The checkpoint's random-number state is malformed"):
        restore_rng_state({"numpy": {"key": [1, 2]}})
