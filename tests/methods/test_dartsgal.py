"""DARTS-GAL science (no Ray): the darts-gal genotype, masked and pruned networks, parameter counts, the
proximal mask step, GAL's losses, the pruning loop, and the checks that turn bad input into one message."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from conftest import assert_user_error, run_cli
from figures import capture_figures, is_png

from raynas.checkpoints import save_checkpoint
from raynas.config import load_config
from raynas.errors import CheckpointError, ConfigError, GenotypeError
from raynas.methods.dartsgal.gal import Discriminator, MaskFista, d_loss, data_loss, g_adv_loss
from raynas.methods.dartsgal.genotype import DartsGalGenotype, SourceCells, close_kept, load_source
from raynas.methods.dartsgal.network import GalNetwork, PassThrough, transfer_weights
from raynas.methods.dartsgal.pipeline import AllPruned, DartsGalPipeline, check_pipeline, load_teacher
from raynas.methods.dartsgal.report import unreduced_warning
from raynas.nn.darts_net import build_darts_network, count_parameters
from raynas.spaces import Genotype
from raynas.spaces.darts import DartsGenotype, darts_genotype

V2 = load_source("darts-v2")
TINY = ["dartsgal.layers=3", "dartsgal.channels=4", "dartsgal.baseline_epochs=1", "dartsgal.prune_epochs=2",
        "dartsgal.retrain_epochs=1", "dartsgal.prune_batch_size=16", "dartsgal.n_critic=1", "dartsgal.mask_step=1",
        "dartsgal.lr_decay_step=1", "dartsgal.lam=0.01", "train.batch_size=16", "train.eval_batch_size=64",
        "data.limit=48", "data.test_limit=32"]


def tiny_cfg(*extra):
    return load_config("quickstart-classify", [*TINY, *extra], method="darts-gal")


# ============================================================================ networks and counts
def test_baseline_counts_and_darts_compatibility():
    """The unpruned network is DARTS' evaluation network: the paper's 0.13M / 0.369M baselines, the same parameter
    names, and a darts checkpoint computes the same function in it."""
    g5 = DartsGalGenotype.full(V2, 5, 16, 1)
    assert g5.reduction_positions == (1, 3)
    assert count_parameters(GalNetwork(g5, 10)) == 128_842
    assert count_parameters(GalNetwork(DartsGalGenotype.full(V2, 12, 16, 3), 10)) == 369_114
    torch.manual_seed(0)
    ref = build_darts_network(DartsGenotype.load("darts-v2"), channels=1, width=4, layers=3, num_classes=10)
    ours = GalNetwork(DartsGalGenotype.full(V2, 3, 4, 1), 10)
    ours.load_state_dict(ref.state_dict())  # strict: the same names and shapes
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(ours.eval()(x)[0], ref.eval()(x)[0])


def test_mask_init_constant_or_gal_normal():
    g = DartsGalGenotype.full(V2, 3, 4, 1)
    assert all((m == 1.0).all() for m in GalNetwork(g, 10, mask_init="1.0").masks())
    torch.manual_seed(0)
    normal = torch.cat(GalNetwork(g, 10, mask_init="normal").masks()).detach()
    assert normal.shape == (12,) and (normal < 0).any() and (normal > 0).any()  # GAL's N(0,1): some start negative
    assert GalNetwork(g, 10).masks() == []


def _randomise_bn(net: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.3)


def test_zero_mask_removes_node_and_pruned_net_equals_masked_net():
    torch.manual_seed(0)
    full = DartsGalGenotype.full(V2, 3, 4, 1, reduction_positions=[1])  # normal, reduce, normal
    masked = GalNetwork(full, 10, mask_init=1.0)
    _randomise_bn(masked)
    masks = [[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]]
    with torch.no_grad():
        for cell, m in zip(masked.cells, masks):
            cell.mask.copy_(torch.tensor(m))
    pruned_g = full.with_masks(masks)
    assert pruned_g.kept == ((0, 2, 3), (1, 2), (1, 2, 3))
    # an op reading a pruned node gets 0; DARTS' conv ops end in BN, so for the masked net to add nothing there
    # too, that BN must map 0 to 0 (the pruned net drops the edge; the retrain starts from scratch anyway)
    cell2 = masked.cells[2]
    assert cell2.genotype.ops[7] == ("dil_conv_3x3", 2)  # node 3 reads pruned node 0
    bn = cell2.ops[7][-1]
    bn.running_mean.zero_()
    bn.bias.data.zero_()
    pruned = transfer_weights(masked, GalNetwork(pruned_g, 10))
    assert count_parameters(pruned) < count_parameters(masked) - sum(m.numel() for m in masked.masks())
    x = torch.randn(3, 1, 32, 32)
    masked.eval()
    pruned.eval()
    with torch.no_grad():
        torch.testing.assert_close(pruned(x)[0], masked(x)[0], rtol=1e-5, atol=1e-5)
        # and the zero mask really removed something: with that node back at 1 the output differs
        masked.cells[0].mask[1] = 1.0
        assert (masked(x)[0] - pruned(x)[0]).abs().max() > 1e-3


def _hand_genotype() -> SourceCells:
    g = darts_genotype(normal=[("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 2), ("max_pool_3x3", 0)],
                       normal_concat=[2, 3],
                       reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("avg_pool_3x3", 1)],
                       reduce_concat=[2, 3])
    return SourceCells("darts", (g.normal, g.reduce))


def test_parameter_counts_before_and_after_pruning_by_hand():
    """3 cells (normal, reduce, normal), C=2, 1 image channel, 3 classes, two nodes per cell.

    Unpruned: stem conv 1->6 3x3 (54) + BN (12) = 66. Cell 0 (C=2, inputs 6, 6): two ReLUConvBN 6->2 (12+4 each) = 32,
    sep_conv_3x3 2x(dw 18 + pw 4 + BN 4) = 52, dil_conv_3x3 18+4+4 = 26, skip/pool 0: 110. Cell 1 (reduce, C=4,
    inputs 6, 4): ReLUConvBN 6->4 (24+8) + 4->4 (16+8) = 56. Cell 2 (C=4, inputs 4 (factorized reduce: two 4->2
    convs 8+8, BN 8 = 24), 8 (ReLUConvBN 32+8)): sep_conv 2x(36+16+8) = 120, dil_conv 36+16+8 = 60: 244.
    Classifier 8x3+3 = 27. Total 503.
    """
    source = _hand_genotype()
    full = DartsGalGenotype.full(source, 3, 2, 1, reduction_positions=[1])
    nets = GalNetwork(full, 3)
    assert [count_parameters(c) for c in nets.cells] == [110, 56, 244]
    assert count_parameters(nets) == 503
    # Prune cell 0's node 0 (node 1 keeps its max_pool edge; its dil_conv edge read node 0 and goes) and cell 2's
    # node 1: cell 0 = preprocessing 32, outputs 2 channels; cell 1 = ReLUConvBN 6->4 (32) + 2->4 (8+8) = 48;
    # cell 2 = factorized reduce 2->4 (4+4+8) + ReLUConvBN 8->4 (40) + sep_conv 120 = 176; classifier 4x3+3 = 15.
    pruned = full.with_masks([[0.0, 0.7], [0.5, 0.5], [0.9, 0.0]])
    net = GalNetwork(pruned, 3)
    assert pruned.pruned_cells()[0].ops == (("none", 0), ("max_pool_3x3", 0))
    assert [count_parameters(c) for c in net.cells] == [32, 48, 176]
    assert count_parameters(net) == 66 + 32 + 48 + 176 + 15
    # A cell with no kept node passes its input through: cell 2 then reads cell 0's output twice (no reduction
    # happened, so both preprocessings are ReLUConvBN 2->4: 16 each) and the resolution stays 32.
    dead = full.with_masks([[0.0, 0.7], [0.0, 0.0], [0.9, 0.0]])
    net = GalNetwork(dead, 3)
    assert isinstance(net.cells[1], PassThrough)
    assert [count_parameters(c) for c in net.cells] == [32, 0, 16 + 16 + 120]
    assert count_parameters(net) == 66 + 32 + 152 + 15
    assert net.feature_sizes(32) == [32, 32, 32]
    assert net(torch.randn(2, 1, 32, 32))[0].shape == (2, 3)


def test_an_emptied_reduction_cell_keeps_the_resolution_and_costs_more_flops():
    """Seen on the real Fashion-MNIST (λ=0.2, benchmarks/RESULTS.md): when only the last cell keeps nodes, the
    empty reduction cells pass their input through unreduced, so that cell runs on 32x32 maps instead of 8x8. The
    network has fewer parameters but more FLOPs than the unpruned one; the run reports both and warns."""
    pipe = DartsGalPipeline(tiny_cfg("dartsgal.layers=5", "dartsgal.channels=16"), torch.device("cpu"))
    full = pipe.genotype
    assert full.reduction_positions == (1, 3) and full.unreduced_cells() == []
    only_last = full.with_masks([[0] * 4] * 4 + [[1] * 4])
    assert only_last.unreduced_cells() == [1, 3]
    assert GalNetwork(only_last, 10).feature_sizes(32) == [32] * 5
    keeps_reductions = full.with_masks([[0] * 4, [1, 0, 0, 0], [0, 0, 1, 1], [0, 1, 0, 0], [1] * 4])
    assert keeps_reductions.unreduced_cells() == []
    assert GalNetwork(keeps_reductions, 10).feature_sizes(32) == [32, 16, 16, 8, 8]
    f_full, f_last, f_keep = pipe.flops(), pipe.flops(only_last), pipe.flops(keeps_reductions)
    assert count_parameters(GalNetwork(only_last, 10)) < count_parameters(GalNetwork(full, 10))
    assert f_keep < f_full < f_last
    warning = unreduced_warning(only_last.unreduced_cells(), f_last, f_full)
    assert warning.startswith("warning: reduction cell(s) [1, 3] lost every node") and "dartsgal.lam" in warning
    assert f"{f_last:,} FLOPs/image against the baseline's {f_full:,}" in warning
    assert unreduced_warning(keeps_reductions.unreduced_cells(), f_keep, f_full) is None


def test_pruning_closes_cells():
    cell = V2.cells[0]  # darts-v2 normal: node 3 reads (skip 0, dil_conv node 0)
    assert close_kept(cell, [1, 3]) == (1, 3)  # node 3 keeps its skip edge
    reduce = V2.cells[1]  # node 1 = (skip node 0, max_pool 1); node 3 = (skip node 0, max_pool 1)
    assert close_kept(reduce, [1, 3]) == (1, 3)
    only_inner = SourceCells("darts", (darts_genotype(
        normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 2), ("skip_connect", 2)],
        normal_concat=[3], reduce=list(reduce.ops), reduce_concat=[2, 3, 4, 5]).normal,) * 2)
    c = only_inner.cells[0]
    assert close_kept(c, [1]) == ()  # node 1 reads only pruned node 0
    assert close_kept(c, [0]) == ()  # node 0 alone reaches no concat state
    g = DartsGalGenotype.full(only_inner, 3, 4, 1)
    with pytest.raises(GenotypeError, match="would compute nothing"):
        DartsGalGenotype(g.source, 3, 4, 1, g.reduction_positions, ((1,), (0, 1), (0, 1))).validate()


def test_pruned_cells_are_drawn_with_their_original_node_ids(tmp_path, monkeypatch):
    import raynas.methods.dartsgal.draw as draw

    figures = []
    monkeypatch.setattr(draw, "save_png", lambda fig, path: figures.append(fig) or Path(path))
    g = DartsGalGenotype.full(V2, 3, 4, 1).with_masks([[0, 1, 0, 1], [0] * 4, [1] * 4])
    draw.draw_dartsgal_genotype(g, tmp_path / "g.png")
    nodes = [[t.get_text() for t in ax.texts if t.get_zorder() == 5 and t.get_text().isdigit()]
             for ax in figures[0].axes]
    assert g.kept[0] == (1, 3) and nodes == [["1", "3"], [], ["0", "1", "2", "3"]]


def test_genotype_json_and_validation(tmp_path):
    g = DartsGalGenotype.full(V2, 5, 16, 1).with_masks([[1, 0, 1, 1], [0] * 4, [1] * 4, [1, 1, 0, 1], [0, 1, 0, 0]])
    path = tmp_path / "pruned.json"
    g.save(path)
    back = Genotype.load(path)
    assert isinstance(back, DartsGalGenotype) and back == g and back.kept[1] == ()
    bad = json.loads(path.read_text())
    bad["reduction_positions"] = [1, 7]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(GenotypeError, match=r"reduction_positions \[1, 7\]: \[7\] out of range"):
        Genotype.load(tmp_path / "bad.json")
    bad["reduction_positions"], bad["kept"][0] = [1, 3], [0, 9]
    (tmp_path / "bad2.json").write_text(json.dumps(bad))
    with pytest.raises(GenotypeError, match="cell 0 keeps nodes"):
        Genotype.load(tmp_path / "bad2.json")


def test_swd_nas_source_stacks_five_cells(tmp_path):
    v2 = DartsGenotype.load("darts-v2")
    cells = [{"type": t, "ops": (v2.reduce if t == "reduce" else v2.normal).to_pairs(), "concat": [2, 3, 4, 5]}
             for t in ("normal", "reduce", "normal", "reduce", "normal")]
    for cell, op in zip(cells[2:], ("sep_conv_5x5", "avg_pool_3x3", "dil_conv_5x5")):
        cell["ops"][0] = [op, 0]  # five distinct cells
    path = tmp_path / "swd.json"
    path.write_text(json.dumps({"space": "swd-nas", "cells": cells}))
    source = load_source(path)
    layer = source.layer_cells(20, (6, 13))
    assert [layer.index(c) for c in source.cells] == [0, 6, 7, 13, 14]  # SWD-NAS: 6 x c0, c1, 6 x c2, c3, 6 x c4
    assert layer[5] == source.cells[0] and layer[12] == source.cells[2] and layer[19].ops[0] == ("dil_conv_5x5", 0)
    g = DartsGalGenotype.full(source, 5, 4, 1)
    assert GalNetwork(g, 10)(torch.randn(1, 1, 32, 32))[0].shape == (1, 10)
    with pytest.raises(GenotypeError, match="exactly two reduction cells"):
        DartsGalGenotype.full(source, 5, 4, 1, reduction_positions=[2])
    cells[1]["type"] = "normal"
    path.write_text(json.dumps({"space": "swd-nas", "cells": cells}))
    with pytest.raises(GenotypeError, match="swd-nas cell 1 must be a 'reduce' cell"):
        load_source(path)


# ============================================================================ GAL pieces
def test_proximal_step_by_hand():
    """x ← max(0, sign(z)·max(|z| − lr·λ, 0)), z = y − lr·grad, y = x + ((t_k − 1)/t_{k+1})(x − x_prev)."""
    p = torch.nn.Parameter(torch.tensor([0.5, 0.02, 1.0, 0.3, 0.1]))
    fista = MaskFista([p], lr=0.1, lam=0.5)  # soft threshold 0.05
    p.grad = torch.tensor([0.2, -0.1, 0.0, 1.0, 3.0])
    assert fista.step()  # the first step has no momentum (t = 1)
    # z = [0.48, 0.03, 1.0, 0.2, -0.2] → shrink → [0.43, 0, 0.95, 0.15, -0.15] → projection: the last is 0
    torch.testing.assert_close(p.data, torch.tensor([0.43, 0.0, 0.95, 0.15, 0.0]))
    p.grad = torch.tensor([0.1, -0.6, 0.0, 0.0, 0.0])
    assert not fista.step()  # t: 1 → 1.618..., coefficient (1 − 1)/1.618 = 0
    torch.testing.assert_close(p.data, torch.tensor([0.37, 0.01, 0.90, 0.10, 0.0]))
    p.grad = torch.zeros(5)
    fista.step()  # t: 1.618 → 2.19353, coefficient 0.281754; y = x2 + 0.281754·(x2 − x1)
    y = torch.tensor([0.37 - 0.06 * 0.281754, 0.01 + 0.01 * 0.281754, 0.90 - 0.05 * 0.281754,
                      0.10 - 0.05 * 0.281754, 0.0])
    torch.testing.assert_close(p.data, torch.tensor([y[0] - 0.05, 0.0, y[2] - 0.05, y[3] - 0.05, 0.0]))
    x3 = p.data.clone()
    # a learning-rate decay restarts the momentum (GAL's restart never fires, T-G4): plain step, new threshold
    fista.lr = 0.01
    assert fista.step() and fista.restarts == 2
    torch.testing.assert_close(p.data, (x3 - 0.005).clamp_min(0.0))
    assert abs(fista.t - 1.0) < 1e-12


def test_discriminator_and_losses():
    D = Discriminator(10)
    linears = [m for m in D.body if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 128), (128, 256), (256, 128), (128, 1)]
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in D.body) == 3  # nonlinear, unlike GAL's (T-G1)
    p = torch.softmax(torch.randn(6, 10), 1)
    assert D(p).shape == (6,)
    # eq. 6: 1/(2n) Σ ‖f_b − G‖²: rows [1, 0] vs [0.5, 0.5] and equal rows → (0.5 + 0) / (2·2)
    t = torch.tensor([[1.0, 0.0], [0.3, 0.7]])
    s = torch.tensor([[0.5, 0.5], [0.3, 0.7]])
    assert data_loss(t, s).item() == pytest.approx(0.125)
    q = torch.softmax(torch.randn(6, 10), 1)
    assert d_loss(D, p, q, "wgan", gp_weight=0.0).item() == pytest.approx((D(q).mean() - D(p).mean()).item())
    assert g_adv_loss(D, q, "wgan").item() == pytest.approx(-D(q).mean().item())
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    one, zero = torch.ones(6), torch.zeros(6)
    want = bce(D(p), one) + bce(D(q), zero) + 0.5 * bce(D(q), one)
    assert d_loss(D, p, q, "bce", d_reg=0.5).item() == pytest.approx(want.item())
    assert d_loss(D, p, q, "wgan", gp_weight=10.0).item() > d_loss(D, p, q, "wgan", gp_weight=0.0).item()


@pytest.fixture(scope="module")
def tiny_pipeline():
    torch.manual_seed(0)
    cfg = tiny_cfg()
    pipe = DartsGalPipeline(cfg, torch.device("cpu"))
    trainer = pipe.baseline_trainer()
    trainer.train_epoch()
    return cfg, pipe, trainer.model.state_dict()


def test_pruner_steps_masks_only_by_fista_and_restarts_on_decay(tiny_pipeline, monkeypatch):
    cfg, pipe, teacher = tiny_pipeline
    pruner = pipe.pruner(teacher)
    masks = {id(m) for m in pruner.student.masks()}
    # λ‖s‖₁ is not in any loss and the masks are in no SGD optimiser: the proximal step is the only update
    assert masks and not masks & {id(p) for g in pruner.opt_g.param_groups for p in g["params"]}
    assert pruner.teacher.training  # teacher_bn=batch: the teacher normalises like the student (GAL's code)
    one = pruner.train_epoch()
    import raynas.methods.dartsgal.gal as gal

    d_values, data_by_hand = [], []  # every batch's D loss, and its data loss (Eq. 6) by hand from its inputs
    real_d_loss, real_data_loss = gal.d_loss, gal.data_loss

    def recorded_d_loss(*args, **kwargs):
        loss = real_d_loss(*args, **kwargs)
        d_values.append(loss.item())
        return loss

    def recorded_data_loss(teacher, student):
        diff = teacher.detach().double() - student.detach().double()
        data_by_hand.append(float((diff ** 2).sum() / (2 * len(diff))))
        return real_data_loss(teacher, student)

    monkeypatch.setattr(gal, "d_loss", recorded_d_loss)
    monkeypatch.setattr(gal, "data_loss", recorded_data_loss)
    two = pruner.train_epoch()
    monkeypatch.undo()
    batches = 3  # 48 images / 16
    assert one["mask_steps"] == two["mask_steps"] == batches and one["g_steps"] == batches
    assert one["mask_restarts"] == 1 and two["mask_restarts"] == 1  # first step; then the decay after epoch 1
    assert two["mask_lr"] == pytest.approx(cfg.dartsgal.mask_lr * 0.1)
    # the epoch's losses are the means over its batches (one G step per batch with n_critic=1)
    assert len(d_values) == len(data_by_hand) == batches
    assert two["d_loss"] == pytest.approx(sum(d_values) / batches, rel=1e-6)
    assert two["data_loss"] == pytest.approx(sum(data_by_hand) / batches, rel=1e-5)
    # resume: a pruner restored from the state after epoch 1 repeats epoch 2 exactly
    again = pipe.pruner(teacher)
    again.train_epoch()
    state = copy.deepcopy(again.state_dict())  # a checkpoint is a copy; the live state dict is not
    expected = again.train_epoch()
    third = pipe.pruner(teacher)
    third.load_state_dict(state)
    assert third.train_epoch() == pytest.approx(expected, rel=1e-5)
    for a, b in zip(third.student.masks(), again.student.masks()):
        torch.testing.assert_close(a, b)


def test_all_masks_dying_names_lambda(tiny_pipeline):
    _, pipe, _ = tiny_pipeline
    with pytest.raises(AllPruned, match=r"dartsgal.lam=0.01; lower dartsgal.lam \(e.g. to 0.001\)"):
        pipe.prune([[0.0] * 4] * 3)
    assert pipe.prune([[0.0] * 4, [0.0] * 4, [0.0, 0.0, 0.3, 0.0]]).kept_nodes == 1


def test_teacher_checkpoint_must_match_the_genotype(tiny_pipeline, tmp_path, capsys):
    cfg, pipe, teacher = tiny_pipeline
    good = tmp_path / "good" / "state.pt"
    good.parent.mkdir()
    save_checkpoint(good, {"model": teacher})
    assert load_teacher(str(good.parent), pipe.genotype, 10).keys() == teacher.keys()
    run_state = tmp_path / "gal-run" / "tune" / "trial" / "checkpoint_000009" / "state.pt"  # a darts-gal run's
    run_state.parent.mkdir(parents=True)
    save_checkpoint(run_state, {"phase": "done", "teacher": teacher, "baseline": {}})
    assert load_teacher(str(tmp_path / "gal-run"), pipe.genotype, 10).keys() == teacher.keys()
    other = tmp_path / "other.pt"
    save_checkpoint(other, {"model": GalNetwork(DartsGalGenotype.full(V2, 3, 8, 1), 10).state_dict()})
    with pytest.raises(CheckpointError, match=r"does not match the genotype \(darts cells, 3 cells, C=4"):
        load_teacher(str(other), pipe.genotype, 10)
    code, _, err = run_cli(capsys, "search", "darts-gal", "--preset", "quickstart-classify", "--set",
                           f"dartsgal.teacher={other}", "--set", f"run.output_dir={tmp_path}")
    assert_user_error(code, err, "does not match the genotype", "other shapes")
    assert not list(tmp_path.glob("quickstart-classify-*"))  # no run directory for a run that cannot start


def test_bad_settings_are_one_message(tmp_path, capsys):
    base = ["search", "darts-gal", "--preset", "quickstart-classify", "--set", f"run.output_dir={tmp_path}"]
    code, _, err = run_cli(capsys, *base, "--set", "dartsgal.lam=-0.1")
    assert_user_error(code, err, "dartsgal.lam", "below the minimum 0")
    code, _, err = run_cli(capsys, *base, "--set", "dartsgal.reduction_positions=[1,7]")
    assert_user_error(code, err, "dartsgal.reduction_positions", "[7] out of range", "0..4")
    code, _, err = run_cli(capsys, *base, "--set", "dartsgal.mask_init=gaussian")
    assert_user_error(code, err, "dartsgal.mask_init", "'normal'")
    code, _, err = run_cli(capsys, *base, "--from-run", str(tmp_path))
    assert_user_error(code, err, "best.json does not exist")
    g = DartsGalGenotype.full(V2, 5, 8, 1).to_dict()
    g["reduction_positions"] = [1, 5]
    (tmp_path / "bad.json").write_text(json.dumps(g))
    for argv in (("arch", "show", str(tmp_path / "bad.json")),
                 ("retrain", str(tmp_path / "bad.json"), "--preset", "quickstart-classify")):
        code, _, err = run_cli(capsys, *argv)
        assert_user_error(code, err, "reduction_positions [1, 5]: [5] out of range")
    with pytest.raises(ConfigError, match="fixes its network: C"):
        from raynas.nn.registry import build_network

        build_network(DartsGalGenotype.full(V2, 5, 8, 1), channels=1, width=16, layers=5)


def test_from_run_and_arch_show(tmp_path, capsys, monkeypatch):
    run = tmp_path / "search"
    run.mkdir()
    DartsGenotype.load("darts-v1").save(run / "best.json")
    cfg = tiny_cfg(f"dartsgal.from_run={run}")
    check_pipeline(cfg)
    assert DartsGalPipeline(cfg).source == load_source("darts-v1")
    pruned = DartsGalGenotype.full(V2, 5, 16, 1).with_masks([[1, 0, 1, 1], [0] * 4, [1] * 4, [1, 1, 0, 1],
                                                            [0, 1, 0, 0]])
    pruned.save(tmp_path / "pruned.json")
    png = tmp_path / "pruned.png"
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "arch", "show", str(tmp_path / "pruned.json"), "--json", "--dataset",
                             "fashion-mnist", "--png", str(png))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["params"] == count_parameters(GalNetwork(pruned, 10)) == 75_594
    assert summary["unpruned_params"] == 128_842 and summary["kept_nodes"] == 11
    assert summary["cells"][1]["pass_through"] and is_png(png)
    # the diagram: a panel per cell naming the nodes it kept (the emptied cell 1 says it passes its input through)
    fig = figures[png.resolve()]
    assert fig.suptitle == "darts-gal: 11 of 20 nodes kept (darts cells, C=16)"
    assert [ax.title for ax in fig.axes] == [
        "cell 0 (normal): keeps [0, 2, 3], pruned [1]  masks 1.00 0.00 1.00 1.00",
        "cell 1 (reduction): keeps no node, pruned [0, 1, 2, 3]  masks 0.00 0.00 0.00 0.00",
        "cell 2 (normal): keeps [0, 1, 2, 3]  masks 1.00 1.00 1.00 1.00",
        "cell 3 (reduction): keeps [0, 1, 3], pruned [2]  masks 1.00 1.00 0.00 1.00",
        "cell 4 (normal): keeps [1], pruned [0, 2, 3]  masks 0.00 1.00 0.00 0.00"]
    assert fig.axes[1].text_strings() == ["no node kept: the cell passes its input $c_{k-1}$ through"]
