"""Re-GAN after a dense unit: why a regrown tensor can still hold exact zeros, and the row saying so apart from
masking (``regan_masked``: what the schedule holds at 0; ``regan_sparsity*``: exact zeros; ``regan_regrown_zero``:
regrown weights that have not moved)."""

from __future__ import annotations

import torch
from torch import nn

from raynas.gan.regan import Regan
from raynas.gan.regan_schedule import ReganConfig


def _net() -> nn.Sequential:
    """BatchNorm → ReLU → Linear, as every SNGAN / EAGAN block is (BN, ReLU, conv)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 0.9, 0.05, 0.04]))  # γ: channels 2, 3 have the smallest scales
        net[0].bias.copy_(torch.tensor([0.5, 0.4, -0.02, -0.01]))  # β: and the smallest shifts
    return net


def _step(net: nn.Module, opt: torch.optim.Optimizer, regan: Regan) -> None:
    opt.zero_grad()
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    (net(x) - 1).square().mean().backward()  # every output gets a gradient
    regan.before_g_step()
    opt.step()
    regan.after_g_step()


def test_a_pruned_batchnorm_channel_is_relu_dead_so_its_regrown_scale_stays_exactly_zero():
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.0, 0.9))
    regan = Regan(net, ReganConfig(sparsity=0.5, interval=1, warmup=0))  # unit 0 sparse, unit 1 dense
    assert regan.begin_unit(0, opt) == "sparse"
    _step(net, opt, regan)
    row = regan.stats()
    assert row["regan_masked"] == row["regan_sparsity"] > 0.4 and row["regan_regrown_zero"] is None
    assert regan.begin_unit(1, opt) == "dense"
    for _ in range(3):
        _step(net, opt, regan)
    row = regan.stats()
    gamma, beta = net[0].weight, net[0].bias
    # channels 2 and 3 output ReLU(0·x̂ + 0) = 0: no gradient reaches their γ or β, so they cannot regrow
    assert torch.all(gamma[2:] == 0) and torch.all(beta[2:] == 0)
    assert gamma.grad is not None and torch.all(gamma.grad[2:] == 0) and torch.all(beta.grad[2:] == 0)
    # the row tells masking (none in a dense unit) from exact zeros that are such stuck regrown weights
    assert row["regan_masked"] == 0.0
    assert row["regan_sparsity_max"] == 0.5  # γ and β: half of each is still exactly 0 ...
    assert row["regan_regrown_zero_max"] == 1.0  # ... all of their regrown half
    # the Linear layer's regrown weights reading live channels moved (Adam's first step moves any non-zero grad)
    w, keep = net[2].weight, regan.masks["2.weight"]
    live = torch.zeros_like(keep)
    live[:, :2] = True
    assert torch.all(w[~keep & live] != 0)
    assert 0.0 < row["regan_regrown_zero"] < 1.0


def test_before_any_regrowth_nothing_is_reported_as_stuck():
    net = _net()
    regan = Regan(net, ReganConfig(sparsity=0.5, interval=1, warmup=2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    assert regan.begin_unit(0, opt) == "warmup"
    row = regan.stats()
    assert row["regan_masked"] == 0.0 and row["regan_regrown_zero"] is None
