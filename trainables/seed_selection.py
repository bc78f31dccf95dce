"""DARTS' seed selection: with ``--seeds N`` a classifier search keeps the best of its N cells, judged by a
short retrain of each on the search's training part, scored on its validation part (the test split stays
unseen), as one Tune grid in the nested run ``RUN_DIR/select``.

* ``select_cell``: the trial that retrains and scores one seed's cell.
* ``select_best``: the runner's step that launches them and writes ``candidates.parquet``, the best genotype
  and its α table.
"""

from __future__ import annotations

import json
from typing import Any

from ray import tune

from raynas.errors import RaynasError
from raynas.fixed_training import retrain_config
from raynas.methods import SearchRequest
from raynas.results import RunDir
from raynas.spaces import Genotype
from trainables.common import (
    load_state_or_explain,
    open_trial_run,
    report,
    restore_state,
    trial_config,
    trial_dir,
    user_errors_as_results,
)
from trainables.launch import run_trainable


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
    from raynas.cli.common import say

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
    print()
    say(f"picking the best of {len(finals)} cells by a {epochs}-epoch retrain on the validation split, in "
        f"{srun.where()}")
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
