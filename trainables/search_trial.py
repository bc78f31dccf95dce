"""The search trial of a differentiable method (DAMGAN, DARTS, SWD-NAS) and its runner, ``raynas search METHOD``.

* ``search_trial``: one search (the method's ``Method.search`` class on ``searchers.differentiable``).
  Every epoch reports the search's step losses, per-edge α entropy and margin (nested under ``alpha``;
  Tune flattens it), their means, the derived genotype and the α table; when the search says so, the
  derived network's scores too. Every epoch is a checkpoint; a killed trial resumes from it.
* ``run_search``: ``--seeds`` searches as parallel trials; the found genotype and α table written to the run
  directory (for a classifier with several seeds, picked by ``trainables.seed_selection``); with
  ``--then-retrain`` the chained retrain of ``trainables.retrain``.

``search_epoch`` (one epoch: train, derive, score, a result row) is shared with ``trainables.grid_cell``.
Trial-config keys besides ``raynas`` / ``run_dir``: dotted config keys such as ``train.seed`` (see
``trainables.common.trial_values``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ray import tune

from raynas.config import RaynasConfig
from raynas.errors import RaynasError
from raynas.methods import SearchOutcome, SearchRequest, get_method, load_object
from raynas.results import RunDir
from raynas.results.schema import result_columns, shown_columns
from raynas.spaces import Genotype
from searchers.differentiable import alpha_means
from trainables.common import (
    RESULT_PARTS,
    base_row,
    flatten_restarts,
    gpu_fraction,
    heal_results,
    image_writer,
    load_state_or_explain,
    maybe_inject_crash,
    maybe_inject_full_disk,
    open_trial_run,
    remember_part,
    report,
    restart_space,
    restarted,
    restore_state,
    trial_config,
    trial_dir,
    trial_id,
    tune_state_unusable,
    user_errors_as_results,
)
from trainables.hparams import log_search_epoch
from trainables.launch import run_trainable
from trainables.retrain import chain_retrain
from trainables.seed_selection import select_best


def zero_cost() -> dict[str, float]:
    """The search cost a trial accumulates over its epochs (checkpointed with it)."""
    return {"search_seconds": 0.0, "search_gpu_seconds": 0.0}


def new_search(cfg: RaynasConfig, state: dict[str, Any] | None = None):
    """The method's in-process search, restored from ``state`` when given."""
    search = load_object(get_method(cfg.method).search)(cfg)
    if state is not None:
        load_state_or_explain(search, state)
    return search


_NOT_ROW = ("epoch",)


def search_epoch(search, cfg: RaynasConfig, run: RunDir, tid: str, gpu: float, writer,
                 cost: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one epoch, derive, maybe evaluate, append the Parquet row; returns (Tune result, row)."""
    started = time.perf_counter()
    stats = search.train_epoch()
    genotype = search.derive_genotype()
    alpha = search.alpha_stats()
    means = alpha_means(alpha)
    g_json, table_json = genotype.to_json(), json.dumps(search.alpha_table())
    params = search.derived_params(genotype)
    fields = search.row_fields()
    result: dict[str, Any] = {**stats, **means, "alpha": alpha, "genotype": g_json, "alpha_table": table_json,
                              "params": params, "epochs_total": search.epochs, **fields}  # for the progress line
    row = {**base_row(run, cfg, tid, "search", search.device, fields), "epoch": search.epoch, "genotype": g_json,
           "params": params, **{k: v for k, v in stats.items() if k not in _NOT_ROW}, **means,
           "alpha_table": table_json}
    if search.eval_due():
        metrics = search.evaluate(genotype)
        result.update(metrics)
        row.update(metrics)
        grid = search.sample_grid(genotype)
        if grid is not None:
            from torchvision.utils import make_grid

            writer.add_image("samples/derived_subnet", make_grid(grid, nrow=8), search.epoch)
            writer.flush()
    wall = time.perf_counter() - started
    cost["search_seconds"] += wall
    cost["search_gpu_seconds"] += wall * gpu
    row.update(wall_seconds=wall, gpu_seconds=wall * gpu, search_gpu_seconds=cost["search_gpu_seconds"])
    result.update(cost)
    run.append([row], key=search_part_key(tid, search.epoch))  # a re-run epoch replaces its row
    log_search_epoch(writer, tid, search.epoch, row)  # TensorBoard HParams: the derived genotype and its scores
    out = trial_dir() / "genotypes"
    out.mkdir(exist_ok=True)
    genotype.save(out / f"epoch_{search.epoch:04d}.json")
    genotype.save(trial_dir() / "genotype.json")
    return result, row


def search_part_key(tid: str, epoch: int) -> str:
    """The key of the result part of one search epoch (its checkpoint keeps the row under it too)."""
    return f"{tid}-search-{epoch}"


@user_errors_as_results
def search_trial(config: dict[str, Any]) -> None:
    """One search trial: report every epoch, checkpoint every epoch, resume after a kill."""
    config, earlier, old_id = restarted(config)  # a trial of a stopped experiment this one continues
    cfg = trial_config(config)
    run = open_trial_run(config, cfg)
    state = restore_state() or earlier or {}
    search = new_search(cfg, state.get("search"))
    run.record_device(str(search.device))
    cost = state.get("cost", zero_cost())
    parts = dict(state.get(RESULT_PARTS) or {})  # every epoch's row, so a resume can rebuild a damaged part
    tid, writer, gpu = old_id or trial_id(), image_writer(), gpu_fraction(search.device)
    if search.done() and earlier is not None:  # continued from its final checkpoint: its outcome once more
        last = (parts.get(search_part_key(tid, search.epoch)) or [{}])[0]
        report({**last, "genotype": search.derive_genotype().to_json(),
                "alpha_table": json.dumps(search.alpha_table())})
    while not search.done():
        result, row = search_epoch(search, cfg, run, tid, gpu, writer, cost)
        remember_part(parts, search_part_key(tid, search.epoch), [row])
        report(result, {"search": search.state_dict(), "cost": cost, RESULT_PARTS: parts})
        maybe_inject_crash(config, search.epoch)
        maybe_inject_full_disk(config, search.epoch)
    writer.close()


# ====================================================================== runner (called by the CLI)
def finish_search(run: RunDir, results, method) -> tuple[Genotype, dict[str, list[float]]]:
    """Write the found genotype and the α table (``Method.outputs``) from the best finished search trial."""
    finished = [r for r in results if (r.metrics or {}).get("genotype")]
    if not finished:
        raise RaynasError(f"no search trial finished with a derived genotype; see {run.where(run.experiment_name)}")
    best = min(finished, key=lambda r: _rank_key(r.metrics, method))
    genotype = Genotype.from_json(best.metrics["genotype"])
    genotype_file, alpha_file = method.outputs[0], method.outputs[1]
    genotype.save(run.path / genotype_file)
    alpha = json.loads(best.metrics["alpha_table"])
    (run.path / alpha_file).write_text(json.dumps(alpha, indent=2) + "\n")
    return genotype, alpha


def _rank_key(metrics: dict[str, Any], method) -> float:
    """Smaller is better: the method's first ablation metric (e.g. FID min, accuracy max)."""
    name, direction = method.ablation_metrics[0]
    value = metrics.get(name)
    if value is None or value != value:
        return float("inf")
    return float(value) if direction == "min" else -float(value)


def run_search(request: SearchRequest) -> SearchOutcome:
    """``raynas search METHOD`` for a differentiable method: ``--seeds`` searches as parallel trials, the
    found genotype and α table written to the run directory, and with ``--then-retrain`` the genotype
    trained by the fixed trainable in ``RUN_DIR/retrain``."""
    cfg, run, options = request.cfg, request.run, request.options
    method = get_method(cfg.method)
    result_columns(method.name)  # a method that registered no result columns fails now, not after its search
    space = None
    seeds = int(options.get("seeds") or 1)
    if not request.resume and seeds > 1:
        space = {"train.seed": tune.grid_search([cfg.train.seed + i for i in range(seeds)])}
    resume = request.resume
    if resume:
        heal_results(run)  # a damaged epoch part: rebuilt from its trial's checkpoint, or the resume stops here
        why = tune_state_unusable(run)
        if why is not None:  # e.g. a full disk: continue the trials from their checkpoints in a new experiment
            space, resume = restart_space(run, why), False
    results = run_trainable(search_trial, cfg, run, resources=request.resources, param_space=space,
                            resume=resume, desc=f"{method.name} search",
                            iterations=getattr(getattr(cfg, method.section, None), "epochs", None))
    flatten_restarts(results)
    outputs = {"genotype": run.path / method.outputs[0], "α table": run.path / method.outputs[1]}
    notes: tuple[str, ...] = ()
    if method.task == "classify" and len([r for r in results if r.config.get("train.seed") is not None]) > 1:
        _, candidates = select_best(request, results, method)
        outputs["candidates"] = run.path / "candidates.parquet"
        notes = ("candidates (validation accuracy after the selection retrain):\n"
                 + candidates.to_string(index=False),)
    else:
        finish_search(run, results, method)
    df = run.read()
    table = df[df["stage"] == "search"].sort_values(["seed", "epoch"]) if "stage" in df else df
    retrain_dir = run.path / "retrain"
    resume_retrain = (retrain_dir / cfg.run.experiment_name).is_dir()
    retrain_hint = f"raynas retrain {run.where(method.outputs[0])} --preset {cfg.preset}"
    runs: tuple[RunDir, ...] = ()
    if options.get("then_retrain") or (request.resume and resume_retrain):
        runs = (chain_retrain(cfg, run, request.resources, options.get("retrain_epochs"), resume=resume_retrain),)
        outputs["retrain"] = retrain_dir
        retrain_hint = None
        notes = (*notes, f"retrained the found genotype in {run.where('retrain')}")
    return SearchOutcome(outputs=outputs, table=table, columns=shown_columns(df, method.name),
                         retrain=retrain_hint, notes=notes, runs=runs)
