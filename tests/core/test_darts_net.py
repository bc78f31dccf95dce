"""DARTS evaluation networks: exact parameter counts, plans, reductions, auxiliary head, drop path, summaries."""

import re

import pytest
import torch

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.darts_net import (
    AuxiliaryHeadCIFAR,
    Cell,
    CellNetwork,
    LayerSpec,
    NetworkCIFAR,
    NetworkImageNet,
    count_parameters,
    darts_plan,
    summarize_darts,
)
from raynas.nn.registry import build_network
from raynas.spaces.darts import CellGenotype
from raynas.spaces.genotype import Genotype

V2 = Genotype.load("darts-v2")


def test_exact_darts_v2_and_v1_counts():
    net = NetworkCIFAR(36, 10, 20, True, V2)
    assert count_parameters(net) == 3_349_342
    assert sum(p.numel() for p in net.parameters()) == 3_825_768
    assert count_parameters(NetworkCIFAR(36, 10, 20, False, V2)) == 3_349_342
    assert count_parameters(NetworkCIFAR(36, 10, 20, False, Genotype.load("darts-v1"))) == 3_169_414  # spec T-D5
    # DARTS-GAL's baselines: 5 cells, C=16, 1-channel input (0.13M) and 12 cells, C=16 on CIFAR-10 (0.369M)
    gal = build_network(V2, resolution=32, channels=1, width=16, layers=5, num_classes=10)
    assert count_parameters(gal) == 128_842
    assert count_parameters(build_network(V2, width=16, layers=12)) == 369_114


def test_forward_aux_and_positions():
    net = NetworkCIFAR(8, 10, 5, True, V2, in_channels=1)
    assert net.reduction_positions == (1, 3) and net.auxiliary_position == 3
    assert [c.reduction for c in net.cells] == [False, True, False, True, False]
    x = torch.randn(2, 1, 32, 32)
    logits, aux = net(x)
    assert logits.shape == (2, 10) and aux.shape == (2, 10)
    net.eval()
    logits, aux = net(x)
    assert logits.shape == (2, 10) and aux is None
    assert isinstance(net.auxiliary_head, AuxiliaryHeadCIFAR)
    # DARTS' default rule, and explicit positions (0-based)
    assert NetworkCIFAR(36, 10, 20, False, V2).reduction_positions == (6, 13)
    custom = NetworkCIFAR(8, 10, 5, True, V2, reduction_positions=(2, 1))
    assert custom.reduction_positions == (1, 2) and custom.auxiliary_position == 2
    assert [c.reduction for c in custom.cells] == [False, True, True, False, False]
    assert custom(torch.randn(2, 3, 32, 32))[0].shape == (2, 10)
    # channels: C doubles at each reduction; cell output = multiplier · C
    assert [c.preprocess1[1].out_channels for c in custom.cells] == [8, 16, 32, 32, 32]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"layers": 2}, "layers=2 is too small for DARTS' two reduction cells"),
    ({"layers": 5, "reduction_positions": (1, 5)}, "[5] not a cell index 0..4"),
    ({"layers": 5, "reduction_positions": (1, 1)}, "repeat a cell"),
    ({"layers": 5, "resolution": 30}, "input resolution 30: the reduction cell 3 gets a 15x15 map"),
    ({"layers": 5, "resolution": 64, "auxiliary": True}, "the auxiliary head after cell 3 gets a 16x16 map"),
])
def test_bad_sizes_are_clear_config_errors(kwargs, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        build_network(V2, **{"width": 8, **kwargs})


def test_wrong_genotype_type():
    with pytest.raises(GenotypeError, match="needs a darts genotype, got one for space 'eagan-g'"):
        NetworkCIFAR(8, 10, 5, False, Genotype.load("eagan-cifar10-G"))


def test_imagenet_network():
    net = NetworkImageNet(8, 7, 5, True, V2, auxiliary_position=0)
    assert net.reduction_positions == (1, 3) and net.feature_sizes(64) == [8, 4, 4, 2, 2]
    assert "BatchNorm2d" not in [type(m).__name__ for m in net.auxiliary_head.features][-2:]
    net.check_resolution(64)  # 8x8 at the aux cell: DARTS' ImageNet head (pool 5 s2, 2x2 conv) fits
    logits, aux = net(torch.randn(2, 3, 64, 64))
    assert logits.shape == aux.shape == (2, 7)
    with pytest.raises(ConfigError, match="ImageNet stem"):
        net.check_resolution(60)
    with pytest.raises(ConfigError, match="auxiliary head after cell 3 gets a 2x2 map"):
        NetworkImageNet(8, 7, 5, True, V2).check_resolution(64)
    # DARTS' mobile setting: 14 cells, C=48, reductions at 4 and 9 (224 → 28 after the stems → 7 at cell 9)
    full = NetworkImageNet(genotype=V2, auxiliary=True)
    assert count_parameters(full) == 4_718_752 and full.auxiliary_position == 9
    assert full.feature_sizes(224)[9] == 7


def test_plan_reuse_for_five_distinct_cells_and_pruned_cells():
    """SWD-NAS stacks five different cells; DARTS-GAL prunes nodes. Both are just plans."""
    cells = [CellGenotype(((op, 0), (op, 1), ("skip_connect", 2), (op, 1)), (2, 3))
             for op in ("sep_conv_3x3", "max_pool_3x3", "dil_conv_3x3", "avg_pool_3x3", "sep_conv_5x5")]
    plan = ([LayerSpec(cells[0], False)] * 2 + [LayerSpec(cells[1], True)] + [LayerSpec(cells[2], False)] * 2
            + [LayerSpec(cells[3], True)] + [LayerSpec(cells[4], False)] * 2)
    net = CellNetwork(plan, 4, 10, auxiliary=True)
    assert [c.genotype for c in net.cells] == [s.cell for s in plan]
    assert net.reduction_positions == (2, 5) and all(c.multiplier == 2 for c in net.cells)
    assert net(torch.randn(2, 3, 32, 32))[1].shape == (2, 10)

    pruned = darts_plan(V2, 5)
    pruned[3] = LayerSpec(V2.reduce.remove_nodes([1, 2]), True)  # 2 nodes left in the second reduction cell
    pruned[4] = LayerSpec(V2.normal.remove_nodes([0]), False)
    net = CellNetwork(pruned, 8, 10)
    assert net.cells[3].multiplier == 2 and net.cells[4].multiplier == 3
    assert net.cells[4].preprocess1[1].in_channels == 2 * 32  # reads the pruned cell's concat
    assert net(torch.randn(2, 3, 32, 32))[0].shape == (2, 10)
    assert count_parameters(net) < count_parameters(NetworkCIFAR(8, 10, 5, False, V2))


def test_cell_drop_path_skips_identity_ops():
    torch.manual_seed(0)
    identity_cell = CellGenotype((("skip_connect", 0), ("skip_connect", 1)), (2,))
    cell = Cell(identity_cell, 4, 4, 4, False, False).train()
    s0, s1 = torch.randn(8, 4, 4, 4), torch.randn(8, 4, 4, 4)
    assert torch.equal(cell(s0, s1, 0.9), cell(s0, s1, 0.0))  # identity ops are never dropped
    conv_cell = Cell(CellGenotype((("sep_conv_3x3", 0), ("skip_connect", 1)), (2,)), 4, 4, 4, False, False).train()
    kept = conv_cell(s0, s1, 0.0)
    dropped = conv_cell(s0, s1, 0.999)
    # the conv branch is dropped for (almost surely) every sample; the skip branch stays
    torch.testing.assert_close(dropped, conv_cell.preprocess1(s1))
    assert not torch.equal(kept, dropped)
    conv_cell.eval()
    assert torch.equal(conv_cell(s0, s1, 0.999), conv_cell(s0, s1, 0.0))  # no drop path in eval mode


def test_network_drop_path_prob_attribute():
    net = NetworkCIFAR(4, 3, 3, False, V2, drop_path_prob=0.0)
    x = torch.randn(4, 3, 8, 8)
    torch.manual_seed(1)
    a = net(x)[0]
    net.drop_path_prob = 0.5
    assert not torch.equal(a, net(x)[0])


def test_summarize_darts(tmp_path):
    s = summarize_darts(V2, dataset_shape="fashion-mnist", layers=5, channels=16)
    assert s["params"] == 128_842 and s["in_channels"] == 1 and s["resolution"] == 32
    assert s["params_with_aux"] > s["params"] and s["flops"] > 0
    assert [c["reduction"] for c in s["cells"]] == [False, True, False, True, False]
    assert [c["size"] for c in s["cells"]] == [32, 16, 16, 8, 8]
    assert s["cells"][1]["ops"] == V2.reduce.to_pairs() and s["cells"][1]["out_channels"] == 128
    assert s["other_params"] + sum(c["params"] for c in s["cells"]) == s["params"]
    small = summarize_darts(V2, dataset_shape=(28, 1, 10), layers=5, channels=8)
    assert small["params_with_aux"] is None  # DARTS' aux head needs 8x8 after the last reduction; 28 gives 7x7
    with pytest.raises(ConfigError, match="unknown dataset 'svhn'"):
        summarize_darts(V2, dataset_shape="svhn")


def test_draw_darts_genotype(tmp_path):
    import matplotlib.image as mpimg

    from raynas.spaces.darts import DartsGenotype
    from raynas.spaces.draw_darts import draw_darts_genotype

    nasnet_like = DartsGenotype(V2.normal, CellGenotype(
        (("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0), ("avg_pool_3x3", 1),
         ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2), ("sep_conv_3x3", 2), ("none", 1)), (4, 5, 6)))
    for name, g in (("v2", V2), ("nasnet", nasnet_like)):
        path = draw_darts_genotype(g, tmp_path / "sub" / f"{name}.png", title=name)
        image = mpimg.imread(path)
        assert image.shape[0] > 400 and image.shape[1] > 400
        rgb = image[..., :3]
        # nothing touches the border (labels and nodes are inside the saved area) and something is drawn
        border = [rgb[:3], rgb[-3:], rgb[:, :3], rgb[:, -3:]]
        assert all(b.min() > 0.98 for b in border), name
        assert rgb.min() < 0.3
    with pytest.raises(GenotypeError, match="needs a darts genotype"):
        draw_darts_genotype(Genotype.load("eagan-cifar10-G"), tmp_path / "x.png")


def test_generic_summary_refuses_darts_genotypes_cleanly():
    from raynas.nn.profile import summarize

    with pytest.raises(GenotypeError, match="summarize_darts"):
        summarize(V2, resolution=32, channels=3)
