"""One cell of ``raynas ablate METHOD --grid ...`` for a differentiable method (DAMGAN, DARTS, SWD-NAS).

``ablation_cell``: search → derive → retrain the genotype with the task's fixed trainer
(``trainables.retrain.retrain_genotype``: ``train.*``, ``retrain_epochs`` overriding train.epochs) → score. One
checkpoint format for both phases, so a kill in either resumes where it was.

Trial-config keys besides ``raynas`` / ``run_dir``: the grid axes as dotted config keys (``damgan.kprime``,
``train.seed``) or the method's short aliases (``kprime``, ``selector``, ``seed``), and ``retrain_epochs``.
"""

from __future__ import annotations

from typing import Any

import torch

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
    user_errors_as_results,
)
from trainables.retrain import retrain_genotype
from trainables.search_trial import new_search, search_epoch, zero_cost


def grid_values(config: dict[str, Any]) -> dict[str, Any]:
    """This trial's grid values by short column name (``damgan.kprime`` → ``kprime``)."""
    return {k.rsplit(".", 1)[-1]: v for k, v in config.items() if "." in k and not k.startswith("_")}


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
        cost = state.get("cost", zero_cost())
        writer, gpu = image_writer(), gpu_fraction(search.device)
        last_eval: dict[str, Any] = {}
        while not search.done():
            result, row = search_epoch(search, cfg, run, tid, gpu, writer, cost)
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
    final = {**base_row(run, cfg, tid, "retrain", torch.device("cpu"), state.get("fields", fields)),
             **state["cost"], **state.get("search_eval", {}), "search_epochs": state["search_epochs"]}
    retrain_genotype(config, cfg, Genotype.from_json(state["genotype"]), state, final, run,
                     epoch_offset=state["search_epochs"])
