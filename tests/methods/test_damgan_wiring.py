"""The derived DAMGAN generator against a reference computation written node by node from the space's spec
(``raynas/spaces/damgan.py``), as EAGAN's wiring is checked: the ops are recomputed from their own weights
elsewhere (tests/methods/test_eagan_wiring.py, same op zoo); here each node is rebuilt as the spec writes it."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from raynas.nn.damgan_g import DamganGenerator
from raynas.spaces import get_space

SPACE = get_space("damgan-g")


def _op(edge) -> torch.nn.Module:
    """The one module a derived edge holds."""
    (module,) = edge.values()
    return module


def _reference(net: DamganGenerator, z: torch.Tensor) -> torch.Tensor:
    """Latent → bottom map; in cell i: node1 = up[0](node0), node2 = up[1](node0), node3 = normal[0](node1),
    node4 = normal[1](node2) + normal[2](node3) + Σ_j skip[j](cell j's node1), where skip[j] applies its up op
    (i − j) times; cell i + 1's node0 = cell i's node4; then BN → ReLU → conv 3×3 → tanh."""
    h = F.linear(z, net.l1.weight, net.l1.bias).view(-1, net.gf_dim, net.bottom_width, net.bottom_width)
    node1s = []
    for i, cell in enumerate(net.cells):
        n0 = h
        n1 = _op(cell.up[0])(n0)
        n2 = _op(cell.up[1])(n0)
        n3 = _op(cell.normal[0])(n1)
        n4 = _op(cell.normal[1])(n2) + _op(cell.normal[2])(n3)
        for j, src in enumerate(node1s):
            op = _op(cell.skip[j])
            inner = op.op if hasattr(op, "op") else op  # a ×4 skip is the ×2 op twice, shared weights
            y = src
            for _ in range(i - j):
                y = inner(y)
            assert y.shape[-1] == n4.shape[-1], f"cell {i} skip {j} reaches {y.shape[-1]} px, node4 is {n4.shape[-1]}"
            n4 = n4 + y
        node1s.append(n1)
        h = n4
    bn, _, conv, _ = net.to_rgb
    h = F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)
    return torch.tanh(F.conv2d(F.relu(h), conv.weight, conv.bias, padding=1))


@pytest.mark.parametrize("seed", range(4))
def test_derived_generator_matches_the_spec_node_by_node(seed):
    torch.manual_seed(seed)
    genotype = SPACE.sample(random.Random(seed))
    net = DamganGenerator(genotype, latent_dim=8, gf_dim=4, resolution=32, out_channels=1).eval()
    z = torch.randn(3, 8)
    with torch.no_grad():
        out = net(z)
        ref = _reference(net, z)
    assert out.shape == (3, 1, 32, 32)
    torch.testing.assert_close(out, ref)


def test_skips_come_from_every_earlier_cells_first_node():
    """Zero the skip edges' weights of cell 2: the output must then change, and equal the reference with
    those skips removed (the reference would not notice a skip wired from node2 instead of node1 otherwise)."""
    torch.manual_seed(0)
    genotype = SPACE.sample(random.Random(1))
    net = DamganGenerator(genotype, latent_dim=8, gf_dim=4, resolution=32, out_channels=1).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        before = net(z)
        assert len(net.cells[2].skip) == 2 and len(net.cells[0].skip) == 0
        for edge in net.cells[2].skip:
            for p in edge.parameters():
                p.zero_()
        after = net(z)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, _reference(net, z))
