"""Damaged results lose no row silently: every reader names a damaged Parquet part and stops (exit 2) unless
``--skip-damaged`` is given; a keyed part is rebuilt from the rows a checkpoint keeps; a run's config.yaml that
is garbage or Python-tagged is one message (issue 25)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from conftest import assert_user_error, run_cli

from raynas.errors import DamagedResultsError
from raynas.results import RunDir

FIXTURES = Path(__file__).parents[1] / "fixtures" / "old_runs"


def _finished_run(tmp_path: Path) -> tuple[RunDir, Path]:
    """A tiny finished run: three epochs of rows, each in its own keyed part; the epoch-1 part truncated to
    half its size (what a crash or a full disk leaves)."""
    run = RunDir.create(tmp_path, "tiny", config={"method": "darts"}, seed=0, preset="quickstart", device="cpu")
    parts = [run.append([{"candidate_id": "t0", "stage": "search", "epoch": e, "fid": 10.0 - e}],
                        key=f"t0-search-{e}") for e in (1, 2, 3)]
    data = parts[0].read_bytes()
    parts[0].write_bytes(data[: len(data) // 2])
    return run, parts[0]


def test_a_damaged_part_is_named_and_skipped_only_when_asked(tmp_path, capsys):
    run, bad = _finished_run(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # never a bare Python RuntimeWarning
        with pytest.raises(DamagedResultsError, match=bad.name) as info:
            run.read()
        assert info.value.parts == [str(bad)]
        assert run.damaged_parts() == [str(bad)]
        df = run.read(skip_damaged=True)
    assert sorted(df["epoch"]) == [2, 3]
    assert df.attrs["damaged_parts"] == [str(bad)]
    err = capsys.readouterr().err
    assert "raynas: warning: skipping the damaged results part" in err and bad.name in err


def test_raynas_results_exits_2_naming_the_part_unless_skip_damaged(tmp_path, capsys):
    run, bad = _finished_run(tmp_path)
    code, out, err = run_cli(capsys, "results", str(run.path))
    assert_user_error(code, err, bad.name, "--skip-damaged")
    assert err.count("raynas: error:") == 1 and out == ""
    code, out, err = run_cli(capsys, "results", str(run.path), "--skip-damaged")
    assert code == 0, err
    assert "Traceback" not in err and bad.name in err and "warning" in err
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["stage"])  # the table's header
    column = lines[at].split().index("epoch")
    epochs = [line.split()[column] for line in lines[at + 2:]]
    assert epochs == ["2", "3"]  # the rows of the readable parts


def test_raynas_report_exits_2_naming_the_part(tmp_path, capsys):
    run, bad = _finished_run(tmp_path)
    code, _, err = run_cli(capsys, "report", str(run.path))
    assert_user_error(code, err, bad.name)


def test_repair_rewrites_a_keyed_part_from_the_checkpoint_rows(tmp_path):
    run, bad = _finished_run(tmp_path)
    rows = {"t0-search-1": [{"run_id": "tiny", "candidate_id": "t0", "stage": "search", "epoch": 1, "fid": 9.0}]}
    assert run.repair(rows) == [str(bad)]
    df = run.read()
    assert sorted(df["epoch"]) == [1, 2, 3] and df.loc[df["epoch"] == 1, "fid"].item() == 9.0
    assert run.repair(rows) == []  # nothing damaged any more


def test_repair_refuses_a_part_no_checkpoint_holds(tmp_path):
    run, bad = _finished_run(tmp_path)
    with pytest.raises(DamagedResultsError, match="no checkpoint of the run holds their rows") as info:
        run.repair({"t0-search-2": [{"candidate_id": "t0", "epoch": 2}]})
    assert info.value.parts == [str(bad)] and "magic bytes" in str(info.value)
    assert bad.exists()  # nothing is deleted: the user decides


@pytest.mark.parametrize("text", ["a: [unclosed\n  - {", "!!python/object/apply:os.system ['echo pwned']\n",
                                  "\x00\x01garbage", "- just\n- a list\n", "method: eagan\nbogus_section: 1\n"])
def test_metrics_with_a_damaged_run_config_exits_2_with_one_message(tmp_path, capsys, text):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "eagan-g-round0", run)
    (run / "config.yaml").write_text(text)
    state = run / "checkpoints" / "stage-g_round000.pt"
    code, _, err = run_cli(capsys, "metrics", f"checkpoint:{state}", "dataset:embedded:test")
    assert_user_error(code, err, "config.yaml")
    assert err.count("raynas: error:") == 1
