"""Task classify: the cross-entropy step, evaluation and top-k accuracy."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from raynas.classify.metrics import accuracy, topk_correct
from raynas.classify.step import classify_train_step, evaluate_classifier, split_output
from raynas.errors import TrainingDiverged


class TwoHeads(nn.Module):
    """Logits and auxiliary logits like a DARTS network (aux None in eval mode or when off)."""

    def __init__(self, aux: bool = True, plain: bool = False) -> None:
        super().__init__()
        self.body = nn.Linear(6, 5)
        self.head = nn.Linear(5, 4)
        self.aux_head = nn.Linear(5, 4) if aux else None
        self.plain = plain

    def forward(self, x):
        h = torch.tanh(self.body(x.flatten(1)))
        logits = self.head(h)
        if self.plain:
            return logits
        return logits, (self.aux_head(h) if self.training and self.aux_head is not None else None)


def _batch(n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g) * 3, torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize(("aux_weight", "label_smoothing"), [(0.4, 0.0), (0.0, 0.0), (0.4, 0.1)])
def test_loss_is_ce_plus_weighted_aux_ce(aux_weight, label_smoothing):
    torch.manual_seed(0)
    model = TwoHeads()
    x, y = _batch()
    ref = copy.deepcopy(model)
    logits, aux = ref(x)
    expect = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    expect = expect + aux_weight * F.cross_entropy(aux, y, label_smoothing=label_smoothing)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = classify_train_step(model, opt, x, y, aux_weight=aux_weight, label_smoothing=label_smoothing,
                              grad_clip=0.0)
    assert out["loss"] == pytest.approx(expect.item(), rel=1e-6)
    assert out["correct"] == int((logits.argmax(1) == y).sum()) and out["batch_size"] == 8
    assert math.isnan(out["grad_norm"])
    expect.backward()                                          # the step applied exactly this gradient
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(p, q - 0.1 * q.grad, atol=1e-7)


def test_plain_logits_and_missing_aux():
    x, y = _batch()
    for model in (TwoHeads(plain=True), TwoHeads(aux=False)):
        logits = split_output(model(x))[0]
        out = classify_train_step(model, torch.optim.SGD(model.parameters(), lr=0.0), x, y, aux_weight=0.4)
        assert out["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_grad_clip_bounds_the_global_norm():
    torch.manual_seed(1)
    x, y = _batch(seed=1)
    x = x * 50                                                 # large inputs: a gradient norm far above 0.5
    model = TwoHeads()
    free = copy.deepcopy(model)
    out = classify_train_step(model, torch.optim.SGD(model.parameters(), lr=0.01), x, y, grad_clip=0.5)
    norm = torch.norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
    assert out["grad_norm"] > 0.5 and norm.item() == pytest.approx(0.5, rel=1e-5)
    raw = classify_train_step(free, torch.optim.SGD(free.parameters(), lr=0.01), x, y, grad_clip=0.0)
    free_norm = torch.norm(torch.stack([p.grad.norm() for p in free.parameters() if p.grad is not None]))
    assert free_norm.item() == pytest.approx(out["grad_norm"], rel=1e-5) and raw["loss"] == out["loss"]
    for p, q in zip(model.parameters(), free.parameters()):  # same direction, shorter step
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad * 0.5 / free_norm, atol=1e-7)
    assert model.aux_head.weight.grad is None                  # aux_weight 0: the aux head gets no gradient


def test_non_finite_loss_raises_before_stepping():
    model = TwoHeads()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = copy.deepcopy(model.state_dict())
    x, y = _batch()
    x[3, 2] = float("nan")
    with pytest.raises(TrainingDiverged, match="nan"):
        classify_train_step(model, opt, x, y)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert not opt.state and all(p.grad is None for p in model.parameters())
    x[3, 2] = 0.0
    with torch.no_grad():
        model.head.bias[0] = float("inf")                     # infinite logits: an infinite / NaN loss
    with pytest.raises(TrainingDiverged, match=r"^the classification loss became (nan|inf|-inf); the step was not "
                                                 r"taken\."):
        classify_train_step(model, opt, x, y)
    assert not opt.state


def test_topk_correct_and_accuracy_by_hand():
    logits = torch.tensor([[0.1, 0.5, 0.2, 0.0, 0.3, 0.9],    # order 5,1,4,2,0,3
                           [0.9, 0.1, 0.2, 0.3, 0.4, 0.5],    # order 0,5,4,3,2,1
                           [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]])   # order 5,4,3,2,1,0
    y = torch.tensor([1, 1, 0])
    assert topk_correct(logits, y, (1, 2, 5, 6)).tolist() == [0, 1, 1, 3]
    assert accuracy(logits, torch.tensor([5, 0, 1]), (1, 5)) == [2 / 3, 1.0]
    assert topk_correct(logits[:, :3], y, (1, 5)).tolist() == [1, 3]  # k above the class count: all


def test_evaluate_classifier_by_hand_and_mode_restored():
    torch.manual_seed(2)
    model = TwoHeads()
    xs, ys = zip(*(_batch(n, seed=s) for s, n in ((3, 8), (4, 5))))
    model.train()
    res = evaluate_classifier(model, list(zip(xs, ys)))
    assert model.training
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x)[0] for x in xs])
    y = torch.cat(ys)
    assert res["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert res["top1"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert res["top5"] == 1.0                                   # 4 classes: always within the top 5
    with pytest.raises(ValueError, match="no batches"):
        evaluate_classifier(model, [])
