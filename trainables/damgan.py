"""Tune function trainables for DAMGAN: a search trial, a k'-ablation cell and an edge-ablation cell.

* ``damgan_search``: one search (:class:`~raynas.gan.damgan_search.DamganSearch`). Every epoch reports
  G/D losses, per-edge α entropy and margin (nested under ``alpha``; Tune flattens it), their means,
  the derived genotype as JSON and the α table; every ``eval_every`` epochs also the derived subnet's
  IS/FID/KID. Every epoch is a checkpoint; a killed trial resumes from it.
* ``damgan_ablation_cell``: search → derive → retrain the genotype with the foundation
  :class:`~raynas.gan.trainer.GANTrainer` (``train.*``, ``retrain_epochs`` overriding train.epochs) →
  evaluate; one checkpoint format for both phases, so a kill in either resumes where it was.
* ``damgan_edge_cell``: retrain a base genotype with one edge switched to ``edge_op`` and evaluate
  (the paper's Figs. 9–10 experiment, one op per trial).

The search phase reads ``damgan.*`` (epochs, batches, learning rates, ...), the retrain phase ``train.*``.
Trial-config keys besides ``raynas`` / ``run_dir``: ``kprime``, ``selector``, ``seed`` (grid axes),
``retrain_epochs``, ``edge``, ``edge_op``, ``base_genotype``, ``edge_alpha`` (op → weight).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import torch
from ray import tune

from raynas.config import RaynasConfig, from_dict
from raynas.errors import ConfigError
from raynas.gan.damgan_search import (
    DamganSearch,
    alpha_means,
    derived_params,
    with_edge_op,
)
from raynas.gan.trainer import GANTrainer
from raynas.results import RunDir
from raynas.spaces import Genotype
from trainables.common import (
    image_writer,
    load_state_or_explain,
    maybe_inject_crash,
    report,
    restore_state,
    trial_dir,
    trial_id,
    user_errors_as_results,
)

METHOD = "damgan"


# ====================================================================== config and cost
def trial_config(config: dict[str, Any]) -> RaynasConfig:
    """The run's config with this trial's grid values (k', selector, seed) applied and re-validated."""
    data = copy.deepcopy(config["raynas"])
    data["method"] = METHOD
    damgan = data.setdefault("damgan", {})
    if config.get("kprime") is not None:
        damgan["kprime"] = config["kprime"]
    if config.get("selector") is not None:
        damgan["selector"] = config["selector"]
    if config.get("seed") is not None:
        data.setdefault("train", {})["seed"] = config["seed"]
    return from_dict(RaynasConfig, data)


def retrain_config(cfg: RaynasConfig, genotype_path: str | Path, epochs: int | None = None) -> RaynasConfig:
    """``cfg`` set up to train the genotype's fixed generator (``model.generator=genotype``)."""
    data = cfg.to_dict()
    data["model"].update(generator="genotype", g_genotype=str(genotype_path))
    if epochs:
        data["train"]["epochs"] = int(epochs)
    return from_dict(RaynasConfig, data)


def gpu_fraction(device: torch.device) -> float:
    """Share of one GPU this trial holds (Tune's resource request), 0 on CPU: for GPU-seconds."""
    if device.type != "cuda":
        return 0.0
    try:
        gpus = float(tune.get_context().get_trial_resources().required_resources.get("GPU", 0.0))
    except Exception:  # outside a Tune trial (or an old Tune without the API)
        gpus = 0.0
    return gpus if gpus > 0 else 1.0


def _base_row(run: RunDir, cfg: RaynasConfig, tid: str, stage: str, device: torch.device) -> dict[str, Any]:
    return {"run_id": run.path.name, "method": METHOD, "stage": stage, "round": None, "candidate_id": tid,
            "device": str(device), "kprime": cfg.damgan.kprime, "selector": cfg.damgan.selector,
            "seed": cfg.train.seed}


def _zero_cost() -> dict[str, float]:
    return {"search_seconds": 0.0, "search_gpu_seconds": 0.0}


# ====================================================================== search phase
def _search_epoch(search: DamganSearch, cfg: RaynasConfig, run: RunDir, tid: str, gpu: float, writer,
                  cost: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one epoch, derive, maybe evaluate, append the Parquet row; returns (Tune result, row)."""
    started = time.perf_counter()
    stats = search.train_epoch()
    genotype = search.derive_genotype()
    alpha = search.alpha_stats()
    means = alpha_means(alpha)
    table = search.alpha_table()
    g_json, table_json = genotype.to_json(), json.dumps(table)
    params = derived_params(genotype, cfg)
    result: dict[str, Any] = {**stats, **means, "alpha": alpha, "genotype": g_json, "alpha_table": table_json,
                              "params": params, "kprime": cfg.damgan.kprime, "selector": cfg.damgan.selector}
    row = {**_base_row(run, cfg, tid, "search", search.device), "epoch": search.epoch, "genotype": g_json,
           "params": params, "d_loss": stats["d_loss"], "g_loss": stats["g_loss"], **means,
           "alpha_table": table_json}
    if "arch_loss" in stats:
        row["arch_loss"] = stats["arch_loss"]
    if search.eval_due():
        metrics = search.evaluate_subnet(genotype).as_row()
        result.update(metrics)
        row.update(metrics)
        from torchvision.utils import make_grid

        writer.add_image("samples/derived_subnet", make_grid(search.sample_grid(genotype), nrow=8), search.epoch)
        writer.flush()
    wall = time.perf_counter() - started
    cost["search_seconds"] += wall
    cost["search_gpu_seconds"] += wall * gpu
    row.update(wall_seconds=wall, gpu_seconds=wall * gpu, search_gpu_seconds=cost["search_gpu_seconds"])
    result.update(cost)
    run.append([row])
    out = trial_dir() / "genotypes"
    out.mkdir(exist_ok=True)
    genotype.save(out / f"epoch_{search.epoch:04d}.json")
    genotype.save(trial_dir() / "genotype.json")
    return result, row


def _new_search(cfg: RaynasConfig, state: dict[str, Any] | None) -> DamganSearch:
    search = DamganSearch(cfg)
    if state is not None:
        load_state_or_explain(search, state)
    return search


@user_errors_as_results
def damgan_search(config: dict[str, Any]) -> None:
    """One DAMGAN search trial: report every epoch, checkpoint every epoch, resume after a kill."""
    cfg = trial_config(config)
    run = RunDir.open(config["run_dir"])
    state = restore_state() or {}
    search = _new_search(cfg, state.get("search"))
    cost = state.get("cost", _zero_cost())
    tid, writer, gpu = trial_id(), image_writer(), gpu_fraction(search.device)
    while search.epoch < cfg.damgan.epochs:
        result, _ = _search_epoch(search, cfg, run, tid, gpu, writer, cost)
        report(result, {"search": search.state_dict(), "cost": cost})
        maybe_inject_crash(config, search.epoch)
    writer.close()


# ====================================================================== retrain phase
def _retrain(config: dict[str, Any], cfg: RaynasConfig, genotype: Genotype, state: dict[str, Any],
             final_row: dict[str, Any], run: RunDir, *, epoch_offset: int = 0) -> None:
    """Train ``genotype`` from scratch with GANTrainer, checkpointing ``state`` + trainer every epoch.

    Appends ``final_row`` + the retrained IS/FID/KID after the last epoch. A diverged loss ends the
    trial through ``user_errors_as_results``.
    """
    path = trial_dir() / "retrain_genotype.json"
    genotype.save(path)
    rcfg = retrain_config(cfg, path, config.get("retrain_epochs"))
    trainer = GANTrainer(rcfg)
    if state.get("retrain") is not None:
        load_state_or_explain(trainer, state["retrain"])
    gpu = gpu_fraction(trainer.device)
    seconds = float(state.get("retrain_seconds", 0.0))
    epochs = rcfg.train.epochs
    while trainer.epoch < epochs:
        started = time.perf_counter()
        stats = trainer.train_epoch()  # TrainingDiverged ends the trial cleanly (user_errors_as_results)
        result: dict[str, Any] = {**stats, "phase": "retrain", "retrain_epoch": trainer.epoch,
                                  "epoch": epoch_offset + trainer.epoch}
        last = trainer.epoch == epochs
        if last:
            metrics = trainer.evaluate().as_row()
            result.update(metrics)
        seconds += time.perf_counter() - started
        result.update(retrain_seconds=seconds, retrain_gpu_seconds=seconds * gpu)
        if last:
            row = {**final_row, **metrics, "epoch": epochs, "retrain_epochs": epochs,
                   "genotype": genotype.to_json(), "params": trainer.params()["params_g"],
                   "wall_seconds": seconds, "gpu_seconds": seconds * gpu, "device": str(trainer.device)}
            run.append([row])
        report(result, {**state, "retrain": trainer.state_dict(), "retrain_seconds": seconds})
        maybe_inject_crash(config, epoch_offset + trainer.epoch)
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()


# ====================================================================== ablation cells
@user_errors_as_results
def damgan_ablation_cell(config: dict[str, Any]) -> None:
    """One k'-ablation cell: search, derive α*, retrain the derived generator, evaluate it."""
    cfg = trial_config(config)
    run = RunDir.open(config["run_dir"])
    tid = trial_id()
    state = restore_state() or {"phase": "search"}
    epochs = cfg.damgan.epochs
    if state["phase"] == "search":
        search = _new_search(cfg, state.get("search"))
        cost = state.get("cost", _zero_cost())
        writer, gpu = image_writer(), gpu_fraction(search.device)
        last_eval: dict[str, Any] = {}
        while search.epoch < epochs:
            result, row = _search_epoch(search, cfg, run, tid, gpu, writer, cost)
            last_eval = {f"search_{k}": row[k] for k in ("is_mean", "fid") if row.get(k) is not None}
            result["phase"] = "search"
            if search.epoch == epochs:  # the search's outcome is all the retrain phase needs
                state = {"phase": "retrain", "genotype": result["genotype"], "alpha_table": result["alpha_table"],
                         "cost": cost, "search_eval": last_eval}
            else:
                state = {"phase": "search", "search": search.state_dict(), "cost": cost}
            report(result, state)
            maybe_inject_crash(config, search.epoch)
        writer.close()
        del search
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    final = {**_base_row(run, cfg, tid, "retrain", torch.device("cpu")), **state["cost"],
             **state.get("search_eval", {}), "search_epochs": epochs}
    _retrain(config, cfg, Genotype.from_json(state["genotype"]), state, final, run, epoch_offset=epochs)


@user_errors_as_results
def damgan_edge_cell(config: dict[str, Any]) -> None:
    """Retrain the base genotype with edge ``edge`` set to ``edge_op``; record that op's α weight."""
    cfg = trial_config(config)
    run = RunDir.open(config["run_dir"])
    edge, op = config["edge"], config["edge_op"]
    weights = config.get("edge_alpha") or {}
    if op not in weights:
        raise ConfigError(f"no architecture weight recorded for op {op!r} of edge {edge}")
    genotype = with_edge_op(Genotype.from_json(config["base_genotype"]), edge, op)
    state = restore_state() or {}
    final = {**_base_row(run, cfg, trial_id(), "edge", torch.device("cpu")), "edge": edge, "op": op,
             "alpha_weight": float(weights[op])}
    _retrain(config, cfg, genotype, state, final, run)
