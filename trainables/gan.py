"""Tune function trainable that trains and evaluates one fixed (G, D) pair."""

from __future__ import annotations

import time
from typing import Any

import torch
from torchvision.utils import make_grid

from raynas.gan.trainer import GANTrainer
from raynas.results import RunDir
from trainables.common import (
    config_from_trial,
    image_writer,
    load_state_or_explain,
    maybe_inject_crash,
    maybe_inject_nan,
    report,
    restore_state,
    trial_id,
    user_errors_as_results,
)


def _genotype_json(path: str | None) -> str | None:
    """A genotype file (or a shipped genotype's name), validated, as JSON for the run's results."""
    from raynas.spaces import Genotype

    return Genotype.load(path).to_json() if path else None


@user_errors_as_results
def train_gan(config: dict[str, Any]) -> None:
    """Train, report losses every epoch and IS/FID/KID every ``eval.every`` epochs, checkpoint, resume."""
    cfg = config_from_trial(config)
    run = RunDir.open(config["run_dir"])
    trainer = GANTrainer(cfg)
    state = restore_state()
    if state is not None:
        load_state_or_explain(trainer, state)
    tid = trial_id()
    writer = image_writer()
    params = trainer.params()
    genotype = _genotype_json(cfg.model.g_genotype if cfg.model.generator == "genotype" else None)
    t = cfg.train
    while trainer.epoch < t.epochs:
        started = time.perf_counter()
        stats = trainer.train_epoch()  # TrainingDiverged ends the trial cleanly (user_errors_as_results)
        epoch = trainer.epoch
        last = epoch == t.epochs
        result: dict[str, Any] = {**stats, **params}
        due = last or (cfg.eval.every > 0 and epoch % cfg.eval.every == 0)
        row: dict[str, Any] = {
            "run_id": run.path.name, "method": "gan", "stage": "train", "epoch": epoch, "round": None,
            "candidate_id": tid, "genotype": genotype, "params": params["params_g"],
            "d_loss": stats["d_loss"], "g_loss": stats["g_loss"], "device": str(trainer.device),
        }
        if due:
            metrics = trainer.evaluate()
            result.update(metrics.as_row())
            row.update(metrics.as_row())
            grid = make_grid(trainer.sample_grid(), nrow=8)
            writer.add_image("samples/ema_generator", grid, epoch)
            writer.flush()
        row["wall_seconds"] = time.perf_counter() - started
        run.append([row])
        checkpoint_due = last or epoch % t.checkpoint_every == 0
        report(result, trainer.state_dict() if checkpoint_due else None)
        maybe_inject_crash(config, epoch)
        maybe_inject_nan(config, epoch, trainer.D)
    writer.close()
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()
