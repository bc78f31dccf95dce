"""Re-GAN (raynas.gan.regan, regan_schedule, regan_masks, training_flops): schedule, magnitude masks, truly sparse
steps, regrowth, state, FLOPs."""

from __future__ import annotations

import copy
import io
import random
import re

import pytest
import torch
from torch import nn

from raynas.config import from_dict
from raynas.device import Precision
from raynas.errors import CheckpointError, ConfigError
from raynas.gan import EMA, StepConfig, gan_train_step
from raynas.gan.regan import Regan
from raynas.gan.regan_masks import magnitude_mask, num_pruned, select_parameters
from raynas.gan.regan_schedule import ReganConfig, ReganSchedule
from raynas.gan.training_flops import TrainingFlops

LATENT = 8
CPU = Precision.for_device(torch.device("cpu"))


# ---------------------------------------------------------------------------- helpers
class TinyG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = LATENT
        self.fc = nn.Linear(LATENT, 16)
        self.to_rgb = nn.Linear(16, 2 * 4 * 4)

    def forward(self, z):
        return torch.tanh(self.to_rgb(torch.relu(self.fc(z)))).view(-1, 2, 4, 4)


class TinyD(nn.Module):
    def __init__(self, shape=(2, 4, 4)) -> None:
        super().__init__()
        self.fc = nn.Linear(int(torch.tensor(shape).prod()), 1)

    def forward(self, x):
        return self.fc(x.flatten(1))


class ConvD(nn.Module):
    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 4, 4)
        self.fc = nn.Linear(4 * 8 * 8, 1)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class Source:
    def __init__(self, shape=(2, 4, 4)) -> None:
        self.shape = shape

    def sample(self, n: int) -> torch.Tensor:
        return torch.rand(n, *self.shape) * 2 - 1


def _run(G, D, opt_g, opt_d, ema, regan, steps, *, latent=LATENT, shape=(2, 4, 4), batch=4, check=None):
    cfg = StepConfig(gen_batch_size=batch, dis_batch_size=batch, latent_dim=latent, n_critic=1)
    src = Source(shape)
    for i in range(steps):
        out = gan_train_step(G, D, opt_g, opt_d, src, cfg, step=i, precision=CPU, ema=ema, g_hooks=regan)
        assert out["g_loss"] is not None
        if check is not None:
            check()


def _setup(cfg: ReganConfig, betas=(0.5, 0.999), amsgrad=False, lr=1e-2):
    torch.manual_seed(0)
    G, D = TinyG(), TinyD()
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas, amsgrad=amsgrad)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    return G, D, opt_g, opt_d, EMA(G, 0.9), Regan(G, cfg)


def _assert_masked_zero(regan: Regan, ema_module: nn.Module | None = None) -> None:
    ema_params = dict(ema_module.named_parameters()) if ema_module is not None else {}
    assert regan.masks
    for name, keep in regan.masks.items():
        assert torch.all(regan.params[name][~keep] == 0), name
        if ema_module is not None:
            assert torch.all(ema_params[name][~keep] == 0), f"EMA {name}"


# ---------------------------------------------------------------------------- schedule
def test_schedule_phase_sequence_and_lr_factor():
    s = ReganSchedule(warmup=2, interval=3)
    assert "".join(s.phase(u)[0].upper() for u in range(16)) == "WWSSSDDDSSSDDDSS"
    assert [s.lr_factor(u) for u in range(9)] == [1, 1, 1, 1, 1, 0.1, 0.1, 0.1, 1]
    assert "".join(ReganSchedule(0, 1).phase(u)[0] for u in range(5)) == "sdsds"
    assert ReganConfig(warmup=2, interval=3, dense_lr_factor=0.5).schedule.lr_factor(5) == 0.5
    with pytest.raises(ValueError, match="^Re-GAN unit counter must be >= 0, got -1$"):
        s.phase(-1)


def test_config_validation_and_section_machinery():
    cfg = from_dict(ReganConfig, {"enabled": True, "sparsity": 0.5, "interval": 2, "unit": "iter",
                                  "exclude": "*to_rgb*, re:bias$"}, prefix="regan.")
    assert cfg.enabled and cfg.unit == "iter" and cfg.exclude == ("*to_rgb*", "re:bias$")
    assert ReganConfig().include == ("*",) and ReganConfig().dense_lr_factor == 0.1 and not ReganConfig().enabled
    for bad, message in (({"sparsity": 1.0}, "regan.sparsity must lie in [0, 1), got 1.0"),
                         ({"sparsity": -0.1}, "regan.sparsity must lie in [0, 1), got -0.1"),
                         ({"interval": 0}, "regan.interval: 0 is below the minimum 1"),
                         ({"dense_lr_factor": 0.0}, "regan.dense_lr_factor must lie in (0, 1], got 0.0"),
                         ({"unit": "step"}, "regan.unit: 'step' is not allowed; choose one of epoch, iter"),
                         ({"warmup": -1}, "regan.warmup: -1 is below the minimum 0"),
                         ({"include": "re:("}, "regan.include: 're:(' is not a valid regular expression")):
        with pytest.raises(ConfigError, match="^" + re.escape(message)):
            from_dict(ReganConfig, bad, prefix="regan.")


# ---------------------------------------------------------------------------- masks
@pytest.mark.parametrize("sparsity", [0.1, 0.3, 0.5, 0.9])
def test_each_tensor_prunes_floor_s_n_smallest(sparsity):
    torch.manual_seed(1)
    ties = torch.tensor([1.0, -1.0, 1.0, 2.0, -1.0, 3.0, 1.0, 0.5, 4.0, -1.0, 5.0])  # ties at |1|
    for w in (torch.randn(7, 5, 3, 3), torch.randn(33), ties, torch.tensor([2.5]), torch.randn(4, 4, 3, 3)
              .to(memory_format=torch.channels_last)):
        keep = magnitude_mask(w, sparsity)
        assert keep.dtype == torch.bool and keep.shape == w.shape
        n_pruned = int((~keep).sum())
        assert n_pruned == num_pruned(w.numel(), sparsity)
        assert abs(n_pruned - sparsity * w.numel()) < 1  # within one element of s
        assert n_pruned < w.numel()  # never all pruned
        if n_pruned > 0:
            assert w.abs()[keep].min() >= w.abs()[~keep].max()
    # ties are broken by flat index: with s = 0.3 (3 of 11) 0.5 goes first, then the first two |1|s
    assert (~magnitude_mask(ties, 0.3)).nonzero().flatten().tolist() == [0, 1, 7]
    assert bool(magnitude_mask(torch.tensor([2.5]), 0.9).all())  # a 1-element tensor is never pruned
    assert num_pruned(100, 0.29) == 29  # not 28 from 0.29 * 100 = 28.999...


def test_mask_on_a_tensor_above_16m_elements():
    # torch.quantile (the authors' method) refused tensors above 2**24 elements in the torch releases they used
    n = 2**24 + 5
    w = torch.zeros(n)
    w[::2] = 1.0 + torch.arange((n + 1) // 2, dtype=torch.float32)  # half exact zeros (ties), half values
    keep = magnitude_mask(w, 0.7)
    assert int((~keep).sum()) == num_pruned(n, 0.7)
    assert not bool(keep[1::2].any())  # every zero pruned, then the smallest values
    assert w[~keep].max() < w[keep].min()


def test_parameter_selection_patterns_and_error_lists_names():
    G = TinyG()
    assert list(select_parameters(G)) == ["fc.weight", "fc.bias", "to_rgb.weight", "to_rgb.bias"]
    assert list(select_parameters(G, exclude=("*to_rgb*",))) == ["fc.weight", "fc.bias"]
    assert list(select_parameters(G, include=(r"re:\.weight$",))) == ["fc.weight", "to_rgb.weight"]
    with pytest.raises(ConfigError, match=re.escape("regan.include=['*conv*'] with regan.exclude=[] selects no "
                                                    "parameter of the generator (TinyG)")) as err:
        Regan(G, ReganConfig(include=("*conv*",)))
    assert all(n in str(err.value) for n in ("fc.weight", "fc.bias", "to_rgb.weight", "to_rgb.bias"))
    with pytest.raises(ConfigError, match=re.escape("regan.include=['*'] with regan.exclude=['*'] selects no "
                                                    "parameter of the generator (TinyG)")):
        select_parameters(G, exclude=("*",))


# ---------------------------------------------------------------------------- truly sparse
def test_sparse_steps_keep_masked_weights_and_ema_exactly_zero():
    G, D, opt_g, opt_d, ema, regan = _setup(ReganConfig(sparsity=0.5, warmup=1, interval=2))
    before = [p.detach().clone() for p in G.parameters()]
    regan.after_g_step()  # before any sparse unit nothing is masked (T-R2: no all-pruned start)
    assert all(torch.equal(a, p) for a, p in zip(before, G.parameters()))
    assert regan.begin_unit(0, opt_g, ema.module) == "warmup"
    _run(G, D, opt_g, opt_d, ema, regan, 4)  # dense warm-up builds Adam moments
    assert regan.begin_unit(1, opt_g, ema.module) == "sparse"
    _assert_masked_zero(regan, ema.module)
    kept = {n: p.detach().clone() for n, p in G.named_parameters()}
    moment = {n: opt_g.state[p]["exp_avg"].clone() for n, p in regan.params.items()}
    _run(G, D, opt_g, opt_d, ema, regan, 4, check=lambda: _assert_masked_zero(regan, ema.module))
    for n, keep in regan.masks.items():
        assert int((~keep).sum()) == num_pruned(keep.numel(), 0.5)
        # gradients were masked before each step: Adam's first moment at pruned positions only decays (beta1 0.5)
        torch.testing.assert_close(opt_g.state[regan.params[n]]["exp_avg"][~keep], moment[n][~keep] * 0.5**4)
        assert not torch.equal(kept[n][keep], regan.params[n][keep])  # the kept weights did train
    s = regan.stats()
    assert s["regan_phase"] == "sparse" and s["regan_unit"] == 1
    assert s["regan_sparsity_min"] >= 0.5 - 1 / 16 and s["regan_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert regan.begin_unit(2, opt_g, ema.module) == "sparse"  # masks recomputed: still exactly floor(s n)
    _run(G, D, opt_g, opt_d, ema, regan, 2, check=lambda: _assert_masked_zero(regan, ema.module))


def test_parameters_without_grad_do_not_crash():
    class G2(TinyG):
        def __init__(self) -> None:
            super().__init__()
            self.unused = nn.Linear(3, 3)  # never in forward: grad stays None
            self.fc.bias.requires_grad_(False)  # frozen

    torch.manual_seed(0)
    G, D = G2(), TinyD()
    opt_g = torch.optim.Adam([p for p in G.parameters() if p.requires_grad], lr=1e-2, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-2)
    regan = Regan(G, ReganConfig(sparsity=0.3, warmup=0, interval=1))
    regan.begin_unit(0, opt_g)
    _run(G, D, opt_g, opt_d, None, regan, 2, check=lambda: _assert_masked_zero(regan))
    assert G.unused.weight.grad is None
    regan.begin_unit(1, opt_g)  # regrowth with params that have no optimiser state


# ---------------------------------------------------------------------------- lr and regrowth
def test_dense_phase_runs_at_a_tenth_of_the_lr():
    torch.manual_seed(0)
    G = TinyG()
    opt = torch.optim.Adam([{"params": G.fc.parameters(), "lr": 1e-2},
                            {"params": G.to_rgb.parameters(), "lr": 4e-3}])
    regan = Regan(G, ReganConfig(warmup=1, interval=2))
    seen = []
    for u in range(8):
        phase = regan.begin_unit(u, opt)
        seen.append((phase, [g["lr"] for g in opt.param_groups]))
    dense = [pytest.approx([1e-3, 4e-4])]
    full = [pytest.approx([1e-2, 4e-3])]
    assert [p for p, _ in seen] == ["warmup", "sparse", "sparse", "dense", "dense", "sparse", "sparse", "dense"]
    assert [lr for _, lr in seen] == full * 3 + dense * 2 + full * 2 + dense
    assert regan.stats()["regan_lr_g"] == pytest.approx(1e-3)


def test_regrown_weights_and_adam_moments_start_at_zero():
    G, D, opt_g, opt_d, ema, regan = _setup(ReganConfig(sparsity=0.4, warmup=1, interval=1), amsgrad=True)
    regan.begin_unit(0, opt_g, ema.module)
    _run(G, D, opt_g, opt_d, ema, regan, 3)
    regan.begin_unit(1, opt_g, ema.module)
    _run(G, D, opt_g, opt_d, ema, regan, 3)
    keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    old = {n: {k: opt_g.state[regan.params[n]][k].clone() for k in keys} for n in regan.masks}
    for n, keep in regan.masks.items():  # without the reset, Adam's moments at pruned positions are not 0
        assert bool((old[n]["exp_avg_sq"][~keep] != 0).any()), n
    assert regan.begin_unit(2, opt_g, ema.module) == "dense" and not regan.active
    assert regan.densities() == {}
    for n, keep in regan.masks.items():
        p, state = regan.params[n], opt_g.state[regan.params[n]]
        assert torch.all(p[~keep] == 0)
        for k in keys:
            assert torch.all(state[k][~keep] == 0), (n, k)
            assert torch.equal(state[k][keep], old[n][k][keep]), (n, k)  # kept positions untouched
    _run(G, D, opt_g, opt_d, ema, regan, 2)  # dense: regrown weights train again
    assert any(bool((regan.params[n][~keep] != 0).any()) for n, keep in regan.masks.items())


# ---------------------------------------------------------------------------- state
def test_resume_mid_sparse_phase_restores_masks_and_continues_identically():
    cfg = ReganConfig(sparsity=0.3, warmup=1, interval=3)
    G, D, opt_g, opt_d, ema, regan = _setup(cfg)
    for u in range(2):  # warm-up unit, then the first sparse unit
        regan.begin_unit(u, opt_g, ema.module)
        _run(G, D, opt_g, opt_d, ema, regan, 2)
    buf = io.BytesIO()
    torch.save({"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                "ema": ema.state_dict(), "regan": regan.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)

    torch.manual_seed(123)  # a fresh process: different initial weights
    G2, D2 = TinyG(), TinyD()
    opt_g2 = torch.optim.Adam(G2.parameters(), lr=5.0, betas=(0.5, 0.999))
    opt_d2 = torch.optim.Adam(D2.parameters(), lr=5.0, betas=(0.5, 0.999))
    ema2, regan2 = EMA(G2, 0.5), Regan(G2, cfg)
    G2.load_state_dict(ckpt["G"])
    D2.load_state_dict(ckpt["D"])
    opt_g2.load_state_dict(ckpt["opt_g"])
    opt_d2.load_state_dict(ckpt["opt_d"])
    ema2.load_state_dict(ckpt["ema"])
    regan2.load_state_dict(ckpt["regan"])
    assert (regan2.phase, regan2.unit, regan2.active) == ("sparse", 1, True)
    assert regan2.masks.keys() == regan.masks.keys()
    assert all(torch.equal(regan2.masks[n], m) for n, m in regan.masks.items())
    assert regan2.base_lrs == regan.base_lrs

    for run in ((G, D, opt_g, opt_d, ema, regan), (G2, D2, opt_g2, opt_d2, ema2, regan2)):
        torch.manual_seed(7)
        for u in (2, 3, 4):  # rest of the sparse phase, then regrowth into the dense phase
            run[5].begin_unit(u, run[2], run[4].module)
            _run(*run, 2)
    assert regan2.phase == "dense" and opt_g2.param_groups[0]["lr"] == pytest.approx(1e-3)
    for a, b in zip(G.parameters(), G2.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(ema.module.parameters(), ema2.module.parameters()):
        assert torch.equal(a, b)

    bad = dict(ckpt["regan"], masks={"nope": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(CheckpointError, match="^the Re-GAN state masks parameter 'nope', which this generator does "
                                              "not prune"):
        Regan(TinyG(), cfg).load_state_dict(bad)


# ---------------------------------------------------------------------------- other generators
def _compose(G, latent, sparsity=0.3):
    torch.manual_seed(0)
    D = ConvD(3)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    ema = EMA(G, 0.9)
    regan = Regan(G, ReganConfig(sparsity=sparsity, warmup=1, interval=1, exclude=("*to_rgb*",)))
    assert regan.params and not any("to_rgb" in n for n in regan.params)
    flops = TrainingFlops(G, D)
    assert flops.g_rest == 0 and set(regan.params) >= set(flops.layer_flops) - {n for n in flops.layer_flops
                                                                                 if "to_rgb" in n}
    kw = {"latent": latent, "shape": (3, 32, 32), "batch": 2}
    regan.begin_unit(0, opt_g, ema.module)
    _run(G, D, opt_g, opt_d, ema, regan, 1, **kw)
    flops.count_step(2, 2, density=regan.densities())
    dense_spent = flops.total
    regan.begin_unit(1, opt_g, ema.module)
    _run(G, D, opt_g, opt_d, ema, regan, 2, **kw, check=lambda: _assert_masked_zero(regan, ema.module))
    flops.count_step(2, 2, density=regan.densities())
    assert flops.total - dense_spent < dense_spent  # the sparse step skips pruned multiply-adds
    for n, keep in regan.masks.items():
        assert int((~keep).sum()) == num_pruned(keep.numel(), sparsity), n
    s = regan.stats()
    assert s["regan_sparsity_min"] >= 0.3 - 1 / 16 and s["regan_sparsity"] >= 0.29
    assert regan.begin_unit(2, opt_g, ema.module) == "dense"
    _run(G, D, opt_g, opt_d, ema, regan, 1, **kw)


def test_composes_with_an_eagan_genotype_generator():
    from raynas.nn.registry import build_network
    from raynas.spaces.eagan import EAGAN_CIFAR10_G

    _compose(build_network(EAGAN_CIFAR10_G, resolution=32, channels=3, width=8, latent_dim=12), 12)


def test_composes_with_a_damgan_derived_generator():
    from raynas.nn.registry import build_network
    from raynas.spaces import get_space

    genotype = get_space("damgan-g").sample(random.Random(11))
    _compose(build_network(genotype, resolution=32, channels=3, width=8, latent_dim=8), 8)


# ---------------------------------------------------------------------------- FLOPs
def test_flops_counter_skips_pruned_weights_by_density():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 10))
    D = nn.Linear(10, 1)
    flops = TrainingFlops(G, D, latent_dim=4)
    assert flops.layer_flops == {"0.weight": 2 * 4 * 6, "2.weight": 2 * 6 * 10}
    assert (flops.g_dense_forward, flops.g_rest, flops.d_forward) == (168, 0, 20)
    opt = torch.optim.Adam(G.parameters(), lr=1e-3)
    regan = Regan(G, ReganConfig(sparsity=0.3, warmup=1, interval=1))

    regan.begin_unit(0, opt)  # dense: D step 168*4 + 3*20*2*4, G step 3*168*2 + 2*20*2
    assert flops.count_step(4, 2, density=regan.densities()) == 168 * 4 + 480 + 3 * 168 * 2 + 80
    dense_g = flops.g

    regan.begin_unit(1, opt)  # sparse: 7 of 24 and 18 of 60 weights pruned
    density = regan.densities()
    assert density["0.weight"] == pytest.approx(17 / 24) and density["2.weight"] == pytest.approx(42 / 60)
    sparse_fwd = 48 * 17 / 24 + 120 * 42 / 60  # = 118
    assert flops.g_forward(density) == pytest.approx(sparse_fwd)
    flops.count_step(4, 2, density=density)
    assert flops.g - dense_g == pytest.approx(dense_g * sparse_fwd / 168)  # G work scales by the density
    assert flops.d == pytest.approx(2 * 560)  # D stays dense
    state = copy.deepcopy(flops.state_dict())
    fresh = TrainingFlops(G, D, latent_dim=4)
    fresh.load_state_dict(state)
    assert fresh.stats() == flops.stats()


def test_gan_train_step_calls_hooks_in_order_only_on_g_updates():
    calls: list[str] = []

    class Recorder:
        def before_g_step(self):
            calls.append("before")

        def after_g_step(self):
            calls.append("after")

        def after_ema_update(self, ema_module):
            assert isinstance(ema_module, TinyG)
            calls.append("ema")

    torch.manual_seed(0)
    G, D = TinyG(), TinyD()
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    cfg = StepConfig(gen_batch_size=2, dis_batch_size=2, latent_dim=LATENT, n_critic=2)
    for i, ema in enumerate((EMA(G), EMA(G), None, None)):
        gan_train_step(G, D, opt_g, opt_d, Source(), cfg, step=i, precision=CPU, ema=ema, g_hooks=Recorder())
    assert calls == ["before", "after", "ema", "before", "after"]
