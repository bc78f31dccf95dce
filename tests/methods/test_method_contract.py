"""The method contract: every registered method, through the CLI in-process at its spec's tiny sizes
(``smoke_overrides``), searches (a modifier such as Re-GAN: modifies a fixed run of its task), shows its genotype
(``arch show``), draws its report, resumes a finished run without redoing work, resumes an interrupted run to the
same end, and runs its smallest ablation grid.

The parametrisation comes from the registry, so a method registered later (a toy method from a package under
``tests/``, imported before this module is collected, e.g. by tests/conftest.py) is covered without an edit here; a
spec that lacks what the contract needs fails, naming the field.

One search per method is shared by the tests that read it (module scope); the interruption runs once per execution
shape, with the method of that shape whose search was quickest here."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from figures import is_png

from raynas.methods import Method, all_methods

METHODS = all_methods()
SHAPES = sorted({m.shape for m in METHODS})


# ============================================================================ driving the CLI
def cli(*argv: str) -> tuple[int, str, str]:
    """The raynas CLI in-process, its output captured here (``capsys`` is per test; the runs are per module)."""
    from raynas.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def tiny(method: Method) -> list[str]:
    """The spec's tiny settings as ``--set`` arguments."""
    if not method.smoke_overrides:
        pytest.fail(f"{method.name}: its Method spec lacks smoke_overrides, the tiny settings the contract test runs "
                    "its commands with (e.g. smoke_overrides=(\"data.limit=32\", ...))")
    return [a for item in method.smoke_overrides for a in ("--set", item)]


def search_argv(method: Method, out_dir: Path, name: str) -> list[str]:
    """``raynas search NAME``, or for a modifier the fixed run of its task with its section enabled."""
    where = ["--preset", method.quickstart, *tiny(method), "--output-dir", str(out_dir), "--name", name]
    if method.runner:
        return ["search", method.name, *where]
    if method.modifier:
        return ["train", *where, "--set", f"{method.section}.enabled=true"]
    pytest.fail(f"{method.name}: its Method spec has neither a runner (raynas search) nor modifier=True")


def resume_argv(method: Method, run: Path) -> list[str]:
    return ["search", method.name, "--resume", str(run)] if method.runner else ["train", "--resume", str(run)]


@dataclass
class Searched:
    run: Path
    code: int
    out: str
    err: str
    seconds: float


class Runs:
    """One tiny search per method, run when a test first asks for it."""

    def __init__(self, root: Path):
        self.root = root
        self.done: dict[str, Searched] = {}

    def search(self, method: Method) -> Searched:
        if method.name not in self.done:
            start = time.monotonic()
            code, out, err = cli(*search_argv(method, self.root, method.name))
            self.done[method.name] = Searched(self.root / method.name, code, out, err, time.monotonic() - start)
        s = self.done[method.name]
        assert s.code == 0, f"{method.name}: the search exited {s.code}:\n{s.err[-3000:]}"
        return s


@pytest.fixture(scope="module")
def runs(ray_session, tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("contract"))


# ============================================================================ what a run holds
def rows(run: Path) -> pd.DataFrame:
    from raynas.results import RunDir

    return RunDir.open(run).read()


def row_shape(df: pd.DataFrame) -> list[tuple]:
    """The rows as (stage, round, epoch, seed) keys: what a resumed run must end with, whatever it measured."""
    keys = [c for c in ("stage", "round", "epoch", "seed") if c in df]
    return sorted(tuple(str(v) for v in r) for r in df[keys].itertuples(index=False))


def genotype_outputs(method: Method, run: Path) -> list[Path]:
    """The spec's outputs in ``run`` that are genotypes (JSON naming their space)."""
    out = []
    for name in method.outputs:
        path = run / name
        if path.suffix == ".json" and path.is_file():
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "space" in data:
                out.append(path)
    return out


def state_of(run: Path) -> dict[str, float]:
    """Every file the run wrote besides its plots, with its modification time: a resume that redoes work changes it."""
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in run.rglob("*")
            if p.is_file() and "plots" not in p.relative_to(run).parts}


# ============================================================================ the contract
@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_search_leaves_its_outputs_and_rows(method, runs):
    s = runs.search(method)
    present = [name for name in method.outputs if (s.run / name).is_file()]
    if method.runner:
        assert method.outputs, f"{method.name}: its Method spec lacks outputs (what a finished search leaves)"
        assert present, f"{method.name}: none of its spec outputs {method.outputs} is in {s.run}"
        for name in method.outputs:  # what the search names as its output is there
            if f"{s.run / name}" in s.out:
                assert (s.run / name).stat().st_size > 0, name
        assert f"raynas: {method.name} search finished: {s.run}" in s.out.splitlines()
    if method.spaces:
        found = genotype_outputs(method, s.run)
        assert found, f"{method.name} searches {method.spaces} but left no genotype among {method.outputs}"
        from raynas.spaces import Genotype

        for path in found:
            g = Genotype.load(path)
            g.validate()
            assert g.space in method.spaces, (path.name, g.space)
    df = rows(s.run)
    assert len(df) > 0
    if method.runner:
        assert set(df["method"]) == {method.name}
    else:  # a modifier's fixed run (its rows name the task): the rows carry the modifier's own columns, filled
        assert set(df["method"]) == {method.task}
        own = [c for c in df if c.startswith(f"{method.section}_")]
        assert own and df[own].notna().any().all(), f"{method.name}: no filled {method.section}_* columns: {own}"
        from raynas.cli.common import saved_config

        assert getattr(saved_config(s.run), method.section).enabled, "the run did not enable the modifier"


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if m.spaces], ids=lambda m: m.name)
def test_arch_show_names_the_space_and_parameter_count(method, runs):
    from raynas.spaces import Genotype

    s = runs.search(method)
    for path in genotype_outputs(method, s.run):
        space = Genotype.load(path).space
        code, out, err = cli("arch", "show", str(path), "--json")
        assert code == 0, err
        summary = json.loads(out)
        assert summary["space"] == space and summary["params"] > 0
        code, text, err = cli("arch", "show", str(path))
        assert code == 0, err
        assert text.splitlines()[0].startswith(space)
        assert f"params {summary['params']:,}" in text


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_report_draws_the_runs_plots(method, runs):
    s = runs.search(method)
    plots = s.run / "plots"
    for old in plots.glob("*.png"):  # the report must draw them, not find the search's
        old.unlink()
    code, out, err = cli("report", str(s.run))
    assert code == 0, err
    drawn = [Path(line.split(" ", 2)[2]) for line in out.splitlines() if line.startswith("raynas: plot ")]
    assert drawn, f"{method.name}: the report drew no plot:\n{out}"
    for p in drawn:
        assert p.parent == plots and is_png(p), p


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_resume_of_a_finished_run_redoes_nothing(method, runs):
    s = runs.search(method)
    before, shape = state_of(s.run), row_shape(rows(s.run))
    code, _, err = cli(*resume_argv(method, s.run))
    assert code == 0, err
    assert row_shape(rows(s.run)) == shape
    after = state_of(s.run)
    written = {k: v for k, v in after.items() if k.startswith("results") and before.get(k) != v}
    assert not written, f"{method.name}: the resume of a finished run wrote results again: {sorted(written)}"


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_an_interrupted_run_resumes_to_what_an_uninterrupted_one_ends_with(shape, runs, tmp_path, monkeypatch):
    """Stopped by SIGTERM (``ray job stop``) as Ray starts, before any trial: exit 143 and the resume command;
    ``--resume`` then runs it to the rows and outputs of the same search never stopped. One method per shape, the
    one whose search was quickest here (each is a whole extra search)."""
    import raynas.cli.common
    import raynas.cli.search

    of_shape = [m for m in METHODS if m.shape == shape]
    for m in of_shape:
        runs.search(m)
    method = min(of_shape, key=lambda m: runs.done[m.name].seconds)
    reference = runs.search(method)

    def stopped(args):  # `ray job stop` while Ray starts
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends

    with monkeypatch.context() as patch:
        patch.setattr(raynas.cli.common, "start_ray", stopped)
        patch.setattr(raynas.cli.search, "start_ray", stopped)
        code, _, err = cli(*search_argv(method, tmp_path, "stopped"))
    run = tmp_path / "stopped"
    assert code == 143, err
    assert err.rstrip().endswith(f"Continue with: raynas {' '.join(resume_argv(method, run)[:-2])} --resume {run}")
    assert (run / "config.yaml").is_file()
    code, _, err = cli(*resume_argv(method, run))
    assert code == 0, err
    assert row_shape(rows(run)) == row_shape(rows(reference.run))
    assert ([n for n in method.outputs if (run / n).is_file()] ==
            [n for n in method.outputs if (reference.run / n).is_file()])


def smallest_grid(method: Method) -> list[str]:
    """The first value of each axis of the spec's default grid: one cell (and whatever baseline it adds)."""
    if not method.default_grid:
        pytest.fail(f"{method.name}: its Method spec lacks default_grid (the grid of `raynas ablate {method.name}`)")
    out = []
    for item in method.default_grid:
        key, _, values = item.partition("=")
        out += ["--grid", f"{key}={values.split(',')[0]}"]
    return out


def _spellings(value: str) -> set[str]:
    """How a grid value can come back in the table: as given, or as a float when it is a number (``1`` → 1.0)."""
    try:
        return {value, str(float(value))}
    except ValueError:  # a word such as weight-sharing
        return {value}


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_smallest_ablation_writes_its_table_and_plots(method, ray_session, tmp_path):
    if not (method.ablation_cell or method.ablation_runner):
        pytest.fail(f"{method.name}: its Method spec lacks ablation_cell or ablation_runner (`raynas ablate`)")
    retrain = ["--retrain-epochs", "1"] if any(f.dest == "retrain_epochs" and "ablate" in f.commands
                                               for f in method.flags) else []
    code, out, err = cli("ablate", method.name, "--preset", method.quickstart, *tiny(method), *smallest_grid(method),
                         *retrain, "--seeds", "1", "--output-dir", str(tmp_path), "--name", "grid")
    assert code == 0, err
    run = tmp_path / "grid"
    (table,) = [p for p in run.glob("ablation_*.parquet") if not p.stem.endswith("_mean")]
    cells = pd.read_parquet(table)
    assert len(cells) >= 1
    for item in method.default_grid:  # every grid axis is a column holding the one value asked for (or a baseline's)
        key, _, values = item.partition("=")
        axis = method.grid_aliases.get(key, key).rsplit(".", 1)[-1]
        first = values.split(",")[0]
        assert axis in cells, (axis, list(cells))
        assert {str(v) for v in cells[axis].dropna()} <= _spellings(first), cells[axis]
        assert cells[axis].notna().any()
    metrics = [m for m, _ in method.ablation_metrics if m in cells]
    assert metrics and cells[metrics].notna().any().all(), (method.ablation_metrics, list(cells))
    assert any(line.startswith(f"raynas: table  {table}") for line in out.splitlines()), out[-2000:]
    plots = [Path(line.split()[-1]) for line in out.splitlines() if line.startswith("raynas: plot")]
    assert plots, f"{method.name}: the ablation drew no plot:\n{out}"
    assert all(is_png(p) for p in plots)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_run_leaves_its_summary_and_arch_show_from_run_counts_what_it_built(method, runs):
    """Issue 24: the run's summary.json (``check_summary``), and ``arch show --from-run`` of each genotype the run
    saved reports the parameter count the run's own rows do (EAGAN's search widths, DAMGAN's count, a classifier
    search's retrain network)."""
    from test_summary_json import check_summary

    from raynas.spaces import Genotype
    from raynas.spaces.genotype import space_role

    s = runs.search(method)
    check_summary(method, s.run)
    df = rows(s.run)
    for path in genotype_outputs(method, s.run):
        g = Genotype.load(path)
        role = space_role(g.space)
        if role == "pair" or "genotype" not in df:
            continue
        mine = df[df["genotype"].map(lambda j, g=g: isinstance(j, str) and j.lstrip().startswith("{")
                                     and Genotype.from_json(j) == g)]
        counted = pd.to_numeric(mine["params"], errors="coerce").dropna()
        if role == "classifier" and counted.empty:  # a pipeline's rows may not name its output (DARTS-GAL's)
            continue
        assert len(counted), f"{method.name}: no row reports {path.name}'s parameters"
        code, out, err = cli("arch", "show", str(path), "--from-run", str(s.run), "--json")
        assert code == 0, err
        assert json.loads(out)["params"] == int(counted.iloc[-1]), path.name
