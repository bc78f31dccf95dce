"""A resume rebuilds a damaged results part from its checkpoint, or stops naming it (issue 25): a killed DARTS
search whose epoch-1 part was truncated, a finished EAGAN search whose round part was truncated, and an EAGAN
run of an earlier raynas whose (unkeyed) part no checkpoint covers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_user_error, run_cli

from raynas.config import load_config
from raynas.results import RunDir

FIXTURES = Path(__file__).parents[1] / "fixtures" / "old_runs"
TINY = ["darts.layers=3", "darts.channels=4", "darts.steps=2", "darts.multiplier=2", "darts.batch_size=16",
        "data.limit=32", "data.test_limit=32", "train.eval_batch_size=32"]


def _truncate(part: Path) -> bytes:
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    return data


def darts_search_stopped_after_epoch_1(tmp_path: Path, name: str, fault: str, error: type, match: str):
    """A tiny 2-epoch DARTS search whose trial the test-only ``fault`` key stops after its first epoch."""
    from raynas.cli.common import create_run
    from trainables.launch import run_trainable
    from trainables.search_trial import search_trial

    cfg = load_config("quickstart-classify", [*TINY, "darts.epochs=2", f"run.output_dir={tmp_path}"],
                      method="darts")
    run = create_run(cfg, "darts", name=name)
    with pytest.raises(error, match=match):
        run_trainable(search_trial, cfg, run, resources={"cpu": 1}, max_failures=0,
                      param_space={fault: 1, "_crash_marker": str(tmp_path / f"{name}.marker")})
    return run


@pytest.mark.slow
def test_a_killed_darts_search_rebuilds_its_truncated_epoch_part_on_resume(ray_session, tmp_path, capsys):
    run = darts_search_stopped_after_epoch_1(tmp_path, "killed", "_crash_after_epoch", Exception, "trial failed")
    before = run.read()
    (part,) = run.parts()
    assert part.name.endswith("-search-1.parquet")
    _truncate(part)
    code, out, err = run_cli(capsys, "search", "darts", "--resume", str(run.path))
    assert code == 0, err
    assert f"rebuilt the damaged results part {part}" in out
    df = RunDir.open(run.path).read()  # strict: no part is damaged any more
    assert sorted(df["epoch"]) == [1, 2]
    first = df[df["epoch"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(first[before.columns], before, check_dtype=False)


def _finished_eagan(tmp_path: Path) -> tuple[RunDir, list[dict]]:
    """The round-0 fixture made a finished search (its one stage done) whose state keeps the round's rows, as
    this raynas writes them, with the round's part keyed."""
    from raynas.checkpoints import load_checkpoint, save_checkpoint
    from trainables.eagan.search_state import round_key

    path = tmp_path / "run"
    shutil.copytree(FIXTURES / "eagan-g-round0", path)
    state = load_checkpoint(path / "search_state.pt")
    rows = state["last_rows"]
    state.update(done_stages=["g"], stage=None, round=-1, searcher=None, host_checkpoint=None, last_rows=[],
                 round_rows={round_key("g", 0): rows})
    save_checkpoint(path / "search_state.pt", state)
    for old in (path / "results").glob("*.parquet"):
        old.unlink()
    run = RunDir.open(path)
    run.append(rows, key=round_key("g", 0))
    return run, rows


def test_a_finished_eagan_search_repairs_its_truncated_round_part_on_resume(tmp_path, capsys):
    from raynas.config import RaynasConfig, from_dict
    from trainables.eagan.driver import EaganSearch

    run, rows = _finished_eagan(tmp_path)
    (part,) = run.parts()
    _truncate(part)
    cfg = from_dict(RaynasConfig, run.config)
    EaganSearch(cfg, run, progress=False).run_search()  # every stage is done: nothing trains
    assert "rebuilt the damaged results part" in capsys.readouterr().out
    df = run.read()
    assert sorted(df["candidate_id"]) == sorted(r["candidate_id"] for r in rows)
    assert df["fid"].tolist() == pytest.approx([r["fid"] for r in rows])


@pytest.mark.slow
def test_an_eagan_part_no_checkpoint_covers_stops_the_resume_naming_it(ray_session, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "eagan-g-round0", run)
    (part,) = (run / "results").glob("*.parquet")  # an earlier raynas: not keyed by round
    _truncate(part)
    code, _, err = run_cli(capsys, "search", "eagan", "--resume", str(run), "--num-cpus", "2")
    assert_user_error(code, err, part.name, "rename each to NAME.damaged")
    assert part.exists()
