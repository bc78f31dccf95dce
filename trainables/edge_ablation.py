"""DAMGAN's edge ablation (``raynas ablate damgan-edge``, the paper's Figs. 9–10): search once (or reuse a
finished search), retrain the derived genotype with each candidate op of one edge as a Tune grid, and
correlate the edge's α weights with the retrained IS.

* ``edge_cell``: the trial that retrains the base genotype with the edge switched to ``edge_op``; trial-config
  keys besides ``raynas`` / ``run_dir``: ``edge``, ``edge_op``, ``base_genotype``, ``edge_alpha``,
  ``selector``, ``retrain_epochs``.
* ``run_edge_ablation``: the runner.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from ray import tune

from raynas.errors import ConfigError
from raynas.methods import SearchOutcome, SearchRequest, get_method
from raynas.results import RunDir
from raynas.results.schema import result_columns
from raynas.spaces import Genotype
from trainables.common import base_row, open_trial_run, restore_state, trial_config, trial_id, user_errors_as_results
from trainables.launch import run_trainable
from trainables.retrain import retrain_genotype
from trainables.search_trial import finish_search, search_trial

COLUMNS = "damgan-edge"  # the name its table's result columns are registered under (raynas.results.schema)


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
    final = {**base_row(run, cfg, trial_id(), "edge", torch.device("cpu"), fields), "edge": edge, "op": op,
             "alpha_weight": float(weights[op])}
    retrain_genotype(config, cfg, genotype, state, final, run)


def run_edge_ablation(request: SearchRequest) -> SearchOutcome:
    """DAMGAN's edge ablation: search once (or reuse ``--search-run``), then retrain the derived genotype with
    each op of the edge as a Tune grid and correlate the edge's α with the retrained IS."""
    from raynas.cli.common import say
    from raynas.methods.damgan.edges import EDGE_SPEC, edge_summary, search_outcome
    from raynas.methods.damgan.figures import draw_edge_ablation
    from raynas.results import format_table
    from raynas.results.ablation import EDGE_CORRELATION, EDGE_SUMMARY

    cfg, run = request.cfg, request.run
    columns = result_columns(COLUMNS)
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
            say(f"searching with the {selector} selector in {srun.where()}")
            results = run_trainable(search_trial, cfg, srun, resources=request.resources, resume=resume)
            finish_search(srun, results, get_method("damgan"))
    base, weights = search_outcome(search_path, edge)
    say("α of " + edge + ": " + ", ".join(f"{op}={weights[op]:.4g}" for op in ops))
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
    print(format_table(table, columns=[c for c in columns if c in table]))
    c = corr.get("is", {})
    print()
    say(f"{edge} ({selector}): α vs IS  Pearson {c.get('pearson'):.3f} (p={c.get('pearson_p'):.3g}), "
        f"Spearman {c.get('spearman'):.3f} (p={c.get('spearman_p'):.3g}), n={int(c.get('n', 0))}")
    say(f"table  {run.where(EDGE_SUMMARY)}   correlation {run.where(EDGE_CORRELATION)}")
    if plot:
        say(f"plot   {run.where('plots', Path(plot).name)}")
    return SearchOutcome(outputs={"table": run.path / EDGE_SUMMARY, "correlation": run.path / EDGE_CORRELATION})
