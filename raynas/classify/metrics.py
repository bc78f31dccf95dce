"""Top-k accuracy."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> torch.Tensor:
    """How many rows have their target among the ``k`` largest logits, for each ``k`` (a tensor on the
    logits' device, so summing over batches needs no host sync). ``k`` larger than the number of
    classes counts every row."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, classes) and targets (N,), got {tuple(logits.shape)} and "
                         f"{tuple(target.shape)}")
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices                      # (N, kmax), best first
    hit = (top == target.view(-1, 1)).cumsum(1).clamp_(max=1)    # hit[:, j]: target within the top j+1
    return torch.stack([hit[:, min(k, kmax) - 1].sum() for k in ks])


def accuracy(logits: torch.Tensor, target: torch.Tensor, topk: Sequence[int] = (1,)) -> list[float]:
    """Top-k accuracies as fractions in [0, 1] (DARTS' ``utils.accuracy`` gives percentages)."""
    n = max(1, target.numel())
    return [c / n for c in topk_correct(logits, target, topk).tolist()]
