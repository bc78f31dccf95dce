"""Tune function trainable for one fixed network of either task (GAN pair or classifier): train,
report, checkpoint, resume."""

from __future__ import annotations

import time
from typing import Any

import torch

from raynas.train import fixed_trainer
from trainables.common import (
    config_from_trial,
    image_writer,
    load_state_or_explain,
    maybe_inject_crash,
    maybe_inject_nan,
    open_trial_run,
    report,
    restore_state,
    trial_id,
    user_errors_as_results,
)


def _genotype_json(path: str | None) -> str | None:
    """A genotype file (or a shipped genotype's name), validated, as JSON for the run's results."""
    from raynas.spaces import Genotype

    return Genotype.load(path).to_json() if path else None


def trained_genotype(cfg) -> str | None:
    """The genotype this run trains, as JSON (None for a baseline network)."""
    if cfg.task == "gan":
        return _genotype_json(cfg.model.g_genotype if cfg.model.generator == "genotype" else None)
    return _genotype_json(cfg.model.genotype)


@user_errors_as_results
def train_fixed(config: dict[str, Any]) -> None:
    """Train; report every epoch and the run's scores when due (``score``); checkpoint; resume."""
    cfg = config_from_trial(config)
    run = open_trial_run(config)
    trainer = fixed_trainer(cfg)
    state = restore_state()
    if state is not None:
        load_state_or_explain(trainer, state)
    tid = trial_id()
    writer = image_writer()
    params = trainer.headline_params()
    genotype = trained_genotype(cfg)
    method = "gan" if cfg.task == "gan" else "train"
    while trainer.epoch < trainer.epochs:
        started = time.perf_counter()
        stats = trainer.train_epoch()  # TrainingDiverged ends the trial cleanly (user_errors_as_results)
        epoch = trainer.epoch
        last = epoch == trainer.epochs
        result: dict[str, Any] = {**stats, "params": params}
        row: dict[str, Any] = {"run_id": run.path.name, "method": method, "stage": "train", "epoch": epoch,
                               "round": None, "candidate_id": tid, "genotype": genotype, "params": params,
                               **trainer.row(stats), "device": str(trainer.device)}
        if trainer.eval_due():
            scores = trainer.score()
            result.update(scores)
            row.update(scores)
            grid = trainer.sample_grid()
            if grid is not None:
                from torchvision.utils import make_grid

                writer.add_image("samples/ema_generator", make_grid(grid, nrow=8), epoch)
                writer.flush()
        row["wall_seconds"] = time.perf_counter() - started
        run.append([row])
        checkpoint_due = last or epoch % cfg.train.checkpoint_every == 0
        report(result, trainer.state_dict() if checkpoint_due else None)
        maybe_inject_crash(config, epoch)
        maybe_inject_nan(config, epoch, trainer.D if cfg.task == "gan" else trainer.model)
    writer.close()
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()
