"""The DARTS search supernet: size, one-hot weights = the derived network, DARTS' derivation rule."""

import pytest
import torch

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.darts_net import count_parameters
from raynas.nn.darts_search import DartsSupernet, derive_cell, edge_index
from raynas.nn.registry import build_supernet
from raynas.spaces.darts import PRIMITIVES, darts_genotype

# no pool ops: the supernet's search-time BN after a pool does not exist in the derived net
NO_POOL = darts_genotype(
    normal=[("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 0), ("sep_conv_5x5", 2),
            ("skip_connect", 2), ("dil_conv_5x5", 1), ("sep_conv_3x3", 3), ("skip_connect", 4)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("sep_conv_3x3", 1), ("skip_connect", 0), ("dil_conv_5x5", 2), ("sep_conv_5x5", 0),
            ("dil_conv_3x3", 3), ("skip_connect", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    reduce_concat=[2, 3, 4, 5])


def _one_hot(net: DartsSupernet, cell) -> torch.Tensor:
    w = torch.zeros(net.num_edges, len(net.primitives))
    for k, (op, state) in enumerate(cell.ops):
        w[edge_index(k // 2, state), net.primitives.index(op)] = 1.0
    return w


def test_default_size_and_parameters():
    net = DartsSupernet()
    assert count_parameters(net) == 1_930_618  # DARTS' "param size = 1.930618MB"
    assert net.alphas_normal.shape == net.alphas_reduce.shape == (14, 8)
    assert net.reduction_positions == (2, 5) and net.num_edges == 14
    assert net.alphas_normal.abs().max() < 0.01  # 1e-3·randn
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert {id(p) for p in arch}.isdisjoint(id(p) for p in weights)
    assert len(arch) + len(weights) == len(list(net.parameters()))
    # the supernet's cell BN is non-affine; pools carry their own non-affine BN; 'none' is not built
    edge = net.cells[0].edges[0]
    assert list(edge.ops) == list(PRIMITIVES[1:])
    assert type(edge.ops["max_pool_3x3"][1]).__name__ == "BatchNorm2d" and not edge.ops["max_pool_3x3"][1].affine
    assert all(not m.affine for m in net.cells.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_sizes_are_settable_and_checked():
    net = build_supernet("darts", resolution=16, channels=1, width=4, layers=3, num_classes=5, steps=3,
                         multiplier=2, reduction_positions=(1,))
    assert net.alphas_reduce.shape == (2 + 3 + 4, 8) and net.reduction_positions == (1,)
    logits = net(torch.randn(2, 1, 16, 16))
    assert logits.shape == (2, 5)
    assert net.derive_genotype().normal.concat == (3, 4)
    with pytest.raises(ConfigError, match="too small for DARTS' two reduction cells"):
        DartsSupernet(4, 10, 2)
    with pytest.raises(ConfigError, match="multiplier=5"):
        DartsSupernet(4, 10, 3, multiplier=5)
    with pytest.raises(ConfigError, match="unknown"):
        DartsSupernet(4, 10, 3, primitives=("none", "conv_3x3"))
    with pytest.raises(ValueError, match="mixing weights must be 14x8"):
        DartsSupernet(4, 10, 3)(torch.randn(1, 3, 8, 8), (torch.zeros(13, 8), torch.zeros(14, 8)))


def test_one_hot_supernet_equals_derived_network():
    torch.manual_seed(0)
    sup = DartsSupernet(4, 5, 3, in_channels=1)
    net = sup.export(NO_POOL)
    weights = (_one_hot(sup, NO_POOL.normal), _one_hot(sup, NO_POOL.reduce))
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        for mode in ("train", "eval"):
            sup.train(mode == "train")
            net.train(mode == "train")
            # bit-exact on CPU: the zero-weight terms add exact zeros, and BN with weight 1 / bias 0 is exact
            assert torch.equal(sup(x, weights), net(x)[0]), mode
    # the comparison can fail: a different op on one edge gives a different function
    other = darts_genotype(NO_POOL.normal.ops[:-1] + (("sep_conv_3x3", 4),), NO_POOL.normal.concat,
                           NO_POOL.reduce.ops, NO_POOL.reduce.concat)
    with torch.no_grad():
        assert not torch.allclose(sup(x, (_one_hot(sup, other.normal), weights[1])), net(x)[0], atol=1e-4)
    # a genotype the supernet cannot hold
    with pytest.raises(GenotypeError, match="has 4 nodes and concatenates 4"):
        DartsSupernet(4, 5, 3, steps=3, multiplier=3).export(NO_POOL)


def _hand_alpha() -> torch.Tensor:
    a = torch.zeros(14, 8)
    col = {name: k for k, name in enumerate(PRIMITIVES)}
    a[0, col["sep_conv_3x3"]] = 3.0        # node 0 ← state 0: sep_conv_3x3
    a[1, col["none"]] = 6.0                # node 0 ← state 1: 'none' dominates; best other op ties → max_pool_3x3
    a[3, col["dil_conv_5x5"]] = 2.0        # node 1 ← state 1
    a[4, col["skip_connect"]] = 1.0        # node 1 ← state 2 (state 0 stays uniform: weaker)
    a[5, col["none"]] = 8.0                # node 2 ← state 0: 'none' wins the row but makes the edge weakest
    a[7, col["avg_pool_3x3"]] = 1.0        # node 2 ← state 2; states 1 and 3 tie → the lower (1) is kept
    a[9, col["sep_conv_5x5"]] = 1.5        # node 3 ← state 0
    a[10, col["none"]] = 3.0
    a[13, col["sep_conv_3x3"]] = 2.5       # node 3 ← state 4 (strongest)
    return a


def test_derivation_on_hand_made_alpha():
    net = DartsSupernet(4, 10, 3)
    with torch.no_grad():
        net.alphas_normal.copy_(_hand_alpha())
        net.alphas_reduce.zero_()
    g = net.derive_genotype()
    assert g.normal.ops == (("sep_conv_3x3", 0), ("max_pool_3x3", 1),
                            ("dil_conv_5x5", 1), ("skip_connect", 2),
                            ("avg_pool_3x3", 2), ("max_pool_3x3", 1),
                            ("sep_conv_3x3", 4), ("sep_conv_5x5", 0))
    # all-equal α: every node keeps states 0 and 1 with the first op other than 'none'
    assert g.reduce.ops == (("max_pool_3x3", 0), ("max_pool_3x3", 1)) * 4
    assert g.normal.concat == g.reduce.concat == (2, 3, 4, 5)
    table = net.alpha_table()
    assert len(table) == 28 and list(table)[:3] == ["normal.2.0", "normal.2.1", "normal.3.0"]
    assert abs(sum(table["normal.5.4"]) - 1) < 1e-6
    assert table["normal.2.0"][PRIMITIVES.index("sep_conv_3x3")] == max(table["normal.2.0"])


def test_derivation_never_picks_none_and_inputs_are_distinct():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        w = torch.softmax(3 * torch.randn(14, 8, generator=gen), dim=-1)
        w[:, 0] += 0.5  # make 'none' the strongest op on many edges
        pairs = derive_cell(w, 4, PRIMITIVES)
        assert all(op != "none" for op, _ in pairs)
        for i in range(4):
            (_, a), (_, b) = pairs[2 * i], pairs[2 * i + 1]
            assert a != b and a < i + 2 and b < i + 2
            # the two kept edges are the strongest by their best non-'none' weight
            strength = [w[edge_index(i, j), 1:].max().item() for j in range(i + 2)]
            assert sorted(strength, reverse=True)[:2] == [strength[a], strength[b]]
