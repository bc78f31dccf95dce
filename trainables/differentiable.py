"""Tune trainables of the differentiable searches (DAMGAN, DARTS, SWD-NAS), by role, and their runners.

* ``search_trial``: one search (the method's ``Method.search`` class on ``searchers.differentiable``).
  Every epoch reports the search's step losses, per-edge α entropy and margin (nested under ``alpha``;
  Tune flattens it), their means, the derived genotype and the α table; when the search says so, the
  derived network's scores too. Every epoch is a checkpoint; a killed trial resumes from it.
* ``ablation_cell``: search → derive → retrain the genotype with the task's fixed trainer
  (``raynas.train``; ``train.*``, ``retrain_epochs`` overriding train.epochs) → score. One checkpoint
  format for both phases, so a kill in either resumes where it was.
* ``edge_cell``: retrain a base genotype with one edge switched to ``edge_op`` (DAMGAN's Figs. 9–10).

Trial-config keys besides ``raynas`` / ``run_dir``: dotted config keys (the grid axes, e.g.
``damgan.kprime``, ``train.seed``), their short aliases (``kprime``, ``selector``, ``seed``),
``retrain_epochs``, and for edge cells ``edge``, ``edge_op``, ``base_genotype``, ``edge_alpha``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from ray import tune

from raynas.config import RaynasConfig, apply_overrides, from_dict
from raynas.errors import ConfigError, RaynasError
from raynas.methods import SearchOutcome, SearchRequest, get_method, load_object
from raynas.results import RunDir
from raynas.spaces import Genotype
from raynas.train import fixed_trainer, retrain_config
from searchers.differentiable import alpha_means
from trainables.common import (
    image_writer,
    load_state_or_explain,
    maybe_inject_crash,
    open_trial_run,
    report,
    restore_state,
    trial_dir,
    trial_id,
    trial_raynas_dict,
    user_errors_as_results,
)
from trainables.hparams import log_search_epoch
from trainables.launch import run_trainable


# ====================================================================== config and cost
def trial_config(config: dict[str, Any]) -> RaynasConfig:
    """The run's config with this trial's grid values applied and re-validated."""
    data = trial_raynas_dict(config)  # apply_overrides copies it
    method = get_method(data["method"])
    aliases = {**method.grid_aliases, "seed": "train.seed"}
    overrides = [f"{aliases.get(k, k)}={json.dumps(v)}" for k, v in config.items()
                 if v is not None and (k in aliases or ("." in k and k.split(".")[0] in data))]
    return from_dict(RaynasConfig, apply_overrides(data, overrides))


def grid_values(config: dict[str, Any]) -> dict[str, Any]:
    """This trial's grid values by short column name (``damgan.kprime`` → ``kprime``)."""
    return {k.rsplit(".", 1)[-1]: v for k, v in config.items() if "." in k and not k.startswith("_")}


def gpu_fraction(device: torch.device) -> float:
    """Share of one GPU this trial holds (Tune's resource request), 0 on CPU: for GPU-seconds."""
    if device.type != "cuda":
        return 0.0
    try:
        gpus = float(tune.get_context().get_trial_resources().required_resources.get("GPU", 0.0))
    except Exception:  # outside a Tune trial (or an old Tune without the API)
        gpus = 0.0
    return gpus if gpus > 0 else 1.0


def _base_row(run: RunDir, cfg: RaynasConfig, tid: str, stage: str, device: torch.device,
              fields: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run.path.name, "method": cfg.method, "stage": stage, "round": None, "candidate_id": tid,
            "device": str(device), "seed": cfg.train.seed, **fields}


def _zero_cost() -> dict[str, float]:
    return {"search_seconds": 0.0, "search_gpu_seconds": 0.0}


def new_search(cfg: RaynasConfig, state: dict[str, Any] | None = None):
    """The method's in-process search, restored from ``state`` when given."""
    search = load_object(get_method(cfg.method).search)(cfg)
    if state is not None:
        load_state_or_explain(search, state)
    return search


# ====================================================================== search phase
_NOT_ROW = ("epoch",)


def _search_epoch(search, cfg: RaynasConfig, run: RunDir, tid: str, gpu: float, writer,
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
                              "params": params, **fields}
    row = {**_base_row(run, cfg, tid, "search", search.device, fields), "epoch": search.epoch, "genotype": g_json,
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
    run.append([row], key=f"{tid}-search-{search.epoch}")  # a re-run epoch replaces its row
    log_search_epoch(writer, tid, search.epoch, row)  # TensorBoard HParams: the derived genotype and its scores
    out = trial_dir() / "genotypes"
    out.mkdir(exist_ok=True)
    genotype.save(out / f"epoch_{search.epoch:04d}.json")
    genotype.save(trial_dir() / "genotype.json")
    return result, row


@user_errors_as_results
def search_trial(config: dict[str, Any]) -> None:
    """One search trial: report every epoch, checkpoint every epoch, resume after a kill."""
    cfg = trial_config(config)
    run = open_trial_run(config, cfg)
    state = restore_state() or {}
    search = new_search(cfg, state.get("search"))
    run.record_device(str(search.device))
    cost = state.get("cost", _zero_cost())
    tid, writer, gpu = trial_id(), image_writer(), gpu_fraction(search.device)
    while not search.done():
        result, _ = _search_epoch(search, cfg, run, tid, gpu, writer, cost)
        report(result, {"search": search.state_dict(), "cost": cost})
        maybe_inject_crash(config, search.epoch)
    writer.close()


# ====================================================================== retrain phase
def _retrain(config: dict[str, Any], cfg: RaynasConfig, genotype: Genotype, state: dict[str, Any],
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


# ====================================================================== ablation cells
@user_errors_as_results
def ablation_cell(config: dict[str, Any]) -> None:
    """One grid cell: search, derive, retrain the derived network, score it."""
    cfg = trial_config(config)
    run = open_trial_run(config, cfg)
    tid = trial_id()
    state = restore_state() or {"phase": "search"}
    fields = grid_values(config)
    if state["phase"] == "search":
        search = new_search(cfg, state.get("search"))
        epochs = search.epochs
        cost = state.get("cost", _zero_cost())
        writer, gpu = image_writer(), gpu_fraction(search.device)
        last_eval: dict[str, Any] = {}
        while not search.done():
            result, row = _search_epoch(search, cfg, run, tid, gpu, writer, cost)
            last_eval = {f"search_{k}": row[k] for k in search.headline_metrics if row.get(k) is not None}
            result["phase"] = "search"
            if search.done():  # the search's outcome is all the retrain phase needs
                state = {"phase": "retrain", "genotype": result["genotype"], "alpha_table": result["alpha_table"],
                         "cost": cost, "search_eval": last_eval, "search_epochs": epochs,
                         "fields": {**search.row_fields(), **fields}}
            else:
                state = {"phase": "search", "search": search.state_dict(), "cost": cost}
            report(result, state)
            maybe_inject_crash(config, search.epoch)
        writer.close()
        del search
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    final = {**_base_row(run, cfg, tid, "retrain", torch.device("cpu"), state.get("fields", fields)),
             **state["cost"], **state.get("search_eval", {}), "search_epochs": state["search_epochs"]}
    _retrain(config, cfg, Genotype.from_json(state["genotype"]), state, final, run,
             epoch_offset=state["search_epochs"])


@user_errors_as_results
def edge_cell(config: dict[str, Any]) -> None:
    """Retrain the base genotype with edge ``edge`` set to ``edge_op``; record that op's α weight."""
    from raynas.methods.damgan.edges import with_edge_op

    cfg = trial_config(config)
    run = open_trial_run(config, cfg)
    edge, op = config["edge"], config["edge_op"]
    weights = config.get("edge_alpha") or {}
    if op not in weights:
        raise ConfigError(f"no architecture weight recorded for op {op!r} of edge {edge}")
    genotype = with_edge_op(Genotype.from_json(config["base_genotype"]), edge, op)
    state = restore_state() or {}
    fields = {"kprime": cfg.damgan.kprime, "selector": config.get("selector", cfg.damgan.selector)}
    final = {**_base_row(run, cfg, trial_id(), "edge", torch.device("cpu"), fields), "edge": edge, "op": op,
             "alpha_weight": float(weights[op])}
    _retrain(config, cfg, genotype, state, final, run)


# ====================================================================== runners (called by the CLI)
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


@user_errors_as_results
def select_cell(config: dict[str, Any]) -> None:
    """Score one searched cell as DARTS picks among its searches: retrain it on the search's training part for
    ``select_epochs`` and measure the validation part (the test split stays unseen)."""
    from raynas.classify.trainer import ClassifierTrainer

    cfg = trial_config(config)
    run = open_trial_run(config, cfg)
    seed, genotype = config["candidate"]["seed"], Genotype.from_json(config["candidate"]["genotype"])
    path = trial_dir() / "candidate.json"
    genotype.save(path)
    rcfg = retrain_config(cfg, path, config["select_epochs"])
    trainer = ClassifierTrainer.for_config(rcfg, holdout=True)
    state = restore_state()
    if state is not None:
        load_state_or_explain(trainer, state)
    while trainer.epoch < trainer.epochs:
        stats = trainer.train_epoch()
        result = {**stats, **(trainer.score() if trainer.epoch == trainer.epochs else {})}
        if trainer.epoch == trainer.epochs:
            run.append(key=f"select-seed{seed}", rows=[{
                "run_id": run.path.name, "method": cfg.method, "stage": "select", "epoch": trainer.epoch,
                         "round": None, "candidate_id": f"seed{seed}", "seed": seed, "genotype": genotype.to_json(),
                         "params": trainer.headline_params(), "val_acc": result["val_acc"],
                         "val_loss": result["val_loss"], "device": str(trainer.device)}])
        report(result, trainer.state_dict())


def select_best(request: SearchRequest, results, method) -> tuple[Genotype, Any]:
    """``--seeds N`` on a classifier search: retrain every seed's cell on the validation split (in parallel
    trials, in RUN_DIR/select) and keep the best; writes ``candidates.parquet``."""
    cfg, run = request.cfg, request.run
    finals = {}
    for r in results:
        m = r.metrics or {}
        if m.get("genotype"):
            finals[int(r.config["train.seed"])] = m
    if not finals:
        raise RaynasError(f"no search trial finished with a derived genotype; see {run.where(run.experiment_name)}")
    select_dir = run.path / "select"
    resume = (select_dir / cfg.run.experiment_name).is_dir()
    srun = RunDir.open(select_dir) if resume else RunDir.create(
        run.path, "select", config=cfg.to_dict(), seed=cfg.train.seed, preset=cfg.preset, device=cfg.train.device,
        exist_ok=True)
    epochs = getattr(getattr(cfg, method.section), "select_epochs", 10)
    space = None if resume else {"select_epochs": epochs, "candidate": tune.grid_search(
        [{"seed": seed, "genotype": finals[seed]["genotype"]} for seed in sorted(finals)])}
    print(f"\nraynas: picking the best of {len(finals)} cells by a {epochs}-epoch retrain on the validation "
          f"split, in {srun.where()}", flush=True)
    run_trainable(select_cell, cfg, srun, resources=request.resources, param_space=space, resume=resume)
    table = srun.read()
    table = table[table["stage"] == "select"].sort_values("val_acc", ascending=False).reset_index(drop=True)
    if table.empty:
        raise RaynasError(f"no candidate was scored; see {srun.where(srun.experiment_name)}")
    keep = ["seed", "val_acc", "val_loss", "params", "genotype"]
    table[keep].to_parquet(run.path / "candidates.parquet", index=False)
    best = Genotype.from_json(table["genotype"].iloc[0])
    best.save(run.path / method.outputs[0])
    alpha = json.loads(finals[int(table["seed"].iloc[0])]["alpha_table"])
    (run.path / method.outputs[1]).write_text(json.dumps(alpha, indent=2) + "\n")
    return best, table[keep[:-1]]


def run_search(request: SearchRequest) -> SearchOutcome:
    """``raynas search METHOD`` for a differentiable method: ``--seeds`` searches as parallel trials, the
    found genotype and α table written to the run directory, and with ``--then-retrain`` the genotype
    trained by the fixed trainable in ``RUN_DIR/retrain``."""
    cfg, run, options = request.cfg, request.run, request.options
    method = get_method(cfg.method)
    space = None
    seeds = int(options.get("seeds") or 1)
    if not request.resume and seeds > 1:
        space = {"train.seed": tune.grid_search([cfg.train.seed + i for i in range(seeds)])}
    results = run_trainable(search_trial, cfg, run, resources=request.resources, param_space=space,
                            resume=request.resume)
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
    return SearchOutcome(outputs=outputs, table=table, columns=search_columns(df), retrain=retrain_hint,
                         notes=notes, runs=runs)


def search_columns(df) -> tuple[str, ...]:
    wanted = ("seed", "epoch", "d_loss", "g_loss", "train_loss", "train_acc", "val_loss", "val_acc",
              "alpha_entropy_mean", "alpha_margin_mean", "is_mean", "fid", "params", "wall_seconds")
    return tuple(c for c in wanted if c in df and df[c].notna().any())


def chain_retrain(cfg: RaynasConfig, run: RunDir, resources, epochs: int | None, resume: bool) -> RunDir:
    """The fixed trainable on the found genotype, in the nested run RUN_DIR/retrain."""
    from raynas.train import check_fixed
    from trainables.train import train_fixed

    genotype = run.where(get_method(cfg.method).outputs[0])  # a URI run's genotype is read from the URI
    rcfg = retrain_config(cfg, genotype if run.remote is not None else Path(genotype).resolve(), epochs)
    if resume:
        rrun = RunDir.open(run.path / "retrain")
    else:
        check_fixed(rcfg)
        rrun = RunDir.create(run.path, "retrain", config=rcfg.to_dict(), seed=rcfg.train.seed, preset=rcfg.preset,
                             device=rcfg.train.device, exist_ok=True)
    print(f"\nraynas: retraining the found network in {rrun.where()}", flush=True)
    run_trainable(train_fixed, rcfg, rrun, resources=resources, resume=resume)
    return rrun


def run_edge_ablation(request: SearchRequest) -> SearchOutcome:
    """DAMGAN's edge ablation: search once (or reuse ``--search-run``), then retrain the derived genotype with
    each op of the edge as a Tune grid and correlate the edge's α with the retrained IS."""
    from raynas.methods.damgan.edges import EDGE_SPEC, edge_summary, search_outcome
    from raynas.methods.damgan.figures import draw_edge_ablation
    from raynas.results import format_table
    from raynas.results.ablation import EDGE_CORRELATION, EDGE_SUMMARY

    cfg, run = request.cfg, request.run
    spec_path = run.path / EDGE_SPEC
    if request.resume:
        spec = json.loads(spec_path.read_text())
    else:
        spec = {k: request.options[k] for k in ("edge", "ops", "retrain_epochs", "search_run")}
        spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    edge, ops = spec["edge"], spec["ops"]
    selector = cfg.damgan.selector
    if spec["search_run"]:  # the α weights being judged come from that run's selector
        selector = RunDir.open(spec["search_run"]).config.get("damgan", {}).get("selector", selector)
        search_path = Path(spec["search_run"])
    else:
        search_path = run.path / "search"
        if not (search_path / "best_G.json").is_file():
            resume = (search_path / cfg.run.experiment_name).is_dir()
            srun = (RunDir.open(search_path) if resume else
                    RunDir.create(run.path, "search", config=cfg.to_dict(), seed=cfg.train.seed, preset=cfg.preset,
                                  device=cfg.train.device, exist_ok=True))
            print(f"raynas: searching with the {selector} selector in {srun.where()}", flush=True)
            results = run_trainable(search_trial, cfg, srun, resources=request.resources, resume=resume)
            finish_search(srun, results, get_method("damgan"))
    base, weights = search_outcome(search_path, edge)
    print("raynas: α of " + edge + ": " + ", ".join(f"{op}={weights[op]:.4g}" for op in ops), flush=True)
    resume = run.tune_dir.is_dir()
    space = None if resume else {
        "edge": edge, "edge_op": tune.grid_search(ops), "base_genotype": base.to_json(), "selector": selector,
        "edge_alpha": {op: weights[op] for op in ops}, "retrain_epochs": spec["retrain_epochs"]}
    run_trainable(edge_cell, cfg, run, resources=request.resources, param_space=space, resume=resume,
                  max_concurrent=request.options.get("max_concurrent") or 0)
    table, corr = edge_summary(run.read(), edge)
    if table.empty:
        raise ConfigError(f"no retrained results for edge {edge} in {run.where()}")
    table.to_parquet(run.path / EDGE_SUMMARY, index=False)
    (run.path / EDGE_CORRELATION).write_text(json.dumps(corr, indent=2) + "\n")
    plot = draw_edge_ablation(table, corr, run.plots_dir / "ablation_edge.png")
    print(format_table(table, columns=[c for c in ("op", "alpha_weight", "is_mean", "fid", "params") if c in table]))
    c = corr.get("is", {})
    print(f"\nraynas: {edge} ({selector}): α vs IS  Pearson {c.get('pearson'):.3f} "
          f"(p={c.get('pearson_p'):.3g}), Spearman {c.get('spearman'):.3f} (p={c.get('spearman_p'):.3g}), "
          f"n={int(c.get('n', 0))}")
    print(f"raynas: table  {run.where(EDGE_SUMMARY)}   correlation {run.where(EDGE_CORRELATION)}")
    if plot:
        print(f"raynas: plot   {run.where('plots', Path(plot).name)}")
    return SearchOutcome(outputs={"table": run.path / EDGE_SUMMARY, "correlation": run.path / EDGE_CORRELATION})
