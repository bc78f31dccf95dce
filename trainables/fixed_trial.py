"""Tune function trainables for one fixed network of either task (GAN pair or classifier): train, report,
checkpoint, resume; and the grid cell of ``raynas ablate regan`` (one fixed GAN run, Re-GAN on or off).

Every epoch appends a Parquet row (the trainer's ``row(stats)`` training columns, scores when due) and
writes its numeric columns as TensorBoard scalars (``train/…``, ``eval/…``, ``regan/…``) in the trial
directory, next to the sample grids.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import torch

from raynas.config import FIXED, RaynasConfig
from raynas.distributed import SINGLE
from raynas.fixed_training import fixed_trainer
from raynas.methods import get_method
from raynas.results import RunDir
from raynas.results.schema import result_columns
from trainables.common import (
    image_writer,
    load_state_or_explain,
    maybe_inject_crash,
    maybe_inject_full_disk,
    maybe_inject_nan,
    open_trial_run,
    report,
    restarted,
    restore_state,
    trial_config,
    trial_id,
    trial_values,
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


_SCALAR_GROUPS = {"regan_": "regan/", "is_": "eval/", "fid": "eval/", "kid_": "eval/"}


def write_scalars(writer, values: dict[str, Any], epoch: int) -> None:
    """Numeric epoch values as TensorBoard scalars; Re-GAN's phase as its index in ``PHASES``."""
    for key, value in values.items():
        if key == "regan_phase" and value:
            from raynas.gan.regan_schedule import PHASES

            writer.add_scalar("regan/phase", PHASES.index(value), epoch)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            continue
        prefix = next((group for start, group in _SCALAR_GROUPS.items() if key.startswith(start)), "train/")
        writer.add_scalar(prefix + (key[len("regan_"):] if key.startswith("regan_") else key), value, epoch)


class TuneSession:
    """What ``fit`` reads from and reports to the process it runs in: here a Tune trial, one process
    (``trainables.data_parallel`` has the Ray Train worker's)."""

    replicas = SINGLE
    device = None  # the config's train.device

    def __init__(self, earlier: dict[str, Any] | None = None, old_id: str | None = None) -> None:
        # a trial that continues one of a stopped experiment (``common.restarted``): its state and trial id
        self.earlier, self.old_id = earlier, old_id

    def restore_state(self) -> dict[str, Any] | None:
        return restore_state() or self.earlier

    def trial_id(self) -> str:
        return self.old_id or trial_id()

    @staticmethod
    def run_meta() -> dict[str, Any]:
        """No run.json entries beyond one worker's (a data-parallel session adds where its workers ran)."""
        return {}

    @staticmethod
    def writer():
        return image_writer()

    @staticmethod
    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        report(metrics, state)


def global_batch(cfg: RaynasConfig) -> int:
    """The images of one optimiser step over all workers (a GAN: the discriminator's batch)."""
    return int(cfg.train.dis_batch_size if cfg.task == "gan" else cfg.train.batch_size)


def fit(config: dict[str, Any], cfg: RaynasConfig, run: RunDir, *, method: str,
        fields: dict[str, Any] | None = None,
        last_rows: Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]] | None = None,
        session: Any = None) -> None:
    """Train ``cfg``'s fixed network to its last epoch: a row per epoch (plus ``fields``), TensorBoard scalars
    and samples, checkpoints, resume, fault injection. ``last_rows(row, result)`` adds rows written in the same
    Parquet part as the last epoch's row, before its checkpoint (a kill never leaves one without the other).
    ``session`` (default: this Tune trial, see ``TuneSession``): where state and reports come from and go to; in
    a data-parallel run every worker trains, and rank 0 alone scores, writes rows and checkpoints."""
    session = session or TuneSession()
    rep = session.replicas
    trainer = fixed_trainer(cfg, session.device, rep)
    if rep.is_main:
        run.record_device(str(trainer.device))
        run.record_meta(num_workers=rep.size, **session.run_meta())
    state = session.restore_state()
    seconds = 0.0
    if state is not None:
        load_state_or_explain(trainer, state)
        seconds = float(state.get("wall_seconds", 0.0))
    tid = session.trial_id()
    writer = session.writer() if rep.is_main else None
    params = trainer.headline_params()
    genotype = trained_genotype(cfg)
    crash_rank = config.get("_crash_rank", 0)  # fault injection: the worker that is killed
    while trainer.epoch < trainer.epochs:
        rep.broadcast_rng()  # rank 0 alone scored and sampled: every worker draws the same next batch again
        started = time.perf_counter()
        stats = trainer.train_epoch()  # TrainingDiverged ends the trial cleanly (user_errors_as_results)
        epoch = trainer.epoch
        last = epoch == trainer.epochs
        result: dict[str, Any] = {**stats, "params": params}
        if not rep.is_main:  # its slice is trained; rank 0 scores, writes and checkpoints
            session.report(result, None)
            if rep.rank == crash_rank:
                maybe_inject_crash(config, epoch)
            continue
        logged = trainer.row(stats)
        row: dict[str, Any] = {"run_id": run.path.name, "method": method, "stage": "train", "epoch": epoch,
                               "round": None, "candidate_id": tid, "genotype": genotype, "params": params,
                               **(fields or {}), **logged, "device": str(trainer.device),
                               "global_batch": global_batch(cfg), "num_workers": rep.size}
        scores: dict[str, Any] = {}
        if trainer.eval_due():
            scores = trainer.score()
            result.update(scores)
            row.update(scores)
            grid = trainer.sample_grid()
            if grid is not None:
                from torchvision.utils import make_grid

                writer.add_image("samples/ema_generator", make_grid(grid, nrow=8), epoch)
        write_scalars(writer, {**logged, **scores}, epoch)
        writer.flush()
        row["wall_seconds"] = time.perf_counter() - started
        seconds += row["wall_seconds"]
        rows = [row]
        if last and last_rows is not None:
            rows += last_rows({**row, "total_wall_seconds": seconds}, result)
        run.append(rows, key=f"{tid}-train-{epoch}")  # a re-run epoch replaces its rows (idempotent on disk)
        checkpoint_due = last or epoch % cfg.train.checkpoint_every == 0
        session.report(result, {**trainer.state_dict(), "wall_seconds": seconds} if checkpoint_due else None)
        if crash_rank == 0:
            maybe_inject_crash(config, epoch)
            maybe_inject_full_disk(config, epoch)
        maybe_inject_nan(config, epoch, trainer.D if cfg.task == "gan" else trainer.model)
    if writer is not None:
        writer.close()
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()


@user_errors_as_results
def train_fixed(config: dict[str, Any]) -> None:
    """Train; report every epoch and the run's scores when due (``score``); checkpoint; resume."""
    from raynas.export.card import write_run_card

    config, earlier, old_id = restarted(config)  # a trial of a stopped experiment this one continues
    cfg = trial_config(config, FIXED)
    run = open_trial_run(config, cfg)
    method = "gan" if cfg.task == "gan" else "train"
    if cfg.resources.workers > 1:  # --num-workers N: Ray Train workers, this trial waits for them
        from trainables.data_parallel import train_data_parallel

        train_data_parallel(config, cfg, run, fit, method=method)
    else:
        fit(config, cfg, run, method=method, session=TuneSession(earlier, old_id))
    write_run_card(run)  # model_card.json + MODEL_CARD.md: the trained network, its scores, how to get it again


# ====================================================================== raynas ablate regan
def regan_space(grid: dict[str, list[Any]]) -> dict[str, Any]:
    """The Tune grid of ``raynas ablate regan``: every combination of the ``regan.*`` axes with Re-GAN on, plus
    one baseline cell with Re-GAN off per combination of the other axes (e.g. ``data.fraction``). Seeds are
    added by the CLI on top. A grid that sets ``regan.enabled`` itself is the plain product."""
    from ray import tune

    if "regan.enabled" in grid:
        return {"cell": tune.grid_search([dict(zip(grid, values)) for values in itertools.product(*grid.values())])}
    regan_keys = [k for k in grid if k.startswith("regan.")]
    other_keys = [k for k in grid if k not in regan_keys]
    cells = []
    for other in itertools.product(*(grid[k] for k in other_keys)):
        base = dict(zip(other_keys, other))
        cells.append({**base, "regan.enabled": False})
        cells += [{**base, **dict(zip(regan_keys, values)), "regan.enabled": True}
                  for values in itertools.product(*(grid[k] for k in regan_keys))]
    return {"cell": tune.grid_search(cells)}


@user_errors_as_results
def regan_cell(config: dict[str, Any]) -> None:
    """One cell of ``raynas ablate regan``: train the fixed GAN (Re-GAN on or off) with per-epoch rows, then one
    ``final`` row with the grid values (last key component: ``sparsity``, ``interval``, ``fraction``,
    ``enabled``), the seed, IS/FID, the total training FLOPs and the final measured sparsity."""
    cfg = trial_config(config)
    run = open_trial_run(config, cfg)
    method = get_method(cfg.method)
    keys = result_columns(method.name)  # what the outcome row takes from the last epoch's result
    values = trial_values(config, config["raynas"])
    fields = {k.rsplit(".", 1)[-1]: v for k, v in values.items() if k != "train.seed"}
    fields["enabled"] = bool(cfg.regan.enabled)
    fields["seed"] = cfg.train.seed

    def final(row: dict[str, Any], result: dict[str, Any]) -> list[dict[str, Any]]:
        out = {k: v for k, v in row.items() if k in ("run_id", "method", "candidate_id", "genotype", "params",
                                                     "device", "epoch")}
        out.update(fields)
        out.update({k: result.get(k, row.get(k)) for k in keys if result.get(k, row.get(k)) is not None})
        out.update(stage=method.ablation_stage, round=None, wall_seconds=row["total_wall_seconds"],
                   train_epochs=cfg.train.epochs, warmup=cfg.regan.warmup if cfg.regan.enabled else None)
        return [out]

    fit(config, cfg, run, method=cfg.method, fields=fields, last_rows=final)
