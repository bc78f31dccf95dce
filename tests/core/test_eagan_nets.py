"""EAGAN supernets, derived networks, registry, profiling and diagrams (tiny widths, CPU)."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from raynas.errors import ConfigError, GenotypeError
from raynas.nn import ops
from raynas.nn.eagan_d import DiscriminatorSupernet, EaganDiscriminator
from raynas.nn.eagan_g import EaganGenerator, GeneratorSupernet
from raynas.nn.profile import count_flops, count_params, format_summary, summarize
from raynas.nn.registry import SubnetView, build_network, build_supernet
from raynas.spaces.draw import draw_genotype
from raynas.spaces.eagan import D_SPACE, DOWN_CANDIDATES, EAGAN_CIFAR10_G, G_SPACE, NORMAL_CANDIDATES, UP_CANDIDATES
from raynas.spaces.genotype import Genotype

C = 8


def small_d() -> Genotype:
    return Genotype.from_dict({"space": "eagan-d", "cells": [
        {"normal": ["conv_1x1", "skip_connect", "none", "conv_3x3", "none"], "down": ["avg_pool", "conv_3x3"]},
        {"normal": ["conv_3x3", "none", "none", "none", "skip_connect"], "down": ["max_pool", "max_pool"]},
        {"normal": ["skip_connect", "conv_5x5", "none", "none", "none"], "down": ["conv_5x5", "dil_conv_5x5"]},
    ]}).validate()


# ------------------------------------------------------------------ ops


@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("name", NORMAL_CANDIDATES)
def test_normal_op_shapes(name, sn):
    x = torch.randn(2, C, 8, 8)
    assert ops.build_op("normal", name, C, sn=sn)(x).shape == (2, C, 8, 8)
    assert ops.build_op("normal", name, C, stride=2, sn=sn)(x).shape == (2, C, 4, 4)


@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("name", UP_CANDIDATES)
def test_up_op_shapes(name, sn):
    assert ops.build_op("up", name, C, sn=sn)(torch.randn(2, C, 4, 6)).shape == (2, C, 8, 12)


@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("name", DOWN_CANDIDATES)
def test_down_op_shapes(name, sn):
    op = ops.build_op("down", name, C, sn=sn)
    assert op(torch.randn(2, C, 8, 12)).shape == (2, C, 4, 6)
    convs = [m for m in op.modules() if isinstance(m, nn.Conv2d)]
    assert all(hasattr(m, "parametrizations") == sn for m in convs)


# ------------------------------------------------------------------ forward shapes and configs


@pytest.mark.parametrize(("resolution", "bottom"), [(32, 4), (48, 6)])
def test_forward_shapes(resolution, bottom):
    torch.manual_seed(0)
    g = EAGAN_CIFAR10_G
    sup = GeneratorSupernet(gf_dim=C, resolution=resolution)
    assert sup.bottom_width == bottom
    z = torch.randn(2, 120)
    img = sup(z, g)
    assert img.shape == (2, 3, resolution, resolution)
    assert img.abs().max() <= 1.0  # tanh
    net = EaganGenerator(g, gf_dim=C, resolution=resolution, out_channels=1)
    assert net(z).shape == (2, 1, resolution, resolution)
    d = DiscriminatorSupernet(df_dim=C)
    assert d(img, small_d()).shape == (2, 1)
    d3 = EaganDiscriminator(small_d(), df_dim=C, in_channels=1, downsample=(True, True, False))
    assert d3(torch.randn(2, 1, resolution, resolution)).shape == (2, 1)


def test_bad_configs_and_inputs():
    with pytest.raises(ConfigError, match="resolution"):
        GeneratorSupernet(gf_dim=C, resolution=36)
    with pytest.raises(ConfigError, match="latent"):
        GeneratorSupernet(latent_dim=100, gf_dim=C)
    with pytest.raises(ConfigError, match="downsample"):
        DiscriminatorSupernet(df_dim=C, downsample=(True, False))
    with pytest.raises(ConfigError, match="multiple of 8"):
        build_network(small_d(), resolution=36, width=C, downsample=(True, True, False))
    sup = GeneratorSupernet(gf_dim=C)
    with pytest.raises(ValueError, match="120"):
        sup(torch.randn(2, 100), EAGAN_CIFAR10_G)
    with pytest.raises(GenotypeError, match="eagan-g"):
        sup(torch.randn(2, 120), small_d())
    with pytest.raises(GenotypeError, match="eagan-d"):
        EaganDiscriminator(EAGAN_CIFAR10_G, df_dim=C)


# ------------------------------------------------------------------ supernet == derived


def test_generator_supernet_equals_derived():
    torch.manual_seed(0)
    sup = GeneratorSupernet(gf_dim=C)
    rng = random.Random(1)
    genotypes = [EAGAN_CIFAR10_G] + [G_SPACE.sample(rng) for _ in range(3)]
    z = torch.randn(4, 120)
    for g in genotypes:
        sup.train()
        sup(z, g)  # move the shared BN statistics away from their initial values
        state = sup.subnet_state_dict(g)
        net = EaganGenerator(g, gf_dim=C)
        assert set(state) == set(net.state_dict())
        net.load_state_dict(state, strict=True)
        sup.eval()
        net.eval()
        assert torch.allclose(sup(z, g), net(z), atol=1e-6)
        # train mode too (batch statistics; same code path)
        sup.train()
        net.train()
        assert torch.allclose(sup(z, g), net(z), atol=1e-6)


def test_discriminator_supernet_equals_derived_with_sn_state():
    torch.manual_seed(0)
    sup = DiscriminatorSupernet(df_dim=C)
    rng = random.Random(2)
    x = torch.randn(3, 3, 32, 32)
    for g in [small_d()] + [D_SPACE.sample(rng) for _ in range(3)]:
        sup.train()
        for _ in range(3):
            sup(x, g)  # power iteration moves u/v of the active convs
        net = EaganDiscriminator(g, df_dim=C)
        fresh = net.eval()(x)
        state = sup.subnet_state_dict(g)
        assert any(k.endswith("._u") for k in state)
        net.load_state_dict(state, strict=True)
        sup.eval()
        net.eval()
        out = sup(x, g)
        assert torch.allclose(out, net(x), atol=1e-6)
        assert not torch.allclose(out, fresh, atol=1e-4)  # so the comparison above is not vacuous


def test_derived_nets_hold_only_chosen_ops():
    net = EaganGenerator(EAGAN_CIFAR10_G, gf_dim=C)
    for cell, gcell in zip(net.cells, EAGAN_CIFAR10_G.cells):
        for edge, op in zip(cell.normal, gcell["normal"]):
            assert list(edge) == ([] if op == "none" else [op])
        for edge, op in zip(cell.up, gcell["up"]):
            assert list(edge) == [op]
    d = EaganDiscriminator(small_d(), df_dim=C)
    assert [len(c.down) for c in d.cells] == [2, 0, 0]  # only cell 0 down-samples by default
    sup = GeneratorSupernet(gf_dim=C)
    assert all(len(e) == len(NORMAL_CANDIDATES) - 1 for c in sup.cells for e in c.normal)  # all but 'none'


def test_generator_param_count_by_hand():
    net = EaganGenerator(EAGAN_CIFAR10_G, gf_dim=8)
    # latent linears: 40 -> 8·4², 8·8², 8·16² (weights + biases): 41 · (128 + 512 + 2048)  = 110,208
    # 6 bilinear up ops, each a 1×1 conv 8->8 with bias: 6 · (64 + 8)                        =     432
    # cross-scale 1×1 skip convs, 0 + 1 + 2 of them: 3 · 72                                   =     216
    # normal ops: conv_1x1 72 + 4 × conv_3x3 (8·8·9 + 8 = 584) + dil_conv_3x3 584              =   2,992
    # to_rgb: BN 2·8 + conv3×3 8->3 (8·3·9 + 3)                                               =     235
    assert count_params(net) == 110_208 + 432 + 216 + 2_992 + 235 == 114_083


def test_discriminator_param_count_by_hand():
    net = EaganDiscriminator(small_d(), df_dim=8)
    # stem: conv3×3 3->8 (224) + conv3×3 8->8 (584) + 1×1 shortcut 3->8 (32)                 = 840
    # cell 0: conv_1x1 72 + conv_3x3 584 + down conv_3x3 584 (avg_pool has none)             = 1,240
    # cell 1: conv_3x3 584; its down edges are unused (no down-sampling)                      = 584
    # cell 2: conv_5x5 8·8·25 + 8                                                             = 1,608
    # head: SN linear 8->1 without bias                                                        = 8
    assert count_params(net) == 840 + 1_240 + 584 + 1_608 + 8 == 4_280


def test_paper_generator_size_matches_reported():
    # EAGAN reports 7.14M parameters (CIFAR-10, 32×32) and 11.55M (STL-10, 48×48) at gf_dim 256
    assert count_params(build_network(EAGAN_CIFAR10_G, resolution=32)) == 7_142_403
    assert count_params(build_network(EAGAN_CIFAR10_G, resolution=48)) == 11_550_723


# ------------------------------------------------------------------ SubnetView and training


def test_subnet_view_parameters_and_training_step():
    torch.manual_seed(0)
    sup = GeneratorSupernet(gf_dim=C)
    g = EAGAN_CIFAR10_G
    view = SubnetView(sup, g)
    z = torch.randn(2, 120)
    assert torch.equal(view.eval()(z), sup.eval()(z, g))
    names = [n for n, _ in view.named_parameters()]
    assert names and all(n.startswith("supernet.") for n in names)
    assert "supernet.cells.0.normal.2.conv_1x1.conv.weight" in names
    assert "supernet.cells.0.normal.2.conv_3x3.conv.weight" not in names
    assert sum(p.numel() for p in view.parameters()) == count_params(sup.derive(g))
    assert torch.equal(view.export().eval()(z), sup(z, g))
    with pytest.raises(TypeError, match="Supernet"):
        SubnetView(nn.Linear(2, 2), g)

    # EAGAN: one optimiser over the whole supernet, one subnet per batch
    opt = torch.optim.Adam(sup.parameters(), lr=1e-2)
    inactive = sup.cells[0].normal[2]["conv_5x5"].conv.weight.detach().clone()
    active = sup.cells[0].normal[2]["conv_1x1"].conv.weight.detach().clone()
    sup.train()
    for _ in range(2):
        opt.zero_grad()
        view(z).square().mean().backward()
        opt.step()
    assert torch.equal(sup.cells[0].normal[2]["conv_5x5"].conv.weight, inactive)
    assert not torch.equal(sup.cells[0].normal[2]["conv_1x1"].conv.weight, active)


def test_registry():
    assert isinstance(build_network(EAGAN_CIFAR10_G, width=C), EaganGenerator)
    assert isinstance(build_network(small_d(), width=C, latent_dim=120), EaganDiscriminator)
    assert isinstance(build_supernet("eagan-d", width=C), DiscriminatorSupernet)
    assert build_supernet("eagan-g", width=C, resolution=48).bottom_width == 6
    with pytest.raises(GenotypeError, match="unknown search space"):
        build_supernet("nope-g")
    bad = Genotype("eagan-g", EAGAN_CIFAR10_G.cells[:2])
    with pytest.raises(GenotypeError, match="^eagan-g has 3 cells, the genotype has 2$"):
        build_network(bad)


# ------------------------------------------------------------------ profile and diagrams


def test_count_flops_hand_checked():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    # 4 out · 3 in · 9 taps · 8·8 positions multiply-adds, 2 FLOPs each
    assert count_flops(conv, torch.randn(5, 3, 8, 8)) == 2 * 4 * 3 * 9 * 64
    lin = ops.maybe_sn(nn.Linear(10, 5), True)
    assert count_flops(lin, torch.randn(3, 10)) == 2 * 10 * 5  # σ of the spectral norm excluded
    bn_net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)).train()
    before = bn_net[1].running_mean.clone()
    count_flops(bn_net, torch.randn(4, 3, 8, 8) + 5)
    assert bn_net.training and bn_net[1].training
    assert torch.equal(bn_net[1].running_mean, before)


def test_summarize_and_format():
    s = summarize(EAGAN_CIFAR10_G, resolution=32, channels=3, width=C)
    net = build_network(EAGAN_CIFAR10_G, resolution=32, channels=3, width=C)
    assert s["space"] == "eagan-g" and s["params"] == count_params(net) == 114_083
    assert len(s["cells"]) == 3 and s["cells"][0]["ops"] == EAGAN_CIFAR10_G.cells[0].to_dict()
    assert sum(c["params"] for c in s["cells"]) + s["other_params"] == s["params"]
    assert s["cells"][0]["params"] == 72 * 2 + 72 + 584  # 2 ups + conv_1x1 + conv_3x3, no skips into cell 0
    assert s["flops"] == count_flops(net, torch.randn(1, 120)) > 0
    text = format_summary(s)
    assert "eagan-g" in text and "114,083" in text and "dil_conv_3x3" in text

    d = summarize(small_d(), resolution=48, channels=1, width=C)
    dnet = build_network(small_d(), resolution=48, channels=1, width=C)
    assert d["params"] == count_params(dnet)
    assert [c["downsample"] for c in d["cells"]] == [True, False, False]
    assert d["flops"] == count_flops(dnet, torch.randn(1, 1, 48, 48))
    assert "down edges unused" in format_summary(d)
    d2 = summarize(small_d(), resolution=32, channels=3, width=C, downsample=(True, True, False))
    assert [c["downsample"] for c in d2["cells"]] == [True, True, False]
    assert d2["cells"][1]["params"] == d["cells"][1]["params"]  # cell 1's downs are max_pool: no weights
    assert d2["flops"] < count_flops(build_network(small_d(), width=C), torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("genotype", [EAGAN_CIFAR10_G, small_d()], ids=["G", "D"])
def test_draw_png(tmp_path, genotype):
    out = draw_genotype(genotype, tmp_path / "sub" / "arch.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    if genotype.space == "eagan-d":
        other = draw_genotype(genotype, tmp_path / "all_down.png", downsample=(True, True, True))
        assert other.read_bytes() != data  # the down ops of cells 1 and 2 are now drawn
