"""Retraining a found genotype from scratch with the task's fixed trainer (``raynas.fixed_training``), two ways.

* ``retrain_genotype``: the retrain phase inside a trial (a grid cell after its search, a DAMGAN edge cell):
  ``train.*``, ``retrain_epochs`` overriding train.epochs; the trial's state and the trainer are checkpointed
  every epoch in one format, so a kill in either phase resumes where it was.
* ``chain_retrain``: ``raynas search METHOD --then-retrain``: the fixed trainable on the found genotype, as the
  nested run ``RUN_DIR/retrain``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from raynas.config import RaynasConfig
from raynas.fixed_training import fixed_trainer, retrain_config
from raynas.methods import get_method
from raynas.results import RunDir
from raynas.spaces import Genotype
from trainables.common import gpu_fraction, load_state_or_explain, maybe_inject_crash, report, trial_dir
from trainables.launch import run_trainable


def retrain_genotype(config: dict[str, Any], cfg: RaynasConfig, genotype: Genotype, state: dict[str, Any],
                     final_row: dict[str, Any], run: RunDir, *, epoch_offset: int = 0) -> None:
    """Train ``genotype`` from scratch with the task's fixed trainer, checkpointing ``state`` + trainer every
    epoch; appends ``final_row`` + the retrained scores after the last epoch."""
    path = trial_dir() / "retrain_genotype.json"
    genotype.save(path)
    rcfg = retrain_config(cfg, path, config.get("retrain_epochs"))
    trainer = fixed_trainer(rcfg)
    run.record_device(str(trainer.device))
    if state.get("retrain") is not None:
        load_state_or_explain(trainer, state["retrain"])
    gpu = gpu_fraction(trainer.device)
    seconds = float(state.get("retrain_seconds", 0.0))
    epochs = trainer.epochs
    while trainer.epoch < epochs:
        started = time.perf_counter()
        stats = trainer.train_epoch()  # TrainingDiverged ends the trial cleanly (user_errors_as_results)
        result: dict[str, Any] = {**stats, "phase": "retrain", "retrain_epoch": trainer.epoch,
                                  "epoch": epoch_offset + trainer.epoch}
        last = trainer.epoch == epochs
        if last:
            metrics = trainer.score()
            result.update(metrics)
        seconds += time.perf_counter() - started
        result.update(retrain_seconds=seconds, retrain_gpu_seconds=seconds * gpu)
        if last:
            row = {**final_row, **metrics, "epoch": epochs, "retrain_epochs": epochs,
                   "genotype": genotype.to_json(), "params": trainer.headline_params(),
                   "wall_seconds": seconds, "gpu_seconds": seconds * gpu, "device": str(trainer.device)}
            run.append([row], key=f"{row['candidate_id']}-{row['stage']}-final")
        report(result, {**state, "retrain": trainer.state_dict(), "retrain_seconds": seconds})
        maybe_inject_crash(config, epoch_offset + trainer.epoch)
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()


def chain_retrain(cfg: RaynasConfig, run: RunDir, resources, epochs: int | None, resume: bool) -> RunDir:
    """The fixed trainable on the found genotype, in the nested run RUN_DIR/retrain."""
    from raynas.cli.common import say
    from raynas.fixed_training import check_fixed
    from trainables.fixed_trial import train_fixed

    genotype = run.where(get_method(cfg.method).outputs[0])  # a URI run's genotype is read from the URI
    rcfg = retrain_config(cfg, genotype if run.remote is not None else Path(genotype).resolve(), epochs)
    if resume:
        rrun = RunDir.open(run.path / "retrain")
    else:
        check_fixed(rcfg)
        rrun = RunDir.create(run.path, "retrain", config=rcfg.to_dict(), seed=rcfg.train.seed, preset=rcfg.preset,
                             device=rcfg.train.device, exist_ok=True)
    print()
    say(f"retraining the found network in {rrun.where()}")
    run_trainable(train_fixed, rcfg, rrun, resources=resources, resume=resume, iterations=rcfg.train.epochs,
                  desc="retrain")
    return rrun
