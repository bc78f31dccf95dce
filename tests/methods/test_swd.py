"""SWD-NAS science core: the space, the search network's dual attention (UA / LA / eq. 7 / AWN), derivation, and the
evaluation network's stacking. Plain PyTorch on tiny sizes."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.darts_net import count_parameters
from raynas.nn.swd_net import build_swd_network
from raynas.nn.swd_search import SwdEdge, SwdSupernet, check_k, normalise, op_attention
from raynas.spaces import Genotype
from raynas.spaces.darts import PRIMITIVES
from raynas.spaces.swd import CELL_TYPES, SwdGenotype, swd_cell_index

N_OPS = len(PRIMITIVES)


class FixedWeights(nn.Module):
    """Stands in for an attention module: returns the given (b, C) weights whatever the input."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weights = weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights


def _genotype_dict(n_cells: int = 5) -> dict:
    g = json.loads(Genotype.load("swd-nas-cifar10").to_json())
    g["cells"] = g["cells"][:n_cells]
    return g


# ---------------------------------------------------------------------------------------------- space
def test_shipped_genotype_round_trips_and_validation_names_the_problem():
    g = Genotype.load("swd-nas-cifar10")
    assert isinstance(g, SwdGenotype) and g.space == "swd-nas" and len(g.cells) == 5
    assert g.types == CELL_TYPES == ("normal", "reduce", "normal", "reduce", "normal")
    assert Genotype.from_json(g.to_json(indent=2)) == g == SwdGenotype.from_json(g.to_json())
    d = g.to_dict()
    assert d["cells"][0] == {"type": "normal", "concat": [2, 3, 4, 5], "ops": [
        ["skip_connect", 0], ["sep_conv_5x5", 1], ["max_pool_3x3", 0], ["dil_conv_3x3", 1], ["sep_conv_3x3", 0],
        ["dil_conv_5x5", 1], ["sep_conv_5x5", 0], ["avg_pool_3x3", 1]]}
    with pytest.raises(GenotypeError, match="exactly 5 cells .*this one has 4"):
        Genotype.from_dict(_genotype_dict(4))
    with pytest.raises(GenotypeError, match="exactly 5 cells"):
        SwdGenotype(g.cells[:3]).validate()
    bad = _genotype_dict()
    bad["cells"][1]["type"] = "normal"
    with pytest.raises(GenotypeError, match="cell 1 has type 'normal'.*normal, reduce, normal, reduce, normal"):
        Genotype.from_dict(bad)
    bad = _genotype_dict()
    bad["cells"][3]["ops"][5] = ["conv_9x9", 1]
    with pytest.raises(GenotypeError, match=r"cell 3 \(reduce\) cell, node 2 .*unknown op 'conv_9x9'"):
        Genotype.from_dict(bad).validate()
    bad = _genotype_dict()
    bad["cells"][4]["ops"][0] = ["skip_connect", 2]
    with pytest.raises(GenotypeError, match=r"cell 4 \(normal\) cell, node 0 .*input index 2 out of range"):
        Genotype.from_dict(bad).validate()


# ---------------------------------------------------------------------------------------------- UA / LA / eq. 7
def test_ua_keeps_exactly_c_over_k_channels_chosen_by_the_batch_summed_weights():
    torch.manual_seed(0)
    C, k = 8, 4
    edge = SwdEdge(C, 1, k=k, residual=False)
    # sample 0 prefers channels 0, 1; sample 1 prefers 6, 7; summed over the batch, 3 and 5 win
    w = torch.tensor([[0.9, 0.8, 0.1, 0.6, 0.1, 0.6, 0.0, 0.0],
                      [0.0, 0.0, 0.1, 0.6, 0.1, 0.6, 0.9, 0.8]])
    edge.ua = FixedWeights(w)
    seen = []
    for op in edge.ops:
        op.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    x = torch.randn(2, C, 6, 6)
    y = edge(x)
    assert edge.last_selected.tolist() == [3, 5]  # not per sample, and ascending; a 1-D index
    assert {tuple(s) for s in seen} == {(2, C // k, 6, 6)}
    assert y.shape == x.shape
    weighted = x * w[:, :, None, None]
    rest = [c for c in range(C) if c not in (3, 5)]
    assert torch.equal(y[:, rest], weighted[:, rest])  # unselected channels pass through (UA-weighted)

    # stride 2: the unselected channels are max-pooled 2x2
    edge2 = SwdEdge(C, 2, k=k, residual=False)
    edge2.ua = FixedWeights(w)
    y2 = edge2(x)
    assert edge2.last_selected.tolist() == [3, 5] and y2.shape == (2, C, 3, 3)
    pooled = torch.nn.functional.max_pool2d(weighted, 2, 2)
    assert torch.equal(y2[:, rest], pooled[:, rest])
    # C/k = 1 (k = C, the authors' crash T-S1): the index stays 1-D
    edge1 = SwdEdge(C, 1, k=C)
    edge1.ua = FixedWeights(w)
    assert edge1(x).shape == x.shape and edge1.last_selected.tolist() == [3]

    # UA off: every channel goes to the ops, un-weighted
    edge3 = SwdEdge(C, 1, k=k, ua=False)
    assert edge3.ua is None and edge3.width == C
    seen.clear()
    for op in edge3.ops:
        op.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    edge3(x)
    assert all(torch.equal(s, x) for s in seen)


def test_la_shapes_and_poolings():
    torch.manual_seed(0)
    C, k = 16, 4
    for pool in ("gap", "gap+gmp"):
        edge = SwdEdge(C, 1, k=k, la_pool=pool, ua_pool=pool)
        captured = {}
        edge.la.register_forward_hook(lambda m, inp, out, c=captured: c.update(inp=inp[0].shape, out=out.shape))
        y = edge(torch.randn(3, C, 8, 8))
        assert captured == {"inp": (3, N_OPS * C // k, 8, 8), "out": (3, N_OPS * C // k)}
        assert edge.la.fc1.in_features == N_OPS * C // k and edge.la.fc1.out_features == N_OPS * C // k // 8
        assert edge.ua.fc1.in_features == C and edge.ua.fc1.out_features == C // 2
        assert y.shape == (3, C, 8, 8)
    with pytest.raises(ConfigError, match="'gmp' is not a pooling mode; choose one of: gap, gap\\+gmp"):
        SwdEdge(C, 1, k=k, ua_pool="gmp")


def test_eq7_against_a_hand_computation_and_the_mean_is_batch_size_free():
    att = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                        [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])  # 2 images, 3 ops x 2 channels
    assert torch.allclose(op_attention(att, 3), torch.tensor([[0.3, 0.7, 1.1], [1.1, 0.7, 0.3]]))

    torch.manual_seed(0)
    C, k = 8, 4
    width = C // k
    edge = SwdEdge(C, 1, k=k)
    la = torch.rand(2, N_OPS * width)
    edge.la = FixedWeights(la)
    edge.record = True
    edge(torch.randn(2, C, 4, 4))
    hand = [sum(float(la[b, op * width + c]) for b in range(2) for c in range(width)) / 2 for op in range(N_OPS)]
    assert edge.attention().tolist() == pytest.approx(hand)
    # the same images seen twice more in a bigger batch: the per-image mean does not change
    edge.la = FixedWeights(torch.cat([la, la]))
    edge(torch.randn(4, C, 4, 4))
    assert edge.attention().tolist() == pytest.approx(hand)
    edge.reset_attention()
    assert edge.attention() is None
    edge.record = False
    edge.la = FixedWeights(la)
    edge(torch.randn(2, C, 4, 4))
    assert edge.attention() is None


# ---------------------------------------------------------------------------------------------- AWN
def test_awn_sums_to_one_and_is_scale_invariant_softmax_is_not():
    torch.manual_seed(0)
    att = torch.rand(14, N_OPS) * 3
    a = normalise(att)
    assert torch.allclose(a.sum(dim=1), torch.ones(14, dtype=torch.float64))
    assert torch.allclose(normalise(att * 17.0), a) and torch.allclose(normalise(att * 0.01), a)
    assert torch.allclose(a, att.double() / att.double().sum(dim=1, keepdim=True))
    s = normalise(att, awn=False)
    assert torch.allclose(s.sum(dim=1), torch.ones(14, dtype=torch.float64))
    assert not torch.allclose(normalise(att * 17.0, awn=False), s)
    assert torch.equal(normalise(torch.zeros(2, 4)), torch.full((2, 4), 0.25, dtype=torch.float64))


def _tiny_supernet(**kw) -> SwdSupernet:
    return SwdSupernet(4, 3, 5, k=2, steps=2, multiplier=2, in_channels=1, **kw)


def test_search_network_records_and_its_alpha_table_is_awn():
    torch.manual_seed(0)
    net = _tiny_supernet()
    assert net.segments == [0, 1, 2, 3, 4] and net.reduction_positions == (1, 3)
    assert [c.channels for c in net.cells] == [4, 8, 8, 16, 16]
    net.set_recording(True)
    out = net(torch.randn(3, 1, 16, 16))
    assert out.shape == (3, 3)
    out.sum().backward()  # single level: attention MLPs get gradients with the weights
    assert net.cells[0].edges[0].ua.fc1.weight.grad is not None
    assert net.weight_parameters() == list(net.parameters()) and net.arch_parameters() == []
    table = net.alpha_table()
    assert len(table) == 5 * 5 and list(table)[:3] == ["cell0.2.0", "cell0.2.1", "cell0.3.0"]
    for row in table.values():
        assert len(row) == N_OPS and sum(row) == pytest.approx(1.0)
    # scaling every edge's attention by a constant leaves the AWN table (and so the genotype) unchanged
    before, genotype = net.alpha_table(), net.derive_genotype()
    for e in net.edges():
        e.atten_sum *= 5.0
    after = net.alpha_table()
    assert all(after[e] == pytest.approx(before[e]) for e in before) and net.derive_genotype() == genotype
    net8 = SwdSupernet(4, 3, 8, k=4, steps=2, multiplier=2, in_channels=1)
    assert net8.segments == [0, 0, 1, 2, 2, 3, 4, 4]


def test_derivation_picks_top2_edges_by_best_awn_weight_and_never_none():
    net = _tiny_supernet()
    none = PRIMITIVES.index("none")
    for cell in net.cells:
        for j, e in enumerate(cell.edges):
            row = torch.full((N_OPS,), 1.0, dtype=torch.float64)
            row[none] = 50.0  # none dominates every edge
            row[PRIMITIVES.index("sep_conv_3x3")] = 2.0 + j  # later edges are stronger on sep_conv_3x3
            e.atten_sum.copy_(row)
            e.atten_count.fill_(1.0)
    g = net.derive_genotype()
    assert all(op != "none" for cell in g.cells for op, _ in cell.ops)
    # node 0 has edges from states 0, 1; node 1 from 0, 1, 2: the two strongest are the later ones
    assert g.cells[0].ops == (("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 2), ("sep_conv_3x3", 1))
    assert g.cells[0].concat == (2, 3)
    # softmax of the same sums: none still dominates, derivation still never picks it
    net.awn = False
    assert all(op != "none" for cell in net.derive_genotype().cells for op, _ in cell.ops)


def test_k_must_divide_every_cells_channels():
    assert check_k(4, [16, 32, 64]) == 4
    with pytest.raises(ConfigError, match=r"k=3 does not divide every cell's channel count \(16, 32, 64\).*"
                                          r"valid k: 1, 2, 4, 8, 16"):
        check_k(3, [16, 32, 64])
    with pytest.raises(ConfigError, match="valid k: 1, 2, 4, 8$"):
        SwdSupernet(8, 10, 5, k=16)
    SwdSupernet(8, 10, 5, k=16, ua=False)  # UA off: k is unused
    with pytest.raises(ConfigError, match="layers >= 5"):
        SwdSupernet(8, 10, 4, k=2)


# ---------------------------------------------------------------------------------------------- evaluation network
def test_evaluation_network_stacks_the_five_cells_in_order():
    g = Genotype.load("swd-nas-cifar10")
    with torch.device("meta"):
        net = build_swd_network(g, layers=20, auxiliary=True)
    assert [spec.cell for spec in net.plan] == [g.cells[0]] * 6 + [g.cells[1]] + [g.cells[2]] * 6 + [g.cells[3]] \
        + [g.cells[4]] * 6
    assert net.reduction_positions == (6, 13) and net.auxiliary_position == 13 and net.C == 36
    assert [cell.genotype for cell in net.cells] == [spec.cell for spec in net.plan]
    for layers in (5, 8, 11, 14):
        r1, r2 = layers // 3, 2 * layers // 3
        expected = [0 if i < r1 else 1 if i == r1 else 2 if i < r2 else 3 if i == r2 else 4 for i in range(layers)]
        assert [swd_cell_index(i, layers) for i in range(layers)] == expected
    with torch.device("meta"):
        small = build_swd_network(g, layers=5, width=8, channels=1, num_classes=10)
    assert [spec.cell for spec in small.plan] == list(g.cells)
    with pytest.raises(ConfigError, match="leave cell 2 \\(normal\\).* out"):
        build_swd_network(g, layers=4)
    with pytest.raises(GenotypeError, match="needs an swd-nas genotype"):
        build_swd_network(Genotype.load("darts-v2"))


def test_shipped_genotype_parameter_count():
    """The authors' live CIFAR-10 cells reproduce the paper's 3.17M (Table I) and 6.3M on ImageNet (Table II)."""
    g = Genotype.load("swd-nas-cifar10")
    with torch.device("meta"):
        assert count_parameters(build_swd_network(g)) == 3_169_198
        assert count_parameters(build_swd_network(g, imagenet=True, resolution=224)) == 6_280_192


def test_a_forward_and_backward_through_the_evaluation_network():
    torch.manual_seed(0)
    net = build_swd_network(Genotype.load("swd-nas-cifar10"), layers=5, width=4, channels=1, auxiliary=True,
                            drop_path_prob=0.2)
    logits, aux = net(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 10) and aux.shape == (2, 10)
    (logits.sum() + aux.sum()).backward()


# ---------------------------------------------------------------------------------------------- the search loop
@pytest.mark.parametrize("stats", ["val", "train"])
def test_search_accumulates_attention_on_the_chosen_split_and_resets_every_epoch(stats):
    from raynas.config import load_config
    from raynas.methods.swdnas.attention_search import SwdSearch

    cfg = load_config("quickstart-classify", ["swd.channels=4", "swd.k=2", "swd.steps=2", "swd.multiplier=2",
                                              "swd.epochs=2", "swd.batch_size=8", "data.limit=24",
                                              f"swd.stats={stats}"], method="swd-nas")
    search = SwdSearch(cfg, torch.device("cpu"))
    sizes = search.data.sizes
    for _ in range(2):
        search.train_epoch()
        counts = {float(e.atten_count) for e in search.supernet.edges()}
        assert counts == {float(sizes[stats])}  # exactly one epoch's images of that split, then reset
        assert not any(e.record for e in search.supernet.edges())
    scores = search.evaluate(search.derive_genotype())
    assert set(scores) == {"val_loss", "val_acc"}
    table = search.alpha_table()
    assert len(table) == 5 * 5 and all(sum(v) == pytest.approx(1.0) for v in table.values())
