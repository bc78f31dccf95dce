"""raynas.results: run directories, append-only Parquet results, Pareto fronts, tables."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import yaml

from raynas.errors import RunDirError
from raynas.results import RESULT_COLUMNS, RunDir, dominates, export_csv, format_table, pareto_front


@dataclass(frozen=True)
class _Cfg:
    lr: float = 2e-4
    metrics: tuple[str, ...] = ("is", "fid")


def _make(tmp_path, name="run1") -> RunDir:
    return RunDir.create(str(tmp_path / "runs"), name, config={"train": _Cfg(), "preset": "quickstart"},
                         seed=7, preset="quickstart", device="cpu")


# ---------------------------------------------------------------------------- RunDir
def test_create_writes_config_and_provenance(tmp_path):
    run = _make(tmp_path)
    assert run.path == tmp_path / "runs" / "run1"
    for d in (run.results_dir, run.plots_dir):
        assert d.is_dir()
    # Issue 13: checkpoints/ and tensorboard/ were created empty in every run; they now appear when written.
    assert not run.checkpoints_dir.exists() and not run.tensorboard_dir.exists()
    cfg = yaml.safe_load((run.path / "config.yaml").read_text())
    assert cfg == {"train": {"lr": 2e-4, "metrics": ["is", "fid"]}, "preset": "quickstart"}
    meta = json.loads((run.path / "run.json").read_text())
    assert meta["seed"] == 7 and meta["preset"] == "quickstart" and meta["device"] == "cpu"
    assert meta["hostname"] and meta["created"]
    v = meta["versions"]
    for key in ("python", "torch", "torchvision", "ray", "pymoo", "torch_fidelity", "numpy", "pandas"):
        assert key in v
    import torch

    assert v["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert RunDir.open(run.path).meta == meta and run.config == cfg


def test_create_refuses_bad_locations(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(RunDirError, match="output_dir"):
        RunDir.create(str(blocker), "run", config={}, seed=0, preset="p", device="cpu")
    with pytest.raises(RunDirError, match="in the way"):
        RunDir.create(str(tmp_path), "afile", config={}, seed=0, preset="p", device="cpu")
    _make(tmp_path)
    with pytest.raises(RunDirError, match="already exists"):
        _make(tmp_path)
    assert RunDir.create(str(tmp_path / "runs"), "run1", config={}, seed=1, preset="p", device="cpu",
                         exist_ok=True).meta["seed"] == 7  # reopened, not overwritten
    with pytest.raises(RunDirError, match="run name"):
        RunDir.create(str(tmp_path), "a/b", config={}, seed=0, preset="p", device="cpu")


def test_open_rejects_non_run_dirs(tmp_path):
    with pytest.raises(RunDirError, match="not a directory"):
        RunDir.open(tmp_path / "missing")
    with pytest.raises(RunDirError, match="not a raynas run directory"):
        RunDir.open(tmp_path)


def test_append_twice_then_read_all_rows(tmp_path):
    run = _make(tmp_path)
    assert run.read().empty and list(run.read().columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    with pytest.raises(RunDirError, match="no results"):
        run.read(require_rows=True)
    p1 = run.append([{"method": "eagan", "candidate_id": "a", "fid": 30.5, "params": 100, "genotype": [1, 2]},
                     {"method": "eagan", "candidate_id": "b", "fid": 25.0, "params": 300}])
    p2 = run.append([{"method": "eagan", "candidate_id": "c", "fid": 40.0, "params": 50, "rank": 1,
                      "d_loss": np.float32(0.5)}])
    assert run.append([]) is None
    assert p1 != p2 and p1.parent == run.results_dir == p2.parent
    assert sorted(run.results_dir.glob("*.parquet")) == [p1, p2]
    df = run.read()
    assert list(df["candidate_id"]) == ["a", "b", "c"]  # write order
    assert list(df.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert (df["run_id"] == "run1").all()
    assert df["fid"].tolist() == [30.5, 25.0, 40.0]
    assert df["rank"].isna().tolist() == [True, True, False]  # union of columns
    assert df["genotype"].iloc[0] == "[1, 2]" and pd.isna(df["genotype"].iloc[1])
    assert df["is_mean"].isna().all()


def test_crash_leftovers_do_not_break_read(tmp_path):
    run = _make(tmp_path)
    run.append([{"candidate_id": "a", "fid": 1.0}])
    good = run.append([{"candidate_id": "b", "fid": 2.0}])
    # a writer killed mid-write leaves a partial temporary file: it must be ignored
    (run.results_dir / ".part-99999999999999999999-dead.parquet.1234.tmp").write_bytes(
        good.read_bytes()[:40])
    df = run.read()
    assert df["candidate_id"].tolist() == ["a", "b"]
    # a damaged finished part (disk fault) is named: never rows silently lost; skipped only when asked
    (run.results_dir / "part-99999999999999999999-bad.parquet").write_bytes(b"garbage")
    from raynas.errors import DamagedResultsError

    with pytest.raises(DamagedResultsError, match="bad.parquet"):
        run.read()
    df = run.read(skip_damaged=True)
    assert df["candidate_id"].tolist() == ["a", "b"]


# ---------------------------------------------------------------------------- Pareto
def _brute_force(values: np.ndarray, directions: list[str]) -> set[int]:
    keep = set()
    for i in range(len(values)):
        if np.isnan(values[i]).any():
            continue
        if not any(j != i and not np.isnan(values[j]).any() and dominates(values[j], values[i], directions)
                   for j in range(len(values))):
            keep.add(i)
    return keep


@pytest.mark.parametrize("objectives", [
    {"fid": "min", "params": "min"},
    {"is_mean": "max", "params": "min"},
    [("fid", "min"), ("is_mean", "max"), ("params", "min")],
    [("fid", "max"), ("is_mean", "max"), ("params", "max")],
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pareto_front_matches_brute_force(objectives, seed):
    rng = np.random.default_rng(seed)
    n = 120
    df = pd.DataFrame({
        "fid": rng.normal(size=n).round(1),      # rounding creates ties and exact duplicates
        "is_mean": rng.normal(size=n).round(1),
        "params": rng.integers(0, 8, size=n).astype(float),
        "name": [f"c{i}" for i in range(n)],
    }, index=np.arange(1000, 1000 + n))
    df.loc[df.index[::17], "fid"] = np.nan
    items = list(objectives.items()) if isinstance(objectives, dict) else objectives
    cols, dirs = [c for c, _ in items], [d for _, d in items]
    expected = _brute_force(df[cols].to_numpy(), dirs)
    front = pareto_front(df, objectives)
    assert {df.index.get_loc(i) for i in front.index} == expected
    assert 0 < len(front) < n
    assert front["fid"].notna().all() or "fid" not in cols


def test_pareto_front_small_hand_case_and_errors():
    df = pd.DataFrame({"fid": [10.0, 20.0, 5.0, 5.0, 30.0, np.nan],
                       "params": [5.0, 1.0, 9.0, 9.0, 1.0, 0.0]})
    front = pareto_front(df, {"fid": "min", "params": "min"})
    assert sorted(front.index.tolist()) == [0, 1, 2, 3]  # 4 is dominated by 1; 5 has NaN
    assert front["fid"].tolist() == [5.0, 5.0, 10.0, 20.0]  # sorted along the front
    assert pareto_front(df, {"fid": "max"}).index.tolist() == [4]
    with pytest.raises(ValueError, match="not in the results"):
        pareto_front(df, {"missing": "min"})
    with pytest.raises(ValueError, match="'min' or 'max'"):
        pareto_front(df, {"fid": "lowest"})
    assert pareto_front(df.iloc[5:], {"fid": "min"}).empty


# ---------------------------------------------------------------------------- tables
def test_format_table_and_csv(tmp_path):
    df = pd.DataFrame({
        "candidate_id": [f"c{i}" for i in range(5)],
        "fid": [12.3456789, np.nan, 3.0, 4.5, 100.0],
        "genotype": ["x" * 100] + ["short"] * 4,
        "is_std": [np.nan] * 5,
    })
    text = format_table(df, max_rows=3)
    lines = text.splitlines()
    assert lines[0].split() == ["candidate_id", "genotype", "fid"]  # RESULT_COLUMNS order
    assert "is_std" not in lines[0]  # all-empty column hidden
    assert "12.35" in text and "..." in lines[2]
    assert len(lines) == 2 + 3 + 1 and "2 more rows" in lines[-1]
    assert max(len(line) for line in lines[:5]) < 100  # long genotypes are shortened
    assert format_table(df.iloc[0:0]) == "(no results)"
    only = format_table(df, columns=["fid"])
    assert only.splitlines()[0].strip() == "fid" and only.splitlines()[3].strip() == "-"
    with pytest.raises(ValueError, match="Unknown column"):
        format_table(df, columns=["nope"])
    out = tmp_path / "sub" / "r.csv"
    export_csv(df, out)
    back = pd.read_csv(out)
    assert back["candidate_id"].tolist() == df["candidate_id"].tolist()
    assert np.allclose(back["fid"], df["fid"], equal_nan=True)
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.csv"]


def test_rows_rewritten_by_a_resumed_run_replace_the_earlier_ones(tmp_path):
    """A resume re-runs the epoch after the last checkpoint and appends its row again: read() keeps the later."""
    from raynas.results import RunDir

    run = RunDir.create(tmp_path, "r", config={}, seed=0, preset="p", device="cpu")
    run.append([{"candidate_id": "t1", "stage": "train", "epoch": 1, "fid": 10.0},
                {"candidate_id": "t1", "stage": "train", "epoch": 2, "fid": 9.0}])
    run.append([{"candidate_id": "t1", "stage": "train", "epoch": 2, "fid": 8.5},
                {"candidate_id": "t2", "stage": "train", "epoch": 2, "fid": 7.0},
                {"candidate_id": None, "epoch": 2, "fid": 1.0}, {"candidate_id": None, "epoch": 2, "fid": 1.0}])
    df = run.read()
    t1 = df[df.candidate_id == "t1"].sort_values("epoch")
    assert t1["fid"].tolist() == [10.0, 8.5]
    assert (df.candidate_id == "t2").sum() == 1
    assert df.candidate_id.isna().sum() == 2  # rows without an identity are never merged


def _search_rows(stage_rounds, seed):
    import random

    rng = random.Random(seed)
    rows = []
    for stage, rounds in stage_rounds:
        for r in range(rounds):
            for i in range(3):
                rows.append({"method": "eagan", "stage": stage, "round": r, "epoch": r,
                             "candidate_id": f"{stage}{r}-{i}", "is_mean": rng.uniform(1, 9),
                             "fid": rng.uniform(10, 90), "params": 10 + i})
    return rows


def test_learning_curves_count_rounds_across_stages_and_compare_runs(tmp_path, capsys, monkeypatch):
    from conftest import run_cli
    from figures import capture_figures, is_png

    from raynas.plots import round_bests

    decoupled = RunDir.create(tmp_path, "decoupled", config={}, seed=0, preset="p", device="cpu")
    rows = _search_rows([("g", 2), ("d", 3)], 0)
    decoupled.append(rows)
    coupled = RunDir.create(tmp_path, "coupled", config={}, seed=0, preset="p", device="cpu")
    coupled.append(_search_rows([("gd", 4)], 1))
    best = round_bests(decoupled.read())
    assert best["stage"].tolist() == ["g", "g", "d", "d", "d"] and best["step"].tolist() == [0, 1, 2, 3, 4]
    for _, b in best.iterrows():
        mine = [x for x in rows if x["stage"] == b["stage"] and x["round"] == b["round"]]
        assert b["best_is"] == max(x["is_mean"] for x in mine) and b["best_fid"] == min(x["fid"] for x in mine)
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "report", str(decoupled.path), "--compare", str(coupled.path))
    assert code == 0, err
    plots = decoupled.path / "plots"
    for name in ("pareto.png", "rounds.png", "compare.png"):
        assert f"raynas: plot {plots / name}" in out.splitlines() and is_png(plots / name)
    # compare.png: each run's best IS and FID per round, rounds counted across stages, one line per stage; a
    # dashed line where the decoupled run's stage d starts
    both = {"decoupled": best, "coupled": round_bests(coupled.read())}
    for ax, col, title in zip(figures[(plots / "compare.png").resolve()].axes, ("best_is", "best_fid"),
                              ("best IS", "best FID")):
        assert (ax.title, ax.xlabel, ax.vlines) == (title, "round (across stages)", [1.5])
        assert ax.legend == ["decoupled g", "decoupled d", "coupled gd"] == [line.label for line in ax.lines]
        for line in ax.lines:
            run, stage = line.label.split(" ")
            b = both[run][both[run]["stage"] == stage]
            assert line.xy.tolist() == [[float(x), float(y)] for x, y in zip(b["step"], b[col])]
    empty = RunDir.create(tmp_path, "train-only", config={}, seed=0, preset="p", device="cpu")
    empty.append([{"method": "train", "epoch": 1, "fid": 50.0, "candidate_id": "t"}])
    code, _, err = run_cli(capsys, "report", str(empty.path), "--compare", str(empty.path))
    assert code == 0, err  # issue 24: runs without rounds compare on a shared score (tests/core/test_compare_runs.py)


def test_results_pareto_is_one_front_per_stage_and_last_round(capsys, tmp_path):
    from conftest import run_cli

    run = RunDir.create(tmp_path, "r", config={}, seed=0, preset="x", device="cpu")
    rows = [  # stage g round 0 holds the globally best point; only the last round of each stage counts
        {"stage": "g", "round": 0, "candidate_id": "g0a", "fid": 10.0, "is_mean": 9.0},
        {"stage": "g", "round": 1, "candidate_id": "g1a", "fid": 20.0, "is_mean": 5.0},
        {"stage": "g", "round": 1, "candidate_id": "g1b", "fid": 30.0, "is_mean": 4.0},  # dominated by g1a
        {"stage": "d", "round": 0, "candidate_id": "d0a", "fid": 40.0, "is_mean": 2.0},
        {"stage": "d", "round": 0, "candidate_id": "d0b", "fid": 35.0, "is_mean": 1.0},
    ]
    run.append(rows)
    code, out, _ = run_cli(capsys, "results", str(run.path), "--pareto", "fid:min,is_mean:max", "--csv",
                           str(tmp_path / "f.csv"))
    assert code == 0
    assert sorted(pd.read_csv(tmp_path / "f.csv")["candidate_id"]) == ["d0a", "d0b", "g1a"]
    code, out, _ = run_cli(capsys, "results", str(run.path), "--pareto", "fid:min,is_mean:max", "--all-rounds",
                           "--csv", str(tmp_path / "a.csv"))
    assert sorted(pd.read_csv(tmp_path / "a.csv")["candidate_id"]) == ["g0a"]


def test_run_json_records_the_device_used_and_no_empty_folders(tmp_path):
    run = RunDir.create(tmp_path, "r", config={}, seed=0, preset="x", device="auto")
    assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml", "plots", "results", "run.json"]
    run.record_device("cpu")
    assert run.meta["device"] == "cpu" and run.meta["device_requested"] == "auto"
    run.record_device("cuda:0")
    run.record_device("cpu")
    assert run.meta["device"] == "cpu, cuda:0" and run.meta["device_requested"] == "auto"


def test_keyed_parts_make_a_replayed_epoch_idempotent_on_disk(tmp_path):
    run = RunDir.create(tmp_path, "r", config={}, seed=0, preset="x", device="cpu")
    run.append([{"candidate_id": "t", "epoch": 1, "fid": 30.0}], key="t-e1")
    run.append([{"candidate_id": "t", "epoch": 1, "fid": 29.0}], key="t-e1")  # the epoch ran again
    assert len(run.parts()) == 1 and run.read()["fid"].tolist() == [29.0]


def test_result_columns_are_what_each_method_registered_and_a_miss_loads_the_plugins(monkeypatch):
    """The search outcome tables show the columns each method registered from its own package (the same ones,
    in the same order, the shared list showed before); a name not registered yet loads the plugins once and is
    then found, and a name nobody registers is one clear error. Bug caught: a per-method column list kept in
    the shared runner (a new method's columns would need an edit there)."""
    import raynas.methods  # noqa: F401  (every method registers itself)
    import raynas.plugins
    from raynas.errors import ConfigError
    from raynas.results import schema

    assert schema.result_columns("damgan") == ("seed", "epoch", "d_loss", "g_loss", "alpha_entropy_mean",
                                               "alpha_margin_mean", "is_mean", "fid", "params", "wall_seconds")
    classify = ("seed", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "alpha_entropy_mean",
                "alpha_margin_mean", "params", "wall_seconds")
    assert schema.result_columns("darts") == schema.result_columns("swd-nas") == classify
    assert schema.result_columns("darts-gal") == ("network", "params", "flops", "test_acc", "kept_nodes", "epochs")
    assert schema.result_columns("damgan-edge") == ("op", "alpha_weight", "is_mean", "fid", "params")
    assert schema.result_columns("regan")[-6:] == ("regan_sparsity", "regan_sparsity_min", "regan_sparsity_max",
                                                   "regan_masked", "regan_regrown_zero",
                                                   "regan_phase")  # what a Re-GAN cell's outcome row carries

    df = pd.DataFrame({"epoch": [1, 2], "seed": [0, 0], "fid": [None, None], "val_acc": [0.5, 0.6],
                       "extra": [1, 2]})
    assert schema.shown_columns(df, "darts") == ("seed", "epoch", "val_acc")  # registered order; empty fid left out

    monkeypatch.setattr(schema, "_COLUMNS", dict(schema._COLUMNS))
    loads = []

    def load_plugins() -> None:
        loads.append(1)
        schema.register_columns("late-plugin", ["epoch", "late_score"])

    monkeypatch.setattr(raynas.plugins, "load_plugins", load_plugins)
    assert schema.result_columns("late-plugin") == ("epoch", "late_score") and loads == [1]
    assert schema.result_columns("late-plugin") == ("epoch", "late_score") and loads == [1]  # found now: no second load
    with pytest.raises(ConfigError, match="no result columns registered for 'nobody'.*register_columns"):
        schema.result_columns("nobody")
    for bad in ((), "epoch", ("epoch", "epoch"), ("epoch", "")):
        with pytest.raises(ValueError):
            schema.register_columns("late-plugin", bad)
