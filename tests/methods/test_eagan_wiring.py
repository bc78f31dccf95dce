"""EAGAN ops and cell wiring against independent reference computations written from the issue's spec.

The supernet == derived-net tests cannot catch a wiring mistake (both share one forward path), so here
each op is recomputed with plain ``torch.nn.functional`` calls from its own weights, and each network is
recomputed node by node as the spec writes it.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from raynas.nn.eagan_d import DiscriminatorSupernet
from raynas.nn.eagan_g import GeneratorSupernet
from raynas.nn.ops import build_op
from raynas.spaces.eagan import D_SPACE, G_SPACE, NORMAL_CANDIDATES
from raynas.spaces.genotype import Cell, Genotype

C = 3
# name -> (kernel, dilation) of the ReLU → conv normal ops
CONV_OPS = {"conv_1x1": (1, 1), "conv_3x3": (3, 1), "conv_5x5": (5, 1), "dil_conv_3x3": (3, 2), "dil_conv_5x5": (5, 2)}


@pytest.mark.parametrize(("name", "stride"), [(n, 1) for n in sorted(CONV_OPS)] +
                         [(n, 2) for n in sorted(CONV_OPS) if n != "conv_1x1"])  # down ops: no conv_1x1
def test_conv_ops_are_relu_then_plain_conv(name, stride):
    torch.manual_seed(0)
    k, dil = CONV_OPS[name]
    op = build_op("normal" if stride == 1 else "down", name, C)  # down ops are the stride-2 versions
    conv = op.conv
    assert tuple(conv.weight.shape) == (C, C, k, k) and conv.dilation == (dil, dil) and conv.groups == 1
    x = torch.randn(2, C, 8, 8)
    ref = F.conv2d(F.relu(x), conv.weight, conv.bias, stride=stride, padding=dil * (k - 1) // 2, dilation=dil)
    assert ref.shape == (2, C, 8 // stride, 8 // stride)
    torch.testing.assert_close(op(x), ref)


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolating_up_ops_upsample_then_relu_then_1x1(mode):
    torch.manual_seed(0)
    op = build_op("up", mode, C)
    x = torch.randn(2, C, 4, 4)
    up = F.interpolate(x, scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    torch.testing.assert_close(op(x), F.conv2d(F.relu(up), op.conv.weight, op.conv.bias))


def test_deconv_is_relu_depthwise_transposed_conv_then_1x1():
    torch.manual_seed(0)
    op = build_op("up", "deconv", C)
    assert tuple(op.deconv.weight.shape) == (C, 1, 3, 3)  # depthwise: one 3x3 kernel per channel
    x = torch.randn(2, C, 4, 4)
    mid = F.conv_transpose2d(F.relu(x), op.deconv.weight, op.deconv.bias, stride=2, padding=1, output_padding=1,
                             groups=C)
    out = op(x)
    assert out.shape == (2, C, 8, 8)
    torch.testing.assert_close(out, F.conv2d(mid, op.conv.weight, op.conv.bias))


def test_down_pools_and_parameter_counts():
    x = torch.randn(1, C, 8, 8)
    torch.testing.assert_close(build_op("down", "avg_pool", C)(x), F.avg_pool2d(x, 2))
    torch.testing.assert_close(build_op("down", "max_pool", C)(x), F.max_pool2d(x, 2))
    # Hand counts at C=3: conv k×k = C·C·k² + C; deconv = C·9 + C (depthwise) + C·C + C (1x1).
    counts = {n: sum(p.numel() for p in build_op("normal", n, C).parameters()) for n in CONV_OPS}
    assert counts == {"conv_1x1": 12, "conv_3x3": 84, "conv_5x5": 228, "dil_conv_3x3": 84, "dil_conv_5x5": 228}
    assert sum(p.numel() for p in build_op("up", "deconv", C).parameters()) == 27 + 3 + 9 + 3


def _g_reference(net: GeneratorSupernet, genotype: Genotype, z: torch.Tensor) -> torch.Tensor:
    """The generator as the issue writes it, node by node."""
    chunks = z.split(net.latent_dim // 3, dim=1)
    modes = ("nearest", "bilinear", "nearest")
    h, node2s = None, []
    for i in range(3):
        w = net.bottom_width * 2 ** i
        lat = net.fc[i](chunks[i]).view(-1, net.gf_dim, w, w)
        h = lat if h is None else h + lat
        cell, g = net.cells[i], genotype.cells[i]

        def op(j, x, cell=cell, g=g):
            return 0 if g["normal"][j] == "none" else cell.normal[j][g["normal"][j]](x)

        n0, n1 = cell.up[0][g["up"][0]](h), cell.up[1][g["up"][1]](h)
        skips = sum(cell.skip_in[k](F.interpolate(s, size=n0.shape[-2:], mode=modes[i]))
                    for k, s in enumerate(node2s))
        n2 = op(0, n0) + op(1, n1) + skips
        h = op(2, n0) + op(3, n1) + op(4, n2)
        node2s.append(n2)
    bn, _, conv, _ = net.to_rgb
    return torch.tanh(conv(F.relu(bn(h))))


def _full_g(rng: random.Random) -> Genotype:
    """A valid generator with no 'none' edge, so every wire carries signal."""
    ops = [o for o in NORMAL_CANDIDATES if o != "none"]
    return Genotype("eagan-g", tuple(Cell((("up", (rng.choice(["nearest", "bilinear", "deconv"]),
                                                     rng.choice(["nearest", "bilinear", "deconv"]))),
                                            ("normal", tuple(rng.choice(ops) for _ in range(5)))))
                                     for _ in range(3)))


def test_generator_matches_the_spec_node_by_node():
    torch.manual_seed(0)
    rng = random.Random(0)
    net = GeneratorSupernet(latent_dim=12, gf_dim=4, resolution=32).eval()
    genotypes = [_full_g(rng) for _ in range(4)] + [G_SPACE.sample(rng) for _ in range(4)]
    z = torch.randn(3, 12)
    with torch.no_grad():
        for g in genotypes:
            torch.testing.assert_close(net(z, g), _g_reference(net, g, z), msg=lambda m, g=g: f"{g}: {m}")
        # Every latent chunk reaches the image (each is added to its own cell's input).
        for i in range(3):
            z2 = z.clone()
            z2[:, 4 * i:4 * (i + 1)] += 1.0
            assert not torch.allclose(net(z2, genotypes[0]), net(z, genotypes[0]))


def _d_reference(net: DiscriminatorSupernet, genotype: Genotype, x: torch.Tensor) -> torch.Tensor:
    h = net.stem(x)
    for i in range(3):
        cell, g = net.cells[i], genotype.cells[i]

        def op(j, t, cell=cell, g=g):
            return 0 if g["normal"][j] == "none" else cell.normal[j][g["normal"][j]](t)

        n1 = op(0, h)
        n2 = op(1, h) + op(2, n1)
        n3 = op(3, n1) + op(4, h)
        h = cell.down[0][g["down"][0]](n2) + cell.down[1][g["down"][1]](n3) if net.downsample[i] else n2 + n3
    return F.linear(F.relu(h).sum(dim=(2, 3)), net.l5.weight)  # ReLU → sum-pool → SN linear, no bias


def test_discriminator_matches_the_spec_node_by_node():
    torch.manual_seed(0)
    rng = random.Random(1)
    for downsample in [(True, False, False), (True, True, False)]:
        net = DiscriminatorSupernet(df_dim=4, in_channels=3, downsample=downsample).eval()  # eval: SN u fixed
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            for _ in range(6):
                g = D_SPACE.sample(rng)
                out = net(x, g)
                assert out.shape == (2, 1)
                torch.testing.assert_close(out, _d_reference(net, g, x), msg=lambda m, g=g: f"{g}: {m}")


def test_every_discriminator_weight_is_spectrally_normalised():
    net = DiscriminatorSupernet(df_dim=4, in_channels=3)
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) > 50
    plain = [type(m).__name__ for m in layers if not parametrize.is_parametrized(m, "weight")]
    assert plain == [], f"{len(plain)} conv/linear layers without spectral norm"
    assert net.l5.bias is None
