"""The one cross-entropy training step, and evaluation, shared by every classifier method.

DARTS' networks return ``(logits, logits_aux)`` (``logits_aux`` is None outside training or without
an auxiliary head); plain models return ``logits``. Both are accepted everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from raynas.device import Precision, at_least_float32
from raynas.distributed import Replicas
from raynas.errors import TrainingDiverged

from .metrics import topk_correct


def split_output(out: torch.Tensor | tuple | list) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``logits`` or ``(logits, logits_aux)`` -> ``(logits, logits_aux or None)``."""
    if isinstance(out, (tuple, list)):
        if not out:
            raise ValueError("the model returned an empty tuple; expected logits or (logits, logits_aux)")
        return out[0], (out[1] if len(out) > 1 else None)
    return out, None


def _cpu_precision(precision: Precision | None, x: torch.Tensor) -> Precision:
    return precision if precision is not None else Precision(device=x.device, amp=False, channels_last=False)


def classifier_logits(model: nn.Module, x: torch.Tensor, precision: Precision | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logits, logits_aux or None)`` of a batch under the precision's autocast and memory format."""
    p = _cpu_precision(precision, x)
    with p.autocast():
        return split_output(model(p.images(x)))


def classify_loss(logits: torch.Tensor, logits_aux: torch.Tensor | None, y: torch.Tensor, *,
                  aux_weight: float = 0.0, label_smoothing: float = 0.0) -> torch.Tensor:
    """CE(logits) + aux_weight * CE(logits_aux), both in (at least) float32 and with the same label smoothing (as
    DARTS' ImageNet script applies its smoothed criterion to the auxiliary logits too)."""
    loss = F.cross_entropy(at_least_float32(logits), y, label_smoothing=label_smoothing)
    if logits_aux is not None and aux_weight > 0:
        loss = loss + aux_weight * F.cross_entropy(at_least_float32(logits_aux), y, label_smoothing=label_smoothing)
    return loss


def classify_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
                        precision: Precision | None = None, aux_weight: float = 0.0, grad_clip: float = 5.0,
                        label_smoothing: float = 0.0, replicas: Replicas | None = None,
                        share: float = 1.0) -> dict[str, float | int]:
    """One SGD step on a batch; the model's train/eval mode is the caller's choice.

    Clips gradients to a global L2 norm of ``grad_clip`` (0 = off). A NaN or infinite loss raises
    ``TrainingDiverged`` before any gradient is computed, so the weights and the optimiser state are
    those of the last good step. Returns ``loss`` (mean over the batch, auxiliary term included),
    ``correct`` (top-1 count of the main logits), ``batch_size`` and ``grad_norm`` (before clipping;
    NaN when clipping is off). One host sync per step.

    Data-parallel (``replicas`` of several processes, ``x`` this process's slice, ``share`` its fraction of
    the global batch): the gradients are summed over the processes before clipping (see
    :mod:`raynas.distributed`) and ``loss`` is the global batch's mean, checked after that sum.
    """
    precision = _cpu_precision(precision, x)
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        logits, aux = split_output(model(precision.images(x)))
        loss = classify_loss(logits, aux, y, aux_weight=aux_weight, label_smoothing=label_smoothing)
    if replicas is not None and replicas.parallel:
        (loss * share).backward()
        (loss_value,) = replicas.reduce_grads([p for g in optimizer.param_groups for p in g["params"]],
                                              loss.detach() * share)
        _check_finite(loss_value, optimizer)
    else:
        loss_value = loss.item()
        _check_finite(loss_value)
        loss.backward()
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip) if grad_clip > 0 else None
    optimizer.step()
    correct = (logits.detach().argmax(1) == y).sum()
    nan = torch.tensor(math.nan, device=correct.device)
    stats = torch.stack([correct.float(), norm.float() if norm is not None else nan])
    correct_v, norm_v = stats.tolist()
    return {"loss": loss_value, "correct": int(correct_v), "batch_size": int(y.numel()), "grad_norm": norm_v}


def _check_finite(loss_value: float, optimizer: torch.optim.Optimizer | None = None) -> None:
    if not math.isfinite(loss_value):
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        raise TrainingDiverged(f"the classification loss became {loss_value}; the step was not taken. Lower "
                               "train.lr, keep train.grad_clip on, or resume from an earlier checkpoint")


@torch.no_grad()
def evaluate_classifier(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                        precision: Precision | None = None) -> dict[str, float]:
    """Mean cross-entropy (no label smoothing, main logits only) and top-1/top-5 accuracy (fractions in
    [0, 1]) over ``batches``, in eval mode; the model's previous mode is restored afterwards."""
    was_training = model.training
    model.eval()
    totals: torch.Tensor | None = None
    try:
        for x, y in batches:
            logits, _ = classifier_logits(model, x, precision)
            loss = F.cross_entropy(at_least_float32(logits), y, reduction="sum")
            part = torch.cat([loss.view(1), topk_correct(logits, y, (1, 5)).float(),
                              loss.new_tensor([y.numel()])]).double()
            totals = part if totals is None else totals + part
    finally:
        model.train(was_training)
    if totals is None:
        raise ValueError("no batches to evaluate")
    loss_sum, c1, c5, n = totals.tolist()
    return {"loss": loss_sum / n, "top1": c1 / n, "top5": c5 / n}
