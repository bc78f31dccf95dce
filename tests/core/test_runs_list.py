"""``raynas runs [STORAGE]`` (issue 24): one line per run below a folder or URI, nested runs included, with the
status run.json records as a command starts and ends; folders that are not runs are skipped, a damaged run.json is
listed as damaged; ``raynas results STORAGE`` points there. No Ray: the runs are made by hand or by the CLI's run
lifecycle (``new_run_or_resume``) around a body that finishes, fails or is interrupted."""

from __future__ import annotations

import argparse
import json
import os
import socket

import pytest
from conftest import assert_user_error, run_cli

from raynas.results import RunDir


def _run(root, name: str, method: str = "darts", **meta) -> RunDir:
    run = RunDir.create(root, name, config={"method": method, "task": "classify"}, seed=0, preset="quickstart-x",
                        device="cpu")
    if meta:
        run.record_meta(**meta)
    return run


def _storage(tmp_path):
    """A storage folder holding: a finished run with a summary, a comparison with two arms (nested runs), a run
    whose process is gone, one still running (this process), one that failed, a damaged one and a non-run."""
    from raynas.results.summary import write_summary

    store = tmp_path / "store"
    done = _run(store, "done", status="finished", started="2026-01-02T03:04:05+00:00", active_seconds=75.0)
    done.append([{"stage": "search", "epoch": e, "candidate_id": "t", "val_acc": v} for e, v in ((1, 0.3), (2, 0.6))])
    write_summary(done)
    cmp = _run(store, "cmp", method="compare", status="finished")
    for arm in ("darts", "random"):
        nested = _run(cmp.path / "arms", arm, method=arm)
        nested.append([{"stage": "search", "epoch": 1, "candidate_id": "t", "val_acc": 0.25}])
    _run(store, "killed", status="running", running_on=socket.gethostname(), pid=2 ** 22 + 12345,
         session_started="2026-01-01T00:00:00+00:00")
    _run(store, "live", status="running", running_on=socket.gethostname(), pid=os.getpid(),
         session_started="2026-01-01T00:00:00+00:00")
    _run(store, "crashed", status="failed", error="RuntimeError: boom")
    broken = _run(store, "broken")
    broken.meta_path.write_text("{not json")
    (store / "notes" / "deeper").mkdir(parents=True)
    (store / "notes" / "readme.txt").write_text("not a run")
    return store


def test_runs_lists_every_run_with_its_status_best_score_and_location(tmp_path, capsys):
    store = _storage(tmp_path)
    code, out, err = run_cli(capsys, "runs", str(store))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["name", "method", "preset", "status", "started", "duration", "best", "stored", "at"]
    table = {line.split()[0]: line.split() for line in lines[1:] if not line.startswith(str(store))}
    assert list(table) == ["broken", "cmp", "darts", "random", "crashed", "done", "killed", "live"]
    assert table["done"][:4] == ["done", "darts", "quickstart-x", "finished"]
    assert "2026-01-02 03:04:05Z" in " ".join(table["done"]) and "1m15s" in table["done"]
    assert "val_acc=0.6" in table["done"] and table["done"][-1] == str(store / "done")
    assert table["darts"][-1] == str(store / "cmp" / "arms" / "darts")  # a comparison's arms are listed
    assert "val_acc=0.25" in table["darts"]  # no summary yet: the best score from its rows
    assert table["killed"][3] == "interrupted"  # says running, but its process on this machine is gone
    assert table["live"][3] == "running" and table["crashed"][3] == "failed"
    assert table["broken"][3] == "damaged"
    assert [line for line in lines if line.startswith(f"{store / 'broken'}: damaged: run.json")]
    assert "notes" not in out


def test_runs_json_and_uri_storage(tmp_path, capsys):
    store = _storage(tmp_path)
    code, out, err = run_cli(capsys, "runs", f"file://{store}", "--json")
    assert code == 0, err
    runs = {r["name"]: r for r in json.loads(out)}
    assert runs["done"]["location"] == f"file://{store}/done"
    assert runs["done"]["best"] == {"metric": "val_acc", "value": 0.6} and runs["done"]["seconds"] == 75.0
    assert runs["broken"]["status"] == "damaged" and "run.json" in runs["broken"]["problem"]
    assert runs["random"]["location"] == f"file://{store}/cmp/arms/random"


def test_results_of_a_folder_of_runs_points_to_runs_and_bad_storage_is_one_message(tmp_path, capsys):
    store = _storage(tmp_path)
    code, _, err = run_cli(capsys, "results", str(store))
    assert_user_error(code, err, f"raynas runs {store}")
    code, _, err = run_cli(capsys, "runs", str(tmp_path / "missing"))
    assert_user_error(code, err, "is not a folder")
    code, out, err = run_cli(capsys, "runs", str(tmp_path / "store" / "notes"))
    assert code == 0 and out.startswith("no raynas runs in")


def _lifecycle(tmp_path, body, label="search"):
    """A run made the way every raynas command makes one (``new_run_or_resume``), its body run inside."""
    from raynas.cli.common import new_run_or_resume
    from raynas.config import load_config

    cfg = load_config("quickstart-classify", [f"run.output_dir={tmp_path}", "run.name=life"])
    args = argparse.Namespace(resume=None, address=None)
    with new_run_or_resume(args, label, lambda: cfg) as (run, _, _):
        run.append([{"stage": "search", "epoch": 1, "candidate_id": "t", "val_acc": 0.5, "gpu_seconds": 0.0}])
        body(run)
    return run


def test_a_command_records_how_its_run_ended_and_a_finished_one_leaves_its_summary(tmp_path):
    from raynas.errors import RunInterrupted

    run = _lifecycle(tmp_path / "ok", lambda run: None)
    meta = run.meta
    assert meta["status"] == "finished" and meta["started"] and meta["ended"] and meta["active_seconds"] >= 0
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["best"]["metrics"]["val_acc"] == 0.5
    assert summary["cost"]["epochs"] == 1 and summary["cost"]["gpu_seconds"] == 0.0

    def fail(run):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _lifecycle(tmp_path / "bad", fail)
    meta = RunDir.open(tmp_path / "bad" / "life").meta
    assert meta["status"] == "failed" and "boom" in meta["error"]
    assert not (tmp_path / "bad" / "life" / "summary.json").exists()

    def stop(run):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        _lifecycle(tmp_path / "stop", stop)
    assert RunDir.open(tmp_path / "stop" / "life").meta["status"] == "interrupted"


def test_a_run_is_listed_under_the_command_that_made_it(tmp_path):
    """A `raynas compare` run's config is its first method's (darts): the listing says compare, from run.json."""
    from raynas.results.runs import find_runs

    run = _lifecycle(tmp_path, lambda run: None, label="compare")
    assert run.config["method"] == "darts" and run.meta["command"] == "compare"
    (info,) = find_runs(str(tmp_path))
    assert info.method == "compare"


def test_only_a_runs_own_folders_are_not_looked_into(tmp_path):
    from raynas.results.runs import find_runs

    outer = _run(tmp_path, "outer")
    _run(outer.path / "results", "not-listed")  # inside a run's results/: never a run of its own
    _run(tmp_path / "results", "listed")  # a storage subfolder that happens to be called results
    for spec in (tmp_path, f"file://{tmp_path}"):
        assert sorted(i.name for i in find_runs(spec)) == ["listed", "outer"]
