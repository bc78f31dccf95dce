"""``summary.json`` (issue 24): every method's finished run leaves one, from one writer (raynas.results.summary):
the best result and the metric that picked it, the genotype file of the found network, its scores with the
protocol that measured them, and the cost. ``check_summary`` is what every method's tiny search in the method
contract (tests/methods/test_method_contract.py) is held to; the tests here check the writer's choices on small
hand-made runs shaped like each method's rows (no Ray, no training)."""

from __future__ import annotations

import json
from pathlib import Path

from raynas.results import RunDir


def check_summary(method, run: Path) -> dict:
    """What a finished run of ``method`` (a ``Method`` spec) holds in its summary.json, as the user stored it."""
    import pandas as pd

    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"] == str(run) and summary["results"] == str(run / "results")
    assert summary["method"] == (method.name if method.runner else "train") and summary["status"] == "finished"
    assert summary["task"] == method.task
    best = summary["best"]
    genotypes = [name for name in method.outputs if name.endswith(".json") and (run / name).is_file()
                 and "space" in json.loads((run / name).read_text())]
    if method.runner:
        assert genotypes and best["genotype"] == str(run / genotypes[0]), best
        for name in method.outputs:  # every output the run left, by name
            assert summary.get(name) == (str(run / name) if (run / name).is_file() else None), name
    metric = best["selected_by"]["metric"]
    assert metric in (("fid", "is_mean") if method.task == "gan" else ("test_acc", "val_acc"))
    assert isinstance(best["metrics"][metric], float)
    df = RunDir.open(run).read()
    values = pd.to_numeric(df[metric], errors="coerce")
    assert best["metrics"][metric] in set(values.dropna()), "the best score is one of the run's rows"
    protocol = summary["protocol"]
    assert protocol["dataset"]
    if method.task == "gan":
        assert protocol["protocol"] in ("quick", "search", "paper") and protocol["num_samples"] > 0
        assert protocol["extractor"] and protocol["real_split"]
    else:
        assert metric in protocol["splits"]
    cost = summary["cost"]
    assert cost["wall_seconds"] > 0 and (cost["epochs"] or cost["rounds"])
    assert cost["device"]
    return summary


def _run(tmp_path, config: dict, rows: list[dict], outputs: dict[str, dict] | None = None) -> RunDir:
    run = RunDir.create(tmp_path, "r", config=config, seed=3, preset="quickstart", device="cpu")
    run.append(rows)
    for name, data in (outputs or {}).items():
        (run.path / name).write_text(json.dumps(data))
    return run


def test_a_population_search_summarises_the_candidate_it_picked_with_its_protocol(tmp_path):
    from raynas.results.summary import build_summary

    cfg = {"method": "eagan", "task": "gan", "data": {"name": "cifar10"},
           "eval": {"protocol": "search", "num_samples": 0, "extractor": "inception-v3-compat",
                    "real_split": "train", "metrics": ["is", "fid"], "final_protocol": "paper"}}
    rows = [{"stage": "g", "round": r, "epoch": r + 1, "candidate_id": f"g{r}-{i}", "fid": f, "is_mean": 3.0,
             "best": best, "params": 100 + i, "wall_seconds": 2.0, "num_samples": 5000.0,
             "extractor": "inception-v3-compat"}
            for r, i, f, best in ((0, 0, 40.0, False), (0, 1, 50.0, True), (1, 0, 45.0, True), (1, 1, 30.0, False))]
    run = _run(tmp_path, cfg, rows, {"best_G.json": {"space": "eagan-g", "cells": []}})
    summary = build_summary(run)
    # EAGAN marks its picks ``best``: the summary reports the best of those, not a row it never picked
    assert summary["best"]["row"] == {"stage": "g", "round": 1, "epoch": 2, "candidate_id": "g1-0"}
    assert summary["best"]["metrics"] == {"is_mean": 3.0, "fid": 45.0, "params": 100}
    assert summary["best"]["genotype"] == str(run.path / "best_G.json") == summary["best_G.json"]
    assert summary["protocol"] == {"dataset": "cifar10", "metrics": ["is", "fid"], "protocol": "search",
                                   "num_samples": 5000, "extractor": "inception-v3-compat", "real_split": "train",
                                   "final_protocol": "paper"}
    assert summary["cost"]["rounds"] == 2 and summary["cost"]["epochs"] == 2 and summary["cost"]["gpu_seconds"] is None
    assert summary["cost"]["wall_seconds"] == 8.0  # before run.json timed it: the rows' own seconds


def test_a_pipeline_summarises_its_final_network_and_the_split_of_its_accuracy(tmp_path):
    from raynas.results.summary import build_summary

    cfg = {"method": "darts-gal", "task": "classify", "data": {"name": "cifar10", "train_portion": 0.5}}
    rows = [{"stage": "prune", "epoch": 1, "candidate_id": "p", "val_acc": 0.9, "test_acc": 0.95, "gpu_seconds": 1.5},
            {"stage": "final", "candidate_id": "f", "test_acc": 0.6, "params": 1234, "kept_nodes": 3}]
    run = _run(tmp_path, cfg, rows, {"pruned.json": {"space": "darts-gal"}, "best.json": {"space": "darts"}})
    summary = build_summary(run)
    assert summary["best"]["row"]["stage"] == "final"  # the pipeline's result, not its best epoch on the way
    assert summary["best"]["metrics"] == {"test_acc": 0.6, "params": 1234, "kept_nodes": 3}
    assert summary["best"]["genotype"] == str(run.path / "pruned.json")  # its first output: the pruned network
    assert summary["protocol"]["splits"] == {"test_acc": "the dataset's test split"}
    assert summary["cost"]["gpu_seconds"] == 1.5


def test_a_run_without_scores_yet_still_summarises_its_cost(tmp_path):
    from raynas.results.summary import build_summary

    run = _run(tmp_path, {"method": "darts", "task": "classify", "data": {"name": "mnist"}},
               [{"stage": "search", "epoch": 1, "candidate_id": "t", "train_loss": 2.0}])
    summary = build_summary(run)
    assert summary["best"] == {"genotype": None} and summary["cost"]["epochs"] == 1


def test_summary_json_is_written_where_the_run_is(tmp_path):
    from raynas.results.runs import mark_ended, mark_started
    from raynas.results.summary import read_summary, write_summary

    run = _run(tmp_path, {"method": "darts", "task": "classify", "data": {"name": "mnist"}},
               [{"stage": "search", "epoch": 1, "candidate_id": "t", "val_acc": 0.5}])
    mark_started(run)
    mark_ended(run, "finished")
    path = write_summary(run)
    assert path == run.path / "summary.json" and read_summary(run.path)["status"] == "finished"
    assert read_summary(run.path)["cost"]["wall_seconds"] == run.meta["active_seconds"]
