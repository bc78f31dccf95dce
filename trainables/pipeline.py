"""Tune trainable and runner of the pipeline methods (DARTS-GAL): baseline → prune → retrain as one trial.

Every epoch of every phase appends a Parquet row (``stage`` = ``baseline`` | ``prune`` | ``retrain``; ``epoch``
counts across the phases, ``phase_epoch`` within one), writes TensorBoard scalars (losses, accuracies, and
while pruning every node's mask and the live-node count) and checkpoints the state of the phase it is in. The
checkpoint of a phase's last epoch already names the next phase, so a kill at any point resumes at that phase
(``raynas search darts-gal --resume RUN``). After the retrain one ``final`` row holds the outcome: parameters
and test accuracy before and after pruning, kept nodes, the pruned genotype.

* ``pipeline_trial``: ``raynas search darts-gal`` (every mask dying is the user's error: lower λ).
* ``ablation_cell``: one cell of ``raynas ablate darts-gal --grid ...``; every mask dying is a result
  (``all_pruned``), not an error, so the rest of the grid stands.
* ``run_pipeline``: the runner: one trial, then ``best.json`` (the unpruned network as a darts-gal genotype),
  ``pruned.json``, ``dartsgal.json`` (before/after) and the mask plot in the run directory.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import torch

from raynas.classify.step import evaluate_classifier
from raynas.config import RaynasConfig
from raynas.methods import SearchOutcome, SearchRequest
from raynas.methods.dartsgal.genotype import DartsGalGenotype
from raynas.methods.dartsgal.pipeline import AllPruned, DartsGalPipeline, load_teacher
from raynas.results.schema import result_columns
from trainables.common import (
    base_row,
    gpu_fraction,
    image_writer,
    load_state_or_explain,
    maybe_inject_crash,
    open_trial_run,
    report,
    restore_state,
    trial_config,
    trial_id,
    user_errors_as_results,
)
from trainables.launch import run_trainable

SUMMARY_FILE = "dartsgal.json"


def axis_fields(config: dict[str, Any], cfg: RaynasConfig) -> dict[str, Any]:
    """This trial's grid values (``dartsgal.lam`` → ``lam``) as the resolved config holds them (typed)."""
    out = {}
    for key in config:
        if "." in key and not key.startswith("_"):
            section, name = key.split(".", 1)
            out[name] = getattr(getattr(cfg, section), name)
    return out


class _Trial:
    """What every phase of one trial shares: config, run, row fields, TensorBoard, the checkpointed state."""

    def __init__(self, config: dict[str, Any], ablation: bool):
        self.config, self.ablation = config, ablation
        self.cfg = trial_config(config)
        self.run = open_trial_run(config, self.cfg)
        self.tid = trial_id()
        self.writer = image_writer()
        self.pipe = DartsGalPipeline(self.cfg)
        self.fields = axis_fields(config, self.cfg)
        self.state: dict[str, Any] = restore_state() or {"phase": "baseline", "seconds": {}}

    def append(self, row: dict[str, Any]) -> None:
        """One epoch's row; written again after a resume, it replaces the first (idempotent on disk)."""
        self.run.append([row], key=f"{row['candidate_id']}-{row['stage']}-{row['epoch']}")

    def row(self, stage: str, epoch: int, phase_epoch: int, device: torch.device, values: dict[str, Any]
            ) -> dict[str, Any]:
        return {**base_row(self.run, self.cfg, self.tid, stage, device, self.fields), "epoch": epoch,
                "phase_epoch": phase_epoch, **values}

    def scalars(self, stage: str, epoch: int, values: dict[str, Any]) -> None:
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                self.writer.add_scalar(f"{stage}/{k}", v, epoch)
        self.writer.flush()

    def scores(self, trainer: Any) -> dict[str, float]:
        """Test scores every ``dartsgal.eval_every`` epochs and after the last (reported, never selected on)."""
        every = self.cfg.dartsgal.eval_every
        return trainer.score() if trainer.done or (every and trainer.epoch % every == 0) else {}

    def add_seconds(self, phase: str, seconds: float) -> None:
        seconds_by_phase = self.state.setdefault("seconds", {})
        seconds_by_phase[phase] = seconds_by_phase.get(phase, 0.0) + seconds

    def checkpoint(self, result: dict[str, Any], epoch: int) -> None:
        report(result, self.state)
        maybe_inject_crash(self.config, epoch)

    # ------------------------------------------------------------------ phases
    def baseline(self) -> None:
        pipe, d = self.pipe, self.cfg.dartsgal
        if d.teacher:
            weights = load_teacher(d.teacher, pipe.genotype, pipe.num_classes)
            scores, params = pipe.teacher_scores(weights)
            self.append(self.row("baseline", 0, 0, torch.device("cpu"),
                                 {**scores, "params": params, "teacher": d.teacher}))
            self.state.update(phase="prune", teacher=weights, baseline={**scores, "params": params, "epochs": 0})
            self.checkpoint({"phase": "baseline", **scores, "params": params}, 0)
            return
        self.train_phase("baseline", pipe.baseline_trainer(), 0, lambda trainer, summary: self.state.update(
            phase="prune", teacher=trainer.model.state_dict(), baseline=summary))

    def prune(self) -> None:
        pipe = self.pipe
        pruner = pipe.pruner(self.state["teacher"])
        self.run.record_device(str(pruner.device))
        if self.state.get("pruner") is not None:
            load_state_or_explain(pruner, self.state["pruner"])
        offset = self.state["baseline"]["epochs"]
        gpu = gpu_fraction(pruner.device)
        while not pruner.done:
            started = time.perf_counter()
            stats = pruner.train_epoch()
            scores = {}
            if pruner.done:  # the masked student at the end (reported only); per epoch: train accuracy, agreement
                test = pruner.data.eval_batches("test", self.cfg.train.eval_batch_size)
                s = evaluate_classifier(pruner.student, test, pruner.precision)
                scores = {"test_loss": s["loss"], "test_acc": s["top1"], "test_top5": s["top5"]}
            wall = time.perf_counter() - started
            masks = pruner.student.mask_table()
            live = pipe.genotype.with_masks(masks, self.cfg.dartsgal.threshold).kept_nodes
            values = {**{k: v for k, v in stats.items() if k != "epoch"}, **scores, "live_nodes": live,
                      "masks": json.dumps(masks), "wall_seconds": wall, "gpu_seconds": wall * gpu}
            epoch = offset + pruner.epoch
            self.append(self.row("prune", epoch, pruner.epoch, pruner.device, values))
            self.scalars("prune", epoch, {k: v for k, v in values.items() if k != "masks"})
            for c, cell in enumerate(masks):
                for i, v in enumerate(cell):
                    self.writer.add_scalar(f"masks/cell{c}/node{i}", v, epoch)
            self.add_seconds("prune", wall)
            result = {"phase": "prune", **{k: v for k, v in values.items() if k != "masks"},
                      "masks": {f"cell{c}_node{i}": v for c, cell in enumerate(masks) for i, v in enumerate(cell)}}
            if pruner.done:
                self.state.pop("pruner", None)  # the teacher stays: dartsgal.teacher=RUN reuses it
                self.state.update(phase="retrain", masks=masks, prune_epochs=pruner.epochs)
                try:
                    self.state["pruned"] = pipe.prune(masks).to_json()
                except AllPruned:
                    if not self.ablation:
                        raise
                    self.state.update(phase="done", pruned=None)
            else:
                self.state["pruner"] = pruner.state_dict()
            self.checkpoint(result, epoch)

    def retrain(self) -> None:
        trainer = self.pipe.retrain_trainer(DartsGalGenotype.from_json(self.state["pruned"]))
        offset = self.state["baseline"]["epochs"] + self.state["prune_epochs"]
        self.train_phase("retrain", trainer, offset, lambda _, summary: self.state.update(phase="done",
                                                                                           retrain=summary))

    def train_phase(self, stage: str, trainer: Any, offset: int, finish: Any) -> None:
        """The baseline's and the retrain's epochs: a row, scalars and a checkpoint each (the trainer's state
        until its last epoch; then ``finish(trainer, summary)`` moves the state to the next phase)."""
        self.run.record_device(str(trainer.device))
        if self.state.get("trainer") is not None:
            load_state_or_explain(trainer, self.state["trainer"])
        params, gpu = trainer.headline_params(), gpu_fraction(trainer.device)
        while not trainer.done:
            started = time.perf_counter()
            stats = trainer.train_epoch()
            scores = self.scores(trainer)  # reported only; nothing is selected on the test split
            wall = time.perf_counter() - started
            values = {**{k: stats[k] for k in ("train_loss", "train_acc", "lr")}, **scores, "params": params,
                      "wall_seconds": wall, "gpu_seconds": wall * gpu}
            epoch = offset + trainer.epoch
            self.append(self.row(stage, epoch, trainer.epoch, trainer.device, values))
            self.scalars(stage, epoch, values)
            self.add_seconds(stage, wall)
            result = {"phase": stage, **values}
            if trainer.done:
                self.state.pop("trainer", None)
                finish(trainer, {**scores, "params": params, "epochs": trainer.epochs})
                if self.state["phase"] == "done":
                    result.update(self.final())
            else:
                self.state["trainer"] = trainer.state_dict()
            self.checkpoint(result, epoch)

    def final(self) -> dict[str, Any]:
        """The ``final`` row (appended) and what the last result carries for the runner."""
        base, after = self.state["baseline"], self.state.get("retrain") or {}
        pruned = DartsGalGenotype.from_json(self.state["pruned"]) if self.state.get("pruned") else None
        seconds = self.state.get("seconds", {})
        values: dict[str, Any] = {
            "baseline_test_acc": base.get("test_acc"), "baseline_test_loss": base.get("test_loss"),
            "baseline_params": base["params"], "test_acc": after.get("test_acc", math.nan),
            "test_loss": after.get("test_loss", math.nan), "test_top5": after.get("test_top5", math.nan),
            "params": after.get("params", math.nan), "kept_nodes": pruned.kept_nodes if pruned else 0,
            "total_nodes": self.pipe.genotype.total_nodes, "all_pruned": pruned is None,
            "kept": json.dumps([list(k) for k in pruned.kept]) if pruned else None,
            "masks": json.dumps(self.state["masks"]),
            "pruned_fraction": 1 - after["params"] / base["params"] if pruned else 1.0,
            "baseline_flops": self.pipe.flops(), "flops": self.pipe.flops(pruned) if pruned else math.nan,
            "unreduced_cells": json.dumps(pruned.unreduced_cells()) if pruned else None,
            "baseline_epochs": base["epochs"], "prune_epochs": self.state["prune_epochs"],
            "retrain_epochs": after.get("epochs", 0), "genotype": pruned.to_json() if pruned else None,
            **{f"{k}_seconds": v for k, v in seconds.items()}, "wall_seconds": sum(seconds.values())}
        epoch = base["epochs"] + self.state["prune_epochs"] + after.get("epochs", 0)
        self.append(self.row("final", epoch, 0, torch.device("cpu"), values))
        return {"final": True, "pruned_genotype": values["genotype"], "baseline_genotype": self.pipe.genotype.to_json(),
                **{k: v for k, v in values.items() if k not in ("genotype", "masks")}}

    def run_phases(self) -> None:
        if self.state["phase"] == "baseline":
            self.baseline()
        if self.state["phase"] == "prune":
            self.prune()
        if self.state["phase"] == "retrain":
            self.retrain()
        elif self.state["phase"] == "done" and self.state.get("pruned") is None:  # ablation: every mask died
            self.checkpoint({"phase": "done", **self.final()}, self.state["baseline"]["epochs"]
                            + self.state["prune_epochs"])
        self.writer.close()


@user_errors_as_results
def pipeline_trial(config: dict[str, Any]) -> None:
    """``raynas search darts-gal``: the three phases; every epoch a row, scalars and a checkpoint."""
    _Trial(config, ablation=False).run_phases()


@user_errors_as_results
def ablation_cell(config: dict[str, Any]) -> None:
    """One grid cell of ``raynas ablate darts-gal``: the pipeline at this cell's settings, one ``final`` row."""
    _Trial(config, ablation=True).run_phases()


# ====================================================================== runner
def _compact_json(data: Any) -> str:
    """Indented JSON with every list of numbers on one line (kept nodes, masks)."""
    import re

    text = json.dumps(data, indent=2)
    return re.sub(r"\[\s+([-+\deE.,\s]+?)\s+\]", lambda m: "[" + ", ".join(v.strip() for v in m[1].split(",")) + "]",
                  text)


def run_pipeline(request: SearchRequest) -> SearchOutcome:
    """``raynas search darts-gal``: one pipeline trial; then the genotypes, the before/after summary and the
    mask plot in the run directory."""
    from raynas.errors import RaynasError
    from raynas.methods.dartsgal.figures import draw_mask_evolution
    from raynas.methods.dartsgal.report import unreduced_warning
    from raynas.spaces.draw import draw_genotype

    cfg, run = request.cfg, request.run
    columns = result_columns(cfg.method)  # a method that registered none fails now, not after its trial
    results = run_trainable(pipeline_trial, cfg, run, resources=request.resources, resume=request.resume)
    done = [r for r in results if (r.metrics or {}).get("final")]
    if not done:
        raise RaynasError(f"the pipeline trial did not finish; see {run.where(run.experiment_name)}. Resume it with "
                          f"raynas search darts-gal --resume {run.location}")
    m = done[0].metrics
    best, pruned = DartsGalGenotype.from_json(m["baseline_genotype"]), DartsGalGenotype.from_json(m["pruned_genotype"])
    best.save(run.path / "best.json")
    pruned.save(run.path / "pruned.json")
    summary = {"baseline": {"params": m["baseline_params"], "test_acc": m["baseline_test_acc"],
                            "epochs": m["baseline_epochs"]},
               "flops": {"baseline": m["baseline_flops"], "pruned": m["flops"]},
               "pruned": {"params": m["params"], "test_acc": m["test_acc"], "epochs": m["retrain_epochs"],
                          "kept_nodes": m["kept_nodes"], "total_nodes": m["total_nodes"],
                          "kept": pruned.to_dict()["kept"], "pruned_fraction": m["pruned_fraction"]},
               "prune_epochs": m["prune_epochs"], "masks": pruned.to_dict().get("masks")}
    (run.path / SUMMARY_FILE).write_text(_compact_json(summary) + "\n")
    outputs = {"pruned": run.path / "pruned.json", "baseline": run.path / "best.json",
               "summary": run.path / SUMMARY_FILE}
    df = run.read()
    plots = [draw_mask_evolution(df, run.plots_dir / "masks.png", cfg.dartsgal.threshold),
             draw_genotype(pruned, run.plots_dir / "pruned.png")]
    for p in plots:
        if p is not None:
            outputs[f"plot {p.stem}"] = p
    import pandas as pd

    table = pd.DataFrame([
        {"network": "baseline", "params": m["baseline_params"], "flops": m["baseline_flops"],
         "test_acc": m["baseline_test_acc"], "kept_nodes": m["total_nodes"], "epochs": m["baseline_epochs"]},
        {"network": "pruned", "params": m["params"], "flops": m["flops"], "test_acc": m["test_acc"],
         "kept_nodes": m["kept_nodes"], "epochs": m["retrain_epochs"]}])
    notes = [f"pruned {m['total_nodes'] - m['kept_nodes']} of {m['total_nodes']} nodes: "
             f"{m['baseline_params']:,} -> {int(m['params']):,} params ({m['pruned_fraction']:.1%} fewer); test "
             f"accuracy {m['baseline_test_acc']:.4f} -> {m['test_acc']:.4f} (reported, never selected on)"]
    warning = unreduced_warning(pruned.unreduced_cells(), m["flops"], m["baseline_flops"])
    if warning:
        notes.append(warning)
    return SearchOutcome(outputs=outputs, table=table, columns=columns,
                         retrain=f"raynas retrain {run.where('pruned.json')} --preset {cfg.preset}",
                         notes=tuple(notes))
