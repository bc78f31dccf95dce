"""The darts op family: every op's output shape and parameter count by hand (C=4), drop path."""

import pytest
import torch
from torch import nn

from raynas.nn import darts_ops
from raynas.nn.darts_ops import PRIMITIVES, FactorizedReduce, ReLUConvBN, drop_path
from raynas.nn.ops import REGISTRY, build_op

C = 4
# Parameters by hand at C=4 (affine, non-affine). A BN has 2·C affine parameters (8), none when non-affine.
#   sep_conv_k: twice [depthwise C·k² + pointwise C·C (16) + BN]
#   dil_conv_k: once  [depthwise C·k² + pointwise 16 + BN]
#   skip_connect at stride 2 = FactorizedReduce: two 1×1 convs C → C/2 (2·8) + BN
#   conv_7x1_1x7: two C·C·7 convs (2·112) + BN
PARAMS = {
    "none": (0, 0, 0, 0),
    "max_pool_3x3": (0, 0, 0, 0),
    "avg_pool_3x3": (0, 0, 0, 0),
    "skip_connect": (0, 0, 16 + 8, 16),
    "sep_conv_3x3": (2 * (36 + 16 + 8), 2 * (36 + 16), 2 * (36 + 16 + 8), 2 * (36 + 16)),
    "sep_conv_5x5": (2 * (100 + 16 + 8), 2 * (100 + 16), 2 * (100 + 16 + 8), 2 * (100 + 16)),
    "sep_conv_7x7": (2 * (196 + 16 + 8), 2 * (196 + 16), 2 * (196 + 16 + 8), 2 * (196 + 16)),
    "dil_conv_3x3": (36 + 16 + 8, 36 + 16, 36 + 16 + 8, 36 + 16),
    "dil_conv_5x5": (100 + 16 + 8, 100 + 16, 100 + 16 + 8, 100 + 16),
    "conv_7x1_1x7": (224 + 8, 224, 224 + 8, 224),
}


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_primitives_order_and_registry():
    assert PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                          "dil_conv_3x3", "dil_conv_5x5")
    assert set(REGISTRY["darts"]) == set(PARAMS)
    assert set(REGISTRY) == {"normal", "up", "down", "darts"}
    # the GAN families are untouched: the normal sep conv is still one ReLU → dw → pw with biases, no BN
    gan_sep = build_op("normal", "sep_conv_3x3", C)
    assert _count(gan_sep) == 36 + 4 + 16 + 4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gan_sep.modules())


@pytest.mark.parametrize("name", list(PARAMS))
def test_op_shapes_and_parameter_counts(name):
    x = torch.randn(2, C, 8, 8)
    for k, (stride, affine) in enumerate(((1, True), (1, False), (2, True), (2, False))):
        op = build_op("darts", name, C, stride=stride, affine=affine)
        assert _count(op) == PARAMS[name][k], (name, stride, affine)
        assert op(x).shape == (2, C, 8 // stride, 8 // stride)
        for m in op.modules():
            if isinstance(m, nn.Conv2d):
                assert m.bias is None
            if isinstance(m, nn.BatchNorm2d):
                assert m.affine == affine


def test_op_structure_details():
    x = torch.randn(2, C, 8, 8)
    assert build_op("darts", "skip_connect", C)(x) is x
    assert isinstance(build_op("darts", "skip_connect", C, stride=2), FactorizedReduce)
    assert torch.count_nonzero(build_op("darts", "none", C, stride=2)(x)) == 0
    # count_include_pad=False: a constant map stays constant at the border
    ones = torch.ones(1, C, 6, 6)
    torch.testing.assert_close(build_op("darts", "avg_pool_3x3", C)(ones), ones)
    # sep conv: stride only in the first half; dil conv: depthwise, dilation 2, padding 2 (3x3) / 4 (5x5)
    sep = build_op("darts", "sep_conv_5x5", C, stride=2)
    convs = [m for m in sep.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1), (1, 1)]
    assert [c.groups for c in convs] == [C, 1, C, 1]
    assert sum(isinstance(m, nn.ReLU) for m in sep.modules()) == 2
    for name, pad in (("dil_conv_3x3", 2), ("dil_conv_5x5", 4)):
        dw = [m for m in build_op("darts", name, C).modules() if isinstance(m, nn.Conv2d)][0]
        assert (dw.dilation, dw.padding, dw.groups) == ((2, 2), (pad, pad), C)


def test_factorized_reduce_and_relu_conv_bn():
    fr = FactorizedReduce(6, 4)
    assert _count(fr) == 2 * 6 * 2 + 8
    x = torch.randn(2, 6, 8, 8)
    out = fr(x)
    assert out.shape == (2, 4, 4, 4)
    # the second half sees the input shifted by one pixel
    fr.eval()
    with torch.no_grad():
        direct = torch.cat([fr.conv_1(x.relu()), fr.conv_2(x.relu()[:, :, 1:, 1:])], 1)
        torch.testing.assert_close(fr(x), fr.bn(direct))
    rcb = ReLUConvBN(4, 6, 1, 1, 0)
    assert _count(rcb) == 24 + 12 and rcb(torch.randn(2, 4, 5, 5)).shape == (2, 6, 5, 5)
    with pytest.raises(Exception, match="even number of output channels"):
        FactorizedReduce(4, 3)


def test_drop_path_statistics_and_identity():
    x = torch.randn(4, 3, 2, 2)
    assert drop_path(x, 0.0) is x
    torch.manual_seed(0)
    ones = torch.ones(20000, 2, 1, 1)
    out = drop_path(ones, 0.3)
    assert torch.equal(ones, torch.ones_like(ones))  # not in place
    per_sample = out[:, 0, 0, 0]
    assert torch.equal(out[:, 0], out[:, 1])  # one mask value per sample
    dropped = (per_sample == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.02
    kept = per_sample[per_sample != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))
    assert abs(out.mean().item() - 1.0) < 0.03  # expectation preserved


def test_module_exports():
    assert darts_ops.DARTS_OPS is REGISTRY["darts"]
