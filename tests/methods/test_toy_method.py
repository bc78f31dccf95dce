"""The plugin proof: a toy differentiable method that lives in ``tests/toy_method`` (its own config section,
genotype space, supernet and derived network, figure and result column) registers itself with one import line
and runs end to end through the CLI, in Ray trial workers too, with no edit to raynas."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import toy_method  # noqa: F401  (the one line that adds the method)
from conftest import run_cli

from raynas.results import RunDir
from raynas.spaces import Genotype


@pytest.mark.slow
def test_a_toy_method_from_outside_raynas_searches_shows_and_reports(ray_session, tmp_path, capsys):
    code, out, err = run_cli(capsys, "search", "toy", "--output-dir", str(tmp_path), "--name", "toy",
                             "--resources", "cpu=1", "--set", "data.limit=64", "--set", "data.test_limit=16",
                             "--set", "toy.channels=3")
    assert code == 0, err
    assert "toy_score" in out  # the outcome table shows the column the toy registered
    run = RunDir.open(tmp_path / "toy")
    best = Genotype.load(run.path / "best.json")  # the toy space's genotype, validated by its registered space
    assert best.space == "toy" and len(best.cells[0]["edge"]) == 2
    alpha = json.loads((run.path / "alpha.json").read_text())
    assert sorted(alpha) == ["cell0.edge[0]", "cell0.edge[1]"] and all(len(w) == 3 for w in alpha.values())

    rows = run.read()  # written in the trial's worker, by the toy's search
    search = rows[rows["stage"] == "search"]
    assert len(search) == 1 and search["method"].iloc[0] == "toy"
    assert pd.api.types.is_float_dtype(search["toy_score"]) and 1 / 3 < search["toy_score"].iloc[0] <= 1
    assert Genotype.from_json(search["genotype"].iloc[0]) == best
    params = 3 * 3 * 3 + 3 * 10 + 10 + sum(9 for op in best.cells[0]["edge"] if op == "conv_1x1")
    assert search["params"].iloc[0] == params  # C=3: stem 1->3, head 3->10, each conv_1x1 3x3

    code, out, err = run_cli(capsys, "arch", "show", str(run.path / "best.json"), "--channels", "3", "--json",
                             "--png", str(tmp_path / "arch.png"))
    assert code == 0, err
    shown = json.loads(out[:out.rindex("}") + 1])
    assert shown["space"] == "toy" and shown["ops"] == list(best.cells[0]["edge"]) and shown["params"] == params
    assert (tmp_path / "arch.png").read_bytes()[:4] == b"\x89PNG"

    figures = [run.path / "plots" / "best.png", run.path / "plots" / "toy_score.png"]  # its diagram, its run figure
    for figure in figures:
        figure.unlink(missing_ok=True)
    code, out, err = run_cli(capsys, "report", str(run.path))
    assert code == 0, err
    for figure in figures:
        assert figure.read_bytes()[:4] == b"\x89PNG" and figure.name in out + err
