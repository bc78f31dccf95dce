"""`raynas results`: a readable default selection of columns, every column with --all, full run ids, stages in
the order they ran."""

from __future__ import annotations

import pandas as pd

from raynas.results import RunDir
from raynas.results.table import format_table, in_run_order, readable_columns

LONG = "quickstart-classify-darts-seed-ablation-20261206-111850"  # 55 characters, longer than a cell


def _wide_rows(n: int = 3) -> list[dict]:
    """DAMGAN search rows with the ~30 columns a real search writes (α per edge, costs, the genotype)."""
    rows = []
    for epoch in range(1, n + 1):
        row = {"run_id": LONG, "method": "damgan", "stage": "search", "epoch": epoch, "candidate_id": "d6e4f_00000",
               "genotype": '{"space": "damgan-g", "cells": [' + "x" * 200 + "]}", "params": 81000 + epoch,
               "is_mean": 1.5, "fid": 150.0 - epoch, "seed": 0, "d_loss": 0.5, "g_loss": 1.1,
               "alpha_entropy_mean": 1.44, "alpha_margin_mean": 0.001, "wall_seconds": 50.0,
               "alpha_table": '{"cell0.up[0]": [' + "2.0, " * 30 + "]}", "images_per_s": 27.0, "kid_std": 0.1}
        row.update({f"alpha/cell{i}.normal[0]/entropy": 1.79 for i in range(10)})
        rows.append(row)
    return rows


def test_default_columns_are_the_methods_key_metrics_and_all_shows_every_column(capsys, tmp_path):
    from conftest import run_cli

    run = RunDir.create(tmp_path, LONG, config={}, seed=0, preset="quickstart", device="cpu")
    run.append(_wide_rows())
    code, out, _ = run_cli(capsys, "results", str(run.path))
    assert code == 0
    header = out.splitlines()[1].split()
    # registered for damgan (raynas/methods/damgan: register_columns) in that order, after which row it is
    assert header == ["stage", "epoch", "candidate_id", "seed", "d_loss", "g_loss", "alpha_entropy_mean",
                      "alpha_margin_mean", "is_mean", "fid", "params", "wall_seconds"]
    assert max(len(line) for line in out.splitlines()[1:]) < 140  # was ~300
    assert f"results of {run.path}" in out and "method damgan" in out and "--all shows every one" in out
    code, out, _ = run_cli(capsys, "results", str(run.path), "--all")
    header = out.splitlines()[1].split()
    assert {"genotype", "alpha_table", "images_per_s", "kid_std", "alpha/cell9.normal[0]/entropy"} <= set(header)
    assert LONG in out  # the run id in full, never "quickstart-classify-darts-seed-abl..."


def test_run_ids_and_candidate_ids_are_never_shortened_and_shown_when_rows_come_from_several_runs():
    df = pd.DataFrame([{"run_id": LONG, "candidate_id": "c" * 60, "genotype": "g" * 60, "fid": 1.0},
                       {"run_id": LONG + "-b", "candidate_id": "d", "genotype": "h", "fid": 2.0}])
    cols = readable_columns(df)
    assert cols == ["run_id", "candidate_id", "fid"]
    text = format_table(df, columns=[*cols, "genotype"])
    assert LONG + "-b" in text and "c" * 60 in text
    assert "g" * 60 not in text and "g" * 37 + "..." in text  # other long cells are still shortened


def test_stages_are_listed_in_the_order_they_ran_then_by_round_and_epoch():
    # EAGAN runs stage g, then d; part files are read in name order, which put d first
    df = pd.DataFrame([{"stage": "d", "round": 1, "candidate_id": "d001-000"},
                       {"stage": "d", "round": 0, "candidate_id": "d000-000"},
                       {"stage": "g", "round": 10, "candidate_id": "g010-000"},
                       {"stage": "g", "round": 2, "candidate_id": "g002-000"}])
    ordered = in_run_order(df, ["g", "d"])
    assert list(ordered["candidate_id"]) == ["g002-000", "g010-000", "d000-000", "d001-000"]
    epochs = pd.DataFrame([{"stage": "train", "epoch": e} for e in (10, 2, 1)])
    assert list(in_run_order(epochs, ["train"])["epoch"]) == [1, 2, 10]


def test_results_cli_sorts_an_eagan_run_by_its_stage_order(capsys, tmp_path):
    from conftest import run_cli

    run = RunDir.create(tmp_path, "eagan-run", config={"method": "eagan", "eagan": {"stages": ["g", "d"]}}, seed=0,
                        preset="quickstart", device="cpu")
    run.append([{"method": "eagan", "stage": "d", "round": 0, "candidate_id": "d000-000", "fid": 1.0, "rank": 0,
                 "best": True, "eval_seconds": 1.0, "genotype": "{}"}])
    run.append([{"method": "eagan", "stage": "g", "round": 0, "candidate_id": "g000-000", "fid": 2.0, "rank": 0,
                 "best": True, "eval_seconds": 1.0, "genotype": "{}"}])
    code, out, _ = run_cli(capsys, "results", str(run.path))
    assert code == 0
    assert out.splitlines()[1].split() == ["stage", "round", "candidate_id", "rank", "best", "fid", "eval_seconds"]
    body = [line.split()[0] for line in out.splitlines()[3:] if line.strip()]
    assert body[:2] == ["g", "d"]
