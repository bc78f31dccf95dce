"""``raynas compare``: methods × seeds as one Tune experiment, every trial held to the same budget (EAGAN's
entries, which own their actors, run their seeds afterwards as ``raynas ablate eagan``'s grid cells:
``run_population_arms``).

A trial runs one method's search (its ``Method.search`` on the differentiable loop) with the budget applied:
``epochs`` sets the method's search epochs; ``device_hours`` stops the search at the training step where its
device-seconds (wall-clock seconds of the search on the trial's device) reach the limit. What each trial
actually spent is measured and kept in its result row: search epochs (fractional when stopped mid-epoch),
steps, seconds, GPU-seconds and training FLOPs (the first ``FLOP_SAMPLE_STEPS`` steps counted op by op with
PyTorch's FLOP counter, forward, backward and α step included, their mean times the steps taken; a search that
trains networks of its own reports its own count). With ``then_retrain`` the found genotype is then trained from
scratch (``train.*``, ``model.*``) and scored on the test split, which is the metric compared; otherwise the
search's own validation score is.

Trial-config keys besides ``raynas`` / ``run_dir``: ``compare_method``, ``compare_configs`` (every method's
resolved config), ``train.seed``, ``budget``,
``then_retrain``, ``retrain_epochs``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from ray import tune

from raynas.config import RaynasConfig
from raynas.errors import ConfigError, RunDirError
from raynas.methods import SearchOutcome, SearchRequest, get_method
from raynas.results.compare import COMPARE_SPEC, STAGE, format_comparison, write_comparison
from raynas.spaces import Genotype
from trainables.common import (
    base_row,
    gpu_fraction,
    image_writer,
    maybe_inject_crash,
    open_trial_run,
    report,
    restore_state,
    trial_config,
    trial_id,
)
from trainables.launch import run_trainable
from trainables.retrain import retrain_genotype
from trainables.search_trial import new_search, search_epoch

BUDGET_KEYS = {"epochs": "epochs", "device-hours": "device_hours"}
#: A search's own scores of its result that a comparison row keeps (a classifier's or a generator's)
SCORE_KEYS = ("val_acc", "val_loss", "is_mean", "is_std", "fid", "kid_mean", "kid_std")


#: Steps whose FLOPs are counted op by op; their mean times the steps taken is the trial's training FLOPs (exact
#: where every step is the same network, e.g. DARTS; an unbiased estimate where each step samples its own path).
FLOP_SAMPLE_STEPS = 8


class BudgetSpent(Exception):
    """Raised inside a training step once the trial's device-seconds reach the budget."""


def parse_budget(text: str) -> dict[str, float]:
    """``epochs=E``, ``device-hours=H`` or both (comma-separated) → ``{"epochs": E, "device_hours": H}``."""
    budget: dict[str, float] = {}
    for item in str(text or "").split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or key not in BUDGET_KEYS:
            raise ConfigError(f"--budget {text!r}: write epochs=E, device-hours=H or both (epochs=E,device-hours=H)")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not number > 0 or (key == "epochs" and number != int(number)):
            raise ConfigError(f"--budget {item.strip()!r}: {key} must be a positive "
                              f"{'whole number' if key == 'epochs' else 'number'}")
        budget[BUDGET_KEYS[key]] = int(number) if key == "epochs" else number
    return budget


def compare_config(config: dict[str, Any]) -> RaynasConfig:
    """The trial's config: its method's own resolved config (the preset's section of that method, its ``--set``
    overrides and the budget's epochs, built by the CLI), with the trial's seed."""
    return trial_config({**config, "raynas": config["compare_configs"][config["compare_method"]]})


class StepMeter:
    """Wraps a search's ``train_step``: counts steps, counts the FLOPs of the first ``FLOP_SAMPLE_STEPS`` and stops
    the search at the step where ``cost['search_seconds']`` plus the running epoch reach ``limit`` seconds."""

    def __init__(self, search: Any, cost: dict[str, Any], limit: float, clock: Callable[[], float] = time.perf_counter):
        self.search, self.cost, self.limit, self.clock = search, cost, limit, clock
        self.epoch_started = clock()
        self.step = search.train_step
        search.train_step = self

    def spent(self) -> float:
        """Seconds of the finished epochs (in ``cost``) plus those of the running one."""
        return self.cost["search_seconds"] + (self.clock() - self.epoch_started)

    def __call__(self) -> Any:
        if self.spent() >= self.limit:
            raise BudgetSpent
        counted = self.cost.setdefault("flops_counted", [])
        if len(counted) < FLOP_SAMPLE_STEPS:
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
            with counter:
                out = self.step()
            counted.append(float(counter.get_total_flops()))
            self.cost["flops_per_step"] = sum(counted) / len(counted)
        else:
            out = self.step()
        self.cost["steps"] += 1
        self.cost["train_flops"] = self.cost["flops_per_step"] * self.cost["steps"]
        return out


def search_within_budget(search: Any, cost: dict[str, Any], limit: float, run_epoch: Callable[[], Any],
                         after_epoch: Callable[[Any], None], *, gpu: float = 0.0,
                         clock: Callable[[], float] = time.perf_counter) -> tuple[bool, Any]:
    """Run ``search``'s epochs (``run_epoch`` trains one and adds its seconds to ``cost``; ``after_epoch`` reports
    it) until it is done or ``limit`` seconds are spent, mid-epoch if need be. Returns (stopped by the budget,
    the last finished epoch's result or None)."""
    meter = StepMeter(search, cost, limit, clock)
    result = None
    while not search.done():
        meter.epoch_started = clock()
        try:
            result = run_epoch()
        except BudgetSpent:  # the running epoch's time counts; its row was never written
            partial = clock() - meter.epoch_started
            cost["search_seconds"] += partial
            cost["search_gpu_seconds"] += partial * gpu
            return True, result
        after_epoch(result)
        if cost["search_seconds"] >= limit:
            return not search.done(), result
    return False, result


def _spend(search: Any, cost: dict[str, Any]) -> dict[str, Any]:
    """The measured spend of a search so far, as result-row columns."""
    iters = getattr(search, "iters_per_epoch", 0)
    epochs = cost["steps"] / iters if iters else float(search.step)
    own = getattr(search, "train_flops", None)  # a search that trains networks of its own counts itself
    return {"search_epochs": epochs, "search_steps": cost["steps"] if iters else search.step,
            "search_seconds": cost["search_seconds"], "search_gpu_seconds": cost["search_gpu_seconds"],
            "train_flops": float(own) if own is not None else cost["train_flops"]}


def compare_trial(config: dict[str, Any]) -> None:
    """One (method, seed) of a comparison: the search within the budget, then the retrain when asked."""
    cfg = compare_config(config)
    run = open_trial_run(config, cfg)
    tid = trial_id()
    budget = config.get("budget") or {}
    state = restore_state() or {"phase": "search"}
    if state["phase"] == "search":
        search = new_search(cfg, state.get("search"))
        run.record_device(str(search.device))
        cost = state.get("cost") or {"search_seconds": 0.0, "search_gpu_seconds": 0.0, "steps": 0,
                                     "train_flops": 0.0, "flops_per_step": None}
        writer, gpu = image_writer(), gpu_fraction(search.device)
        limit = float(budget.get("device_hours", math.inf)) * 3600.0

        def after_epoch(result: dict[str, Any]) -> None:
            report({**result, "phase": "search", **_spend(search, cost)},
                   {"phase": "search", "search": search.state_dict(), "cost": cost})
            maybe_inject_crash(config, search.epoch)

        stopped, result = search_within_budget(
            search, cost, limit, lambda: search_epoch(search, cfg, run, tid, gpu, writer, cost)[0], after_epoch,
            gpu=gpu)
        if stopped or not result:  # the budget ended the search: derive from where it stands
            started = time.perf_counter()
            search.epochs = search.epoch  # done(): a search that ranks at its end (random) ranks now
            genotype = search.derive_genotype()
            scores = search.evaluate(genotype)
            wall = time.perf_counter() - started
            cost["search_seconds"] += wall
            cost["search_gpu_seconds"] += wall * gpu
            g_json = genotype.to_json()
        else:
            g_json = result["genotype"]
            scores = {k: result[k] for k in SCORE_KEYS if k in result}
        writer.close()
        fields = {**search.row_fields(), **_spend(search, cost), "budget_stopped": stopped,
                  "params": search.derived_params(Genotype.from_json(g_json)),
                  **{f"search_{k}": v for k, v in scores.items()}}
        state = {"phase": "retrain" if config.get("then_retrain") else "done", "genotype": g_json, "scores": scores,
                 "fields": fields}
        del search
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if not config.get("then_retrain"):
            row = {**base_row(run, cfg, tid, STAGE, torch.device("cpu"), state["fields"]), **scores,
                   "genotype": g_json}
            run.append([row], key=f"{tid}-{STAGE}-final")
            report({"phase": "done", "genotype": g_json, **scores, **fields}, state)
            return
        report({"phase": "search", "genotype": g_json, **fields}, state)
    if state["phase"] == "retrain":
        final = base_row(run, cfg, tid, STAGE, torch.device("cpu"), state["fields"])
        retrain_genotype(config, cfg, Genotype.from_json(state["genotype"]), state, final, run,
                         epoch_offset=math.ceil(state["fields"]["search_epochs"]))


def final_metric(cfg: RaynasConfig, then_retrain: bool) -> tuple[str, str, str]:
    """(column, min|max, what it measures) of the metric a comparison of ``cfg``'s task compares: a classifier's
    accuracy, a generator's FID (lower is better; IS where ``eval.metrics`` has no FID)."""
    if cfg.task == "classify":
        if then_retrain:
            return "test_acc", "max", "test accuracy of the found network after the retrain"
        return "val_acc", "max", ("each search's own validation score (a supernet's or a candidate's): not the same "
                                  "measurement across methods; add --then-retrain for test accuracy after one "
                                  "retrain protocol")
    metric, direction = ("fid", "min") if "fid" in cfg.eval.metrics else ("is_mean", "max")
    if then_retrain:
        return metric, direction, f"{metric} of the found generator after the retrain (train.*, model.*, eval.*)"
    return metric, direction, (f"each search's own {metric} of its pick, scored inside its supernet: not the same "
                               "network across methods; add --then-retrain for the retrained generator's")


def comparison_spec(methods: list[str], seeds: list[int], budget: dict[str, float], then_retrain: bool,
                    retrain_epochs: int | None, cfg: RaynasConfig, pairs: dict[str, str]) -> dict[str, Any]:
    """What a comparison run compares (``compare.json``; a resume and ``raynas report`` read it); ``cfg`` (any
    compared method's config) decides the metric, ``pairs`` names each method's baseline in the paired tests."""
    metric, direction, note = final_metric(cfg, then_retrain)
    return {"methods": methods, "seeds": seeds, "budget": budget, "then_retrain": then_retrain,
            "retrain_epochs": retrain_epochs, "metric": metric, "direction": direction, "metric_note": note,
            "baseline": next(iter(pairs.values()), None), "pairs": pairs}


def run_population_arms(request: SearchRequest, spec: dict[str, Any]) -> None:
    """The entries whose method owns its actors (eagan, eagan-random): each runs its seeds as the cells of
    ``raynas ablate``'s grid route (the method's ``ablation_runner``, one whole search per cell, one after
    another) in ``RUN_DIR/arms/ENTRY``, which resumes at its unfinished cell; each finished cell becomes the
    entry's ``compare`` row with its spend (wall seconds of the search, GPU seconds at the actors' GPU shares,
    supernet epochs; FLOPs are not counted inside the actors). ``device_hours`` ends a stage after the round in
    which the search's seconds reach it."""
    from raynas.config import from_dict
    from raynas.methods import load_object
    from raynas.results import RunDir

    run = request.run
    for label in spec["methods"]:
        method = get_method(spec.get("arms", {}).get(label, label))
        if method.shape == "differentiable":
            continue
        cfg = from_dict(RaynasConfig, spec["configs"][label])
        sub = RunDir.create(run.path / "arms", label, config=cfg.to_dict(), seed=cfg.train.seed, preset=cfg.preset,
                            device=cfg.train.device, exist_ok=True)
        cells = [{"train.seed": seed} for seed in spec["seeds"]]
        limit = spec["budget"].get("device_hours")
        options = {"cells": cells, "budget_seconds": float(limit) * 3600.0 if limit else None}
        load_object(method.ablation_runner)(SearchRequest(cfg=cfg, run=sub, options=options,
                                                          progress=request.progress))
        finals = sub.read()
        finals = finals[finals["stage"] == "final"].drop_duplicates("candidate_id", keep="last")
        e, rows = cfg.eagan, []
        done = set(run.read().get("candidate_id", []))
        for _, f in finals.iterrows():
            if f"{label}-{int(f['seed'])}" in done:
                continue
            gpu = e.host_gpu + e.workers * e.evaluator_gpu if "cuda" in str(f.get("device") or "") else 0.0
            rows.append({"run_id": run.path.name, "method": label, "stage": STAGE, "seed": int(f["seed"]),
                         "candidate_id": f"{label}-{int(f['seed'])}", "genotype": f["genotype"],
                         "params": f["params"], "is_mean": f["is_mean"], "fid": f["fid"],
                         "search_epochs": float(f["search_epochs"]), "search_steps": None,
                         "search_seconds": float(f["search_seconds"]),
                         "search_gpu_seconds": float(f["search_seconds"]) * gpu, "train_flops": math.nan,
                         "budget_stopped": bool(f.get("budget_stopped", False)), "device": f.get("device"),
                         "cell_dir": f["cell_dir"]})
            if spec["then_retrain"]:
                rows[-1].update(retrain_generator(cfg, sub.path / "cells" / str(f["candidate_id"]),
                                                  spec["retrain_epochs"], int(f["seed"])))
            run.append(rows[-1:], key=f"{label}-{int(f['seed'])}-{STAGE}")  # one per cell: a resume keeps it


def retrain_generator(cfg: RaynasConfig, cell_dir: Any, epochs: int | None, seed: int) -> dict[str, Any]:
    """An EAGAN cell's best generator trained from scratch with the comparison's one protocol (``train.*``,
    ``model.*``, ``eval.*``; ``epochs`` overrides train.epochs), in the driver (EAGAN's cells hold no Tune trial):
    its scores and spend as the row's metric columns. Not checkpointed: a killed comparison redoes it."""
    import dataclasses

    from raynas.fixed_training import fixed_trainer, retrain_config

    rcfg = retrain_config(cfg, cell_dir / "best_G.json", epochs)
    rcfg = dataclasses.replace(rcfg, train=dataclasses.replace(rcfg.train, seed=seed))
    trainer = fixed_trainer(rcfg)
    started = time.perf_counter()
    while trainer.epoch < trainer.epochs:
        trainer.train_epoch()
    scores = trainer.score()
    seconds = time.perf_counter() - started
    return {**scores, "retrain_epochs": trainer.epochs, "params": trainer.headline_params(),
            "retrain_seconds": seconds, "retrain_gpu_seconds": seconds * gpu_fraction(trainer.device)}


def run_compare(request: SearchRequest) -> SearchOutcome:
    """The comparison's Tune experiment (the searches on the differentiable loop) and EAGAN's entries (see
    ``run_population_arms``), then its table, summary, paired tests and figure."""
    cfg, run = request.cfg, request.run
    if not (run.path / COMPARE_SPEC).is_file():
        raise RunDirError(f"{run.location} is not a `raynas compare` run (it has no {COMPARE_SPEC}); resume it with "
                          "the command that started it")
    spec = json.loads((run.path / COMPARE_SPEC).read_text())
    arms = spec.get("arms", {})
    tuned = [m for m in spec["methods"] if get_method(arms.get(m, m)).shape == "differentiable"]
    if tuned:
        space = None
        if not request.resume:
            space = {"compare_method": tune.grid_search(tuned), "compare_configs": spec["configs"],
                     "train.seed": tune.grid_search(spec["seeds"]),
                     "budget": spec["budget"], "then_retrain": spec["then_retrain"],
                     "retrain_epochs": spec["retrain_epochs"]}
        run_trainable(compare_trial, cfg, run, resources=request.resources, param_space=space,
                      resume=request.resume)
    run_population_arms(request, spec)
    write_comparison(run.path, run.read(), spec)
    return SearchOutcome(outputs={"table": run.path / "compare.parquet",
                                  "summary": run.path / "compare_summary.parquet",
                                  "tests": run.path / "compare_tests.parquet"},
                         text=format_comparison(run.path))
