"""DAMGAN: the damgan-g space, UA/DA attention edges, the supernet and the derived generator."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.attention import (
    AttentionEdge,
    DownAttention,
    Repeat,
    UpAttention,
    alpha_summary,
    check_kprime,
    select_top_k,
)
from raynas.nn.damgan_g import DamganGenerator, DamganSupernet
from raynas.spaces import Genotype, get_space
from raynas.spaces.damgan import NORMAL_CANDIDATES, UP_CANDIDATES

C = 8


def tiny_supernet(**kw) -> DamganSupernet:
    torch.manual_seed(0)
    args = {"latent_dim": 8, "gf_dim": C, "resolution": 32, "kprime": 4, "reduction": 4}
    args.update(kw)
    return DamganSupernet(**args)


# ---------------------------------------------------------------------------- space
def test_space_layout_and_json_roundtrip():
    space = get_space("damgan-g")
    names = space.edge_names()
    assert len(names) == 5 + 6 + 7
    assert names[:5] == ["cell0.up[0]", "cell0.up[1]",
                         "cell0.normal[0]", "cell0.normal[1]", "cell0.normal[2]"]
    assert [n for n in names if "skip" in n] == ["cell1.skip[0]", "cell2.skip[0]", "cell2.skip[1]"]
    assert space.n_choices().count(3) == 2 * 3 + 3 and space.n_choices().count(6) == 3 * 3
    g = space.sample(random.Random(3))
    g2 = Genotype.from_json(g.to_json())
    assert g2 == g and g2.validate() is g2
    assert space.decode(space.encode(g)) == g
    assert g.cells[0]["skip"] == ()


def test_edge_list_wiring():
    space = get_space("damgan-g")
    g = space.decode([0] * len(space.edge_names()))
    edges = space.edge_list(g)
    assert len(edges) == 18
    assert ("z", "c0.n1", "nearest") in edges and ("z", "c0.n2", "nearest") in edges
    assert ("c0.n1", "c0.n3", "conv_1x1") in edges
    assert ("c0.n2", "c0.n4", "conv_1x1") in edges and ("c0.n3", "c0.n4", "conv_1x1") in edges
    assert ("c0.n4", "c1.n1", "nearest") in edges          # cells join directly: node0 of cell 1 = c0.n4
    skips = [e for e in edges if e[0].endswith("n1") and e[1].endswith("n4")]
    assert sorted(skips) == [("c0.n1", "c1.n4", "nearest"), ("c0.n1", "c2.n4", "nearest"),
                             ("c1.n1", "c2.n4", "nearest")]


# ---------------------------------------------------------------------------- UA / DA
def test_up_attention_is_eq7_with_one_shared_mlp():
    torch.manual_seed(1)
    ua = UpAttention(C, reduction=4)
    assert ua.fc1.out_features == 2
    x = torch.randn(3, C, 5, 5)
    w = ua(x)
    assert w.shape == (3, C) and bool(((w > 0) & (w < 1)).all())

    def mlp(v):
        return F.linear(F.relu(F.linear(v, ua.fc1.weight, ua.fc1.bias)), ua.fc2.weight, ua.fc2.bias)

    ref = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
    torch.testing.assert_close(w, ref)
    assert UpAttention(C, reduction=64).fc1.out_features == 1   # bottleneck keeps at least one unit


def test_down_attention_shape_and_eq3():
    torch.manual_seed(2)
    da = DownAttention(12, reduction=4)
    x = torch.randn(2, 12, 4, 4)
    w = da(x)
    assert w.shape == (2, 12)
    ref = torch.sigmoid(da.fc2(F.relu(da.fc1(x.mean((2, 3))))))
    torch.testing.assert_close(w, ref)


@pytest.mark.parametrize("kind,cands,scale", [("normal", NORMAL_CANDIDATES, 1), ("up", UP_CANDIDATES, 2)])
def test_edge_shapes_and_gradients_reach_both_mlps(kind, cands, scale):
    torch.manual_seed(3)
    edge = AttentionEdge(kind, cands, C, kprime=4, reduction=4, scale=scale)
    with torch.no_grad():      # keep the tiny bottlenecks' ReLUs alive so every MLP weight gets a gradient
        edge.ua.fc1.bias.fill_(10.0)
        edge.da.fc1.bias.fill_(10.0)
    x = torch.randn(2, C, 4, 4)
    y = edge(x)
    assert y.shape == (2, C, 4 * scale, 4 * scale)
    (y ** 2).sum().backward()
    for mod in (edge.ua.fc1, edge.ua.fc2, edge.da.fc1, edge.da.fc2):
        assert mod.weight.grad is not None and mod.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for op in edge.ops.values() for p in op.parameters())


# ---------------------------------------------------------------------------- top-k selection
@pytest.mark.parametrize("kind,cands,scale", [("normal", NORMAL_CANDIDATES, 1), ("up", UP_CANDIDATES, 2),
                                              ("up", UP_CANDIDATES, 4)])
def test_top_k_selects_c_over_kprime_and_keeps_the_rest(kind, cands, scale):
    torch.manual_seed(4)
    edge = AttentionEdge(kind, cands, C, kprime=4, reduction=4, scale=scale)
    x = torch.randn(3, C, 4, 4)
    y = edge(x)
    with torch.no_grad():
        ua = edge.ua(x)
        summed = ua.sum(0)
        idx = edge.last_selected
        assert idx.numel() == C // 4 == edge.k
        assert idx.tolist() == sorted(idx.tolist())
        assert set(idx.tolist()) == set(torch.topk(summed, 2).indices.tolist())
        assert summed[idx].min() >= summed[[i for i in range(C) if i not in idx.tolist()]].max()
        x_w = x * ua[:, :, None, None]
        rest = F.interpolate(x_w, scale_factor=scale, mode="nearest") if scale > 1 else x_w
        unselected = [i for i in range(C) if i not in idx.tolist()]
        assert y.shape[1] == C
        torch.testing.assert_close(y[:, unselected], rest[:, unselected])
        # selected positions hold F^out = Σ_j DA-weighted op_j(F^k)  (eq. 5 then group sum)
        fk = x_w[:, idx]
        outs = [op(fk) for op in edge.ops.values()]
        att = edge.da(torch.cat(outs, 1)).unflatten(1, (len(cands), edge.k))
        f_out = sum(att[:, j, :, None, None] * outs[j] for j in range(len(cands)))
        torch.testing.assert_close(y[:, idx], f_out)
    assert isinstance(edge.ops["nearest" if kind == "up" else "conv_1x1"], Repeat) == (scale == 4)


def test_select_top_k_uses_batch_summed_weights():
    w = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.1, 0.7, 0.6, 0.1]])  # sums 1.0 .8 1.1 .3
    assert select_top_k(w[1:], 2).tolist() == [1, 2]                  # sample 2 alone would pick 1, 2
    assert select_top_k(w, 2).tolist() == [0, 2]
    assert select_top_k(w, 1).tolist() == [2]
    assert select_top_k(w, 3).tolist() == [0, 1, 2]


def test_kprime_one_runs_ops_on_all_maps():
    torch.manual_seed(5)
    edge = AttentionEdge("normal", NORMAL_CANDIDATES[:2], C, kprime=1, reduction=4)
    y = edge(torch.randn(2, C, 3, 3))
    assert edge.k == C and y.shape == (2, C, 3, 3)


# ---------------------------------------------------------------------------- α (eq. 4)
def _fix_da(edge: AttentionEdge, bias: torch.Tensor) -> None:
    """Zero the DA MLP except the output bias, so Atten_DA = σ(bias) for every sample."""
    with torch.no_grad():
        for p in edge.da.parameters():
            p.zero_()
        edge.da.fc2.bias.copy_(bias)


def test_alpha_sums_da_weights_per_op_and_averages_over_batches():
    torch.manual_seed(6)
    r = len(NORMAL_CANDIDATES)
    edge = AttentionEdge("normal", NORMAL_CANDIDATES, 4, kprime=2, reduction=16)  # k = 2 → 12 DA weights
    assert edge.k == 2 and edge.da.fc2.out_features == r * 2
    b1 = torch.tensor([0.0, 0.0, 1.0, -1.0, 2.0, 2.0, -3.0, 0.0, 0.5, 0.5, 4.0, -4.0])
    b2 = torch.zeros(12)
    edge.train()
    _fix_da(edge, b1)
    edge(torch.randn(3, 4, 5, 5))
    s = 1 / (1 + math.exp(-1))

    def sig(v):
        return 1 / (1 + math.exp(-v))

    alpha1 = [1.0, s + (1 - s), 2 * sig(2.0), sig(-3.0) + 0.5, 2 * sig(0.5), sig(4.0) + sig(-4.0)]
    assert edge.alpha() == pytest.approx(alpha1, abs=1e-6)
    _fix_da(edge, b2)
    edge(torch.randn(5, 4, 5, 5))                      # a second batch: α = mean of both batches' eq. 4
    assert edge.alpha() == pytest.approx([(a + 1.0) / 2 for a in alpha1], abs=1e-6)
    assert edge.best() == "conv_5x5"                   # op 2: 2σ(2)=1.76 → (1.76+1)/2 is the largest
    edge.eval()
    _fix_da(edge, torch.full((12,), 9.0))
    edge(torch.randn(2, 4, 5, 5))                      # eval mode records nothing
    assert edge.alpha() == pytest.approx([(a + 1.0) / 2 for a in alpha1], abs=1e-6)
    edge.reset_alpha()
    assert edge.alpha() == [0.0] * r and not edge.recorded


def test_alpha_summary_entropy_and_margin():
    s = alpha_summary([3.0, 1.0, 0.0])
    assert s["entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert s["margin"] == pytest.approx(0.5)
    u = alpha_summary([2.0, 2.0, 2.0])
    assert u["entropy"] == pytest.approx(math.log(3)) and u["margin"] == pytest.approx(0.0)


# ---------------------------------------------------------------------------- supernet + derivation
def test_supernet_forward_and_alpha_table():
    net = tiny_supernet()
    net.train()
    with torch.no_grad():
        y = net(torch.randn(4, 8))
    assert y.shape == (4, 3, 32, 32) and float(y.abs().max()) <= 1.0
    space = get_space("damgan-g")
    assert net.edge_names() == space.edge_names()
    table = net.alpha_table()
    assert list(table) == space.edge_names()
    assert all(len(v) == 3 for k, v in table.items() if ".up[" in k or ".skip[" in k)
    assert all(len(v) == 6 and all(0 < a < 2 for a in v) for k, v in table.items() if ".normal[" in k)
    stats = net.alpha_stats()
    assert set(stats) == set(table) and all(0 <= s["margin"] <= 1 for s in stats.values())
    assert net.arch_parameters() == []
    assert len(net.weight_parameters()) == len(list(net.parameters()))
    with torch.no_grad():
        assert tiny_supernet(resolution=48)(torch.randn(2, 8)).shape == (2, 3, 48, 48)


def test_derive_genotype_takes_argmax_per_edge_and_builds():
    net = tiny_supernet()
    with pytest.raises(GenotypeError, match="training mode"):
        net.derive_genotype()
    gen = torch.Generator().manual_seed(7)
    expected = []
    for _, edge in net.named_edges():
        vals = torch.rand(len(edge.candidates), generator=gen, dtype=torch.float64)
        edge.alpha_sum.copy_(vals * 3)
        edge.alpha_count.fill_(3)
        expected.append(int(vals.argmax()))
    g = net.derive_genotype()
    space = get_space("damgan-g")
    assert space.encode(g) == expected
    assert g.validate() is g
    # checkpoints carry the α statistics
    fresh = tiny_supernet()
    fresh.load_state_dict(net.state_dict())
    assert fresh.alpha_table() == net.alpha_table()
    for res in (32, 48):
        torch.manual_seed(0)
        derived = DamganGenerator(g, latent_dim=8, gf_dim=C, resolution=res)
        with torch.no_grad():
            out = derived(torch.randn(2, 8))
        assert out.shape == (2, 3, res, res) and float(out.abs().max()) <= 1.0
    assert derived.num_params() == sum(p.numel() for p in derived.parameters()) > 0


# ---------------------------------------------------------------------------- errors
def test_kprime_must_divide_channels():
    with pytest.raises(ConfigError, match="1, 2, 4, 8"):
        check_kprime(8, 3)
    with pytest.raises(ConfigError, match="divisors of 8"):
        tiny_supernet(kprime=3)
    with pytest.raises(ConfigError, match="^kprime=16 does not divide the 8 feature maps per node; allowed values are "
                                          "the divisors of 8: 1, 2, 4, 8$"):
        AttentionEdge("normal", NORMAL_CANDIDATES, 8, kprime=16)
    assert check_kprime(256, 4) == 64


def test_unknown_ops_and_bad_settings():
    with pytest.raises(GenotypeError, match="conv_3x3"):
        AttentionEdge("normal", ["conv_3x3", "conv_9x9"], C)
    with pytest.raises(GenotypeError, match="bilinear"):
        AttentionEdge("up", ["pixel_shuffle"], C, scale=2)
    space = get_space("damgan-g")
    bad = space.decode([0] * len(space.edge_names())).to_dict()
    bad["cells"][1]["normal"][2] = "conv_9x9"
    with pytest.raises(GenotypeError, match="sep_conv_7x7"):
        DamganGenerator(Genotype.from_dict(bad), gf_dim=C)
    with pytest.raises(ConfigError, match="selector"):
        tiny_supernet(selector="gdas")
    with pytest.raises(ConfigError, match="resolution"):
        tiny_supernet(resolution=36)


# ---------------------------------------------------------------------------- DARTS selector
def test_darts_selector_softmax_architecture_parameters():
    net = tiny_supernet(selector="darts")
    arch = net.arch_parameters()
    assert len(arch) == 18
    arch_ids = {id(p) for p in arch}
    assert not arch_ids & {id(p) for p in net.weight_parameters()}
    assert len(arch) + len(net.weight_parameters()) == len(list(net.parameters()))
    with torch.no_grad():
        for p in arch:
            p.copy_(torch.randn_like(p))
    table = net.alpha_table()
    for (name, edge), p in zip(net.named_edges(), arch):
        assert edge.arch is p and edge.da is None
        assert sum(table[name]) == pytest.approx(1.0)
        assert table[name] == pytest.approx(torch.softmax(p.detach(), 0).tolist())
    g = net.derive_genotype()
    assert get_space("damgan-g").encode(g) == [int(p.argmax()) for p in arch]
    net(torch.randn(2, 8)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in arch)


def test_darts_edge_output_is_softmax_mixture():
    torch.manual_seed(8)
    edge = AttentionEdge("normal", NORMAL_CANDIDATES[:3], C, kprime=2, reduction=4, selector="darts")
    with torch.no_grad():
        edge.arch.copy_(torch.tensor([1.0, 0.0, -1.0]))
    x = torch.randn(2, C, 4, 4)
    y = edge(x)
    with torch.no_grad():
        ua = edge.ua(x)
        idx = edge.last_selected
        fk = (x * ua[:, :, None, None])[:, idx]
        w = torch.softmax(torch.tensor([1.0, 0.0, -1.0]), 0)
        ref = sum(w[j] * op(fk) for j, op in enumerate(edge.ops.values()))
        torch.testing.assert_close(y[:, idx], ref)


# ---------------------------------------------------------------------------- registry
def test_registry_builds_derived_net_and_supernet():
    from raynas.nn.registry import build_network, build_supernet

    space = get_space("damgan-g")
    g = space.sample(random.Random(11))
    torch.manual_seed(0)
    net = build_network(g, resolution=48, channels=1, width=C, latent_dim=8)
    assert isinstance(net, DamganGenerator) and net.gf_dim == C
    with torch.no_grad():
        assert net(torch.randn(2, 8)).shape == (2, 1, 48, 48)
    # derived edges follow the registry's cells.<i>.<group>.<j>.<op> convention
    op = g.cells[2]["skip"][0]
    assert any(k.startswith(f"cells.2.skip.0.{op}.") for k in net.state_dict())
    sup = build_supernet("damgan-g", resolution=32, width=C, latent_dim=8, kprime=2, selector="darts")
    assert isinstance(sup, DamganSupernet) and sup.kprime == 2 and len(sup.arch_parameters()) == 18
    derived = sup.derive()
    assert isinstance(derived, DamganGenerator) and derived.genotype == sup.derive_genotype()
    assert derived.gf_dim == C and derived.latent_dim == 8


def test_diagrams_keep_every_arc_and_label_inside_the_axes():
    """Long cross-cell skip arcs bulge far above the nodes; the axes must hold them and their labels."""
    import random

    from raynas.spaces.draw import render_cells

    for name in ("damgan-g", "eagan-g", "eagan-d"):
        space = get_space(name)
        for seed in range(3):
            fig = render_cells(space.sample(random.Random(seed)))
            ax = fig.axes[0]
            (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
            labels = [t for t in ax.texts if t.get_text()]
            assert labels
            for t in labels:
                x, y = t.get_position()
                assert x0 < x < x1 and y0 < y < y1, (name, t.get_text(), (x, y), (y0, y1))
