"""The weight/α alternation of a differentiable architecture search, for any supernet.

A search is a supernet plus the rule that updates its architecture: softmax α by gradient (DARTS,
first or second order, see ``searchers.architect``) or α read off attention statistics (DAMGAN's
down-attention, SWD-NAS's lower attention). This class owns what every such search shares: the epoch
loop, loss averaging, timing, and the state a killed trial resumes from; a method supplies
``train_step`` (one weight update, plus its α update when due) and the architecture read-outs. It never
imports Ray: the trainables in ``trainables/search_trial.py`` and ``grid_cell.py`` report and checkpoint around it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch

from raynas.checkpoints import capture_sampling_state, restore_sampling_state
from raynas.nn.attention import alpha_summary


class DifferentiableSearch:
    """Subclasses set ``device``, ``iters_per_epoch``, ``epochs``, ``images_per_step``, ``real`` (the batch
    source whose sampler state is checkpointed, or None), ``metric_keys`` (step outputs averaged per epoch,
    0 when never produced) and implement ``train_step``, ``derive_genotype`` and ``alpha_table``."""

    device: torch.device
    iters_per_epoch: int
    epochs: int
    images_per_step: int
    real: Any = None
    metric_keys: tuple[str, ...] = ()
    headline_metrics: tuple[str, ...] = ()  # scores of the derived network a grid cell keeps (search_<name>)

    def __init__(self) -> None:
        self.epoch = 0
        self.step = 0

    # ------------------------------------------------------------------ what a method provides
    def train_step(self) -> Mapping[str, float | None]:
        """One training step; values that are None (e.g. no G update this step) are left out of the means."""
        raise NotImplementedError

    def modules(self) -> list[torch.nn.Module]:
        """The modules put in training mode at the start of an epoch."""
        return []

    def begin_epoch(self) -> None:
        """E.g. reset attention statistics so that α covers exactly this epoch."""

    def end_epoch(self) -> dict[str, float]:
        """E.g. accumulate attention statistics over the validation split; returns extra epoch stats."""
        return {}

    def derive_genotype(self):
        raise NotImplementedError

    def alpha_table(self) -> dict[str, list[float]]:
        """Edge name → the architecture weight of each candidate op (what derivation ranks)."""
        raise NotImplementedError

    def stateful(self) -> dict[str, Any]:
        """Objects with ``state_dict``/``load_state_dict`` that a resumed search needs, by checkpoint key."""
        return {}

    def eval_due(self) -> bool:
        """Whether this epoch scores the derived network (``evaluate``); the last epoch always does."""
        return self.done()

    def evaluate(self, genotype) -> dict[str, Any]:
        """Scores of the derived network for a result row (IS/FID for GANs, accuracy for classifiers)."""
        return {}

    def sample_grid(self, genotype):
        """Images for TensorBoard, in [0, 1]; None when the search makes none."""
        return None

    def derived_params(self, genotype) -> int:
        """Parameters of the network ``genotype`` retrains as."""
        raise NotImplementedError

    def row_fields(self) -> dict[str, Any]:
        """Columns every result row of this search carries (e.g. the grid axes it was started with)."""
        return {}

    # ------------------------------------------------------------------ the shared loop
    def train_epoch(self) -> dict[str, float]:
        """``iters_per_epoch`` steps; returns the epoch number, mean step outputs and throughput."""
        for m in self.modules():
            m.train()
        self.begin_epoch()
        sums = dict.fromkeys(self.metric_keys, 0.0)
        counts = dict.fromkeys(self.metric_keys, 0)
        start = time.perf_counter()
        for _ in range(self.iters_per_epoch):
            for key, value in self.train_step().items():
                if value is not None:
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
            self.step += 1
        extra = self.end_epoch()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        self.epoch += 1
        out: dict[str, float] = {"epoch": self.epoch}
        out.update({k: sums[k] / max(1, counts[k]) for k in sums})
        out.update(train_seconds=seconds, images_per_s=self.iters_per_epoch * self.images_per_step / max(seconds, 1e-9))
        out.update(extra)
        return out

    def done(self) -> bool:
        return self.epoch >= self.epochs

    def alpha_stats(self) -> dict[str, dict[str, float]]:
        """Per edge: entropy of the normalised weights and the top1 − top2 margin (how decided it is)."""
        return {name: alpha_summary(weights) for name, weights in self.alpha_table().items()}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state = {key: obj.state_dict() for key, obj in self.stateful().items()}
        state.update(epoch=self.epoch, step=self.step, sampling=capture_sampling_state(self.real))
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key, obj in self.stateful().items():
            obj.load_state_dict(state[key])
        self.epoch = int(state["epoch"])
        self.step = int(state["step"])
        restore_sampling_state(state["sampling"], self.real)


def alpha_means(stats: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean per-edge entropy and top1 − top2 margin: one number each for how decided the search is."""
    n = max(1, len(stats))
    return {"alpha_entropy_mean": sum(s["entropy"] for s in stats.values()) / n,
            "alpha_margin_mean": sum(s["margin"] for s in stats.values()) / n}
