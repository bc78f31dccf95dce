"""What the EAGAN search reports: progress lines, and per round TensorBoard scalars (best FID/IS, losses, times,
the front's hypervolume against a reference fixed at the stage's first round) and the best candidate's samples."""

from __future__ import annotations

import math
from typing import Any

import ray
from tqdm import tqdm

from raynas.results import RunDir
from raynas.results.pareto import hypervolume
from trainables.eagan.round_results import DIRECTIONS, objective_values


def fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}"


class RoundReporting:
    """The reporting half of :class:`trainables.eagan.driver.EaganSearch`."""

    run: RunDir
    objectives: tuple[str, ...]
    hv_ref: dict[str, list[float]]
    progress: bool
    _writer: Any

    @property
    def writer(self):
        """The run's TensorBoard writer, created on first use."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run.path / "tensorboard"))
        return self._writer

    def _log_round(self, stage, r, scores, ranks, train, eval_seconds, weights, evaluator, best) -> None:
        from torchvision.utils import make_grid

        tag = f"stage_{stage}"
        finite = [s for s in scores if s.get("fid") is not None and math.isfinite(s["fid"])]
        self.writer.add_scalar(f"{tag}/best_fid", min((s["fid"] for s in finite), default=math.nan), r)
        is_values = [s["is_mean"] for s in scores if s.get("is_mean") is not None and math.isfinite(s["is_mean"])]
        self.writer.add_scalar(f"{tag}/best_is", max(is_values, default=math.nan), r)
        self.writer.add_scalar(f"{tag}/d_loss", train["d_loss"], r)
        self.writer.add_scalar(f"{tag}/g_loss", train["g_loss"], r)
        self.writer.add_scalar(f"{tag}/train_seconds", train["train_seconds"], r)
        self.writer.add_scalar(f"{tag}/eval_seconds", eval_seconds, r)
        front = [objective_values(s, self.objectives) for s, rk in zip(scores, ranks) if rk == 0]
        points = [[f[o] for o in self.objectives] for f in front
                  if all(math.isfinite(f[o]) for o in self.objectives)]
        if points:
            ref = self.hv_ref.setdefault(stage, self._hv_reference(scores))
            hv = hypervolume(points, ref, [DIRECTIONS[o] for o in self.objectives])
            self.writer.add_scalar(f"{tag}/hypervolume", hv, r)
        try:
            grid = ray.get(evaluator.samples.remote(weights, best["index"], best["genotype"]))
            self.writer.add_image(f"{tag}/best_samples", make_grid(grid, nrow=8), r)
        except ray.exceptions.RayActorError:  # the round's scores stand; only its sample grid is skipped
            self._say(f"stage {stage} round {r}: no sample grid (its Evaluator died)")
        self.writer.flush()
        self._say(f"stage {stage} round {r}: best FID {fmt(best.get('fid'))} IS {fmt(best.get('is_mean'))} "
                  f"params {best['params']:,} | train {train['train_seconds']:.1f}s eval {eval_seconds:.1f}s")

    def _hv_reference(self, scores) -> list[float]:
        """A generous reference point, fixed at a stage's first round (saved in the search state) so the
        hypervolume curve is comparable across rounds and across a resume."""
        ref = []
        for o in self.objectives:
            if o == "is":
                ref.append(0.0)
            elif o == "params":
                ref.append(2.0 * max(s["params"] for s in scores))
            else:
                ref.append(1000.0)
        return ref

    def _say(self, message: str) -> None:
        if self.progress:
            tqdm.write(f"raynas: {message}")
