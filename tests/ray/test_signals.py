"""Runs that survive `ray job stop` (SIGTERM) and Ctrl-C: the run is kept, the resume command is printed, the
exit status says which signal stopped it, a round's rows and the search state stay in step, and the stop is
prompt. The subprocess test signals only the pid it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT
from tiny_eagan import TINY
from tiny_eagan import search_args as _args

from raynas import signals
from raynas.checkpoints import load_checkpoint
from raynas.cli import main
from raynas.results import RunDir

# A stop must end the command within seconds of the current step; a tiny step takes well under 10 s even on a
# loaded 2-core machine, and the rest is Python and Ray tearing down. Generous, so that load cannot flake it.
PROMPT_SECONDS = 60


# ============================================================================ the mechanism (no Ray)
def test_sigterm_raises_like_ctrl_c_and_the_old_handlers_come_back():
    before = {s: signal.getsignal(s) for s in signals.STOP_SIGNALS}
    with signals.stop_signals():
        with pytest.raises(signals.Stopped) as info:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode, long before this ends
        assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signal.SIGTERM
        assert signals.received() == signal.SIGTERM
        assert signals.exit_status(info.value) == 143
        with pytest.raises(signals.Stopped) as info:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert signals.exit_status(info.value) == 130
    assert {s: signal.getsignal(s) for s in signals.STOP_SIGNALS} == before


def test_a_stop_waits_for_the_deferred_writes_then_stops():
    written = []
    with signals.stop_signals():
        with pytest.raises(signals.Stopped) as info, signals.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the signal has been handled by now: it must not cut these writes short
            written += ["rows", "state"]
        assert info.value.signum == signal.SIGTERM
    assert written == ["rows", "state"]


def test_sigterm_goes_to_a_gentler_ctrl_c_handler_such_as_tunes():
    """Tune's fit replaces the Ctrl-C handler with one that ends its trials and saves its state: SIGTERM must
    reach it the same way (no exception in the middle of Tune), and the exit status still says SIGTERM."""
    calls = []
    with signals.stop_signals():
        with signals.keep_handlers():  # as run_trainable wraps tuner.fit
            signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
        assert calls == [signal.SIGINT]
        assert signals.exit_status() == 143
        assert signal.getsignal(signal.SIGINT) is signals._handler  # Tune's handler does not outlive fit
        with signals.keep_handlers():  # as init_ray wraps ray.init, which installs sys.exit for SIGTERM
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        assert signal.getsignal(signal.SIGTERM) is signals._handler


@pytest.mark.slow
def test_sigterm_during_a_tune_run_is_an_interrupted_run_that_resumes(ray_session, tmp_path):
    """Tune ends its trials gracefully on Ctrl-C only; SIGTERM takes the same path (before, ray's handler
    raised SystemExit in the middle of Tune), the run is interrupted with exit status 143 and resumes; and
    Tune's own Ctrl-C handler, which it leaves installed after a run it was not asked to stop, does not outlive
    fit (a later SIGTERM would only reach it). A run stopped before Tune began (no tune/ yet) resumes from its
    start."""
    from test_train_tune import make_run, tiny_config

    from raynas.errors import RunInterrupted
    from trainables.launch import run_trainable

    def stops_the_driver_once(config):  # SIGTERM to the driver after the first report, as `ray job stop` would
        from ray import tune

        tune.report({"epoch": 1})
        if not os.path.exists(config["_marker"]):
            open(config["_marker"], "w").close()
            os.kill(config["_driver_pid"], signal.SIGTERM)
            time.sleep(60)  # Tune ends the trial long before this
        tune.report({"epoch": 2, "done": True})

    cfg = tiny_config(tmp_path)
    run = make_run(cfg, "tune-stopped")
    with signals.stop_signals():
        with pytest.raises(RunInterrupted) as info:  # a resume of a run stopped before Tune began starts it
            run_trainable(stops_the_driver_once, cfg, run, resources={"cpu": 1}, resume=True,
                          param_space={"_driver_pid": os.getpid(), "_marker": str(tmp_path / "stopped")})
        assert info.value.run_path == run.location and signals.exit_status(info.value) == 143
        (result,) = list(run_trainable(stops_the_driver_once, cfg, run, resources={"cpu": 1}, resume=True))
        assert result.metrics["epoch"] == 2 and result.metrics["done"]
        assert signal.getsignal(signal.SIGINT) is signals._handler


def test_a_run_stopped_by_sigterm_at_a_uri_gets_its_last_upload(ray_session, tmp_path, capsys, monkeypatch):
    """`ray job stop` of a run stored at a URI: the files written since the last periodic upload reach the URI,
    and the resume command names the URI."""
    from conftest import run_cli
    from test_train_tune import TINY as TRAIN_TINY

    import trainables.launch

    monkeypatch.setenv("RAYNAS_STAGING", str(tmp_path / "staging"))
    uri = f"file://{tmp_path / 'store'}"

    def stopped(trainable, cfg, run, **kwargs):  # the trial writes a file, then the job is stopped
        (run.path / "plots" / "late.txt").write_text("written after the last periodic upload")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends

    monkeypatch.setattr(trainables.launch, "run_trainable", stopped)
    code, out, err = run_cli(capsys, "train", "--preset", "quickstart", *[a for t in TRAIN_TINY for a in ("--set", t)],
                             "--storage", uri, "--name", "uri-run")
    assert code == 143, err
    assert f"raynas: stopped by SIGTERM; results and checkpoints written so far are kept. Continue with: raynas " \
           f"train --resume {uri}/uri-run" in err
    assert f"raynas: the run so far is kept at {uri}/uri-run" in out
    stored = tmp_path / "store" / "uri-run"
    assert (stored / "plots" / "late.txt").read_text() == "written after the last periodic upload"
    assert (stored / "config.yaml").is_file() and (stored / "run.json").is_file()


def test_a_stop_while_ray_starts_keeps_the_new_run_with_what_its_resume_needs(tmp_path, capsys, monkeypatch):
    """A new run exists from the moment its location is printed: a stop while Ray starts keeps it (before, it
    was removed), with the grid definition that `--resume` reads."""
    import json

    from conftest import run_cli

    import raynas.cli.search

    def stopped(args):  # `ray job stop` while Ray starts
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends

    monkeypatch.setattr(raynas.cli.search, "start_ray", stopped)
    code, _, err = run_cli(capsys, "ablate", "damgan", "--grid", "kprime=1,2", "--output-dir", str(tmp_path),
                           "--name", "grid")
    run = tmp_path / "grid"
    assert code == 143, err
    assert err.endswith(f"Continue with: raynas ablate damgan --resume {run}\n")
    assert list(json.loads((run / "ablation.json").read_text())["grid"].values()) == [[1, 2]]
    assert (run / "config.yaml").is_file() and (run / "run.json").is_file()


# ============================================================================ EAGAN, for real
def _reader(stream, sink: list[str], seen: threading.Event, pattern: str) -> None:
    for line in iter(stream.readline, ""):
        sink.append(line)
        if pattern in line:
            seen.set()


@pytest.mark.slow
def test_sigterm_during_eagan_warmup_keeps_the_run_and_resume_completes(ray_session, tmp_path, capsys):
    """`ray job stop` during the warm-up: before, ray's SIGTERM handler raised SystemExit and the whole run
    directory was removed, silently. Now the run stays, the resume command is printed, exit 143, promptly."""
    address = ray_session.get_runtime_context().gcs_address
    args = _args(tmp_path, "stopped", "eagan.rounds=1", "eagan.stages=[g]", "eagan.workers=1",
                 "eagan.iters_per_epoch=1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "raynas", *args, "--address", address], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out: list[str] = []
    err: list[str] = []
    warmup = threading.Event()
    readers = [threading.Thread(target=_reader, args=(proc.stdout, out, warmup, "warm-up, 1 epochs"), daemon=True),
               threading.Thread(target=_reader, args=(proc.stderr, err, threading.Event(), "\0"), daemon=True)]
    for t in readers:
        t.start()
    try:
        assert warmup.wait(180), "the warm-up did not start within 180 s:\n" + "".join(out + err)[-3000:]
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        code = proc.wait(timeout=PROMPT_SECONDS + 60)
        took = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:
            proc.kill()  # this test's own process only
            proc.wait()
    for t in readers:
        t.join(timeout=10)
    log = "".join(err)
    run = tmp_path / "stopped"
    assert code == 143, log[-3000:]
    assert took < PROMPT_SECONDS, f"the stop took {took:.1f} s"
    assert "Traceback" not in log
    assert f"raynas: stopped by SIGTERM; results and checkpoints written so far are kept. Continue with: " \
           f"raynas search eagan --resume {run}" in log
    assert (run / "config.yaml").is_file() and (run / "run.json").is_file()
    assert RunDir.open(run).read().empty  # stopped before round 0 ended

    code = main(["search", "eagan", "--resume", str(run)])
    _, err_text = capsys.readouterr()
    assert code == 0, err_text
    df = RunDir.open(run).read()
    assert sorted(df["candidate_id"]) == [f"g000-{i:03d}" for i in range(4)]
    assert (run / "best_G.json").is_file()


class _Host:
    """The SupernetHost's one call a round's commit makes: save the checkpoint (an empty file will do)."""

    class save:  # noqa: N801 - mirrors the actor method: host.save.remote(path)
        @staticmethod
        def remote(path):
            import ray

            open(path, "wb").close()
            return ray.put(None)


def _round_rows(r: int, fid: float) -> list[dict]:
    return [{"stage": "g", "round": r, "epoch": r + 1, "candidate_id": f"g{r:03d}-{i:03d}", "fid": fid + i}
            for i in range(4)]


def test_a_round_commit_keeps_rows_and_state_in_step(ray_session, tmp_path, monkeypatch):
    """A round's rows, checkpoint and search state land together: a SIGTERM while the rows are written waits
    for the state (then stops); a crash between rows and state (a SIGKILL there) leaves the state at the round
    before, and the round's second run replaces its rows, never doubles them; a state that an earlier raynas
    saved ahead of its rows is healed once on resume."""
    from raynas.config import load_config
    from trainables.eagan.driver import EaganSearch, make_searcher

    cfg = load_config("quickstart", [*TINY, f"run.output_dir={tmp_path}"], method="eagan")
    run = RunDir.create(tmp_path, "commit", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    search = EaganSearch(cfg, run, progress=False)
    searcher, state = make_searcher(cfg, "g"), search._fresh_state()
    real_append, real_save = RunDir.append, EaganSearch._save_state

    def append(self, rows, key=None):
        os.kill(os.getpid(), signal.SIGTERM)  # `ray job stop` mid-write
        return real_append(self, rows, key=key)

    monkeypatch.setattr(RunDir, "append", append)
    with signals.stop_signals(), pytest.raises(signals.Stopped):
        search._commit_round("g", 0, _Host, searcher, _round_rows(0, 100.0), {"fid": 100.0}, state)
    assert load_checkpoint(search.state_path)["round"] == 0  # the stop waited for the state
    assert sorted(run.read()["candidate_id"]) == [f"g000-{i:03d}" for i in range(4)]
    assert [p.name for p in search.ckpt_dir.iterdir()] == ["stage-g_round000.pt"]
    monkeypatch.setattr(RunDir, "append", real_append)

    def crash(self, state):
        raise RuntimeError("killed after the rows, before the state")

    monkeypatch.setattr(EaganSearch, "_save_state", crash)
    with pytest.raises(RuntimeError, match="before the state"):
        search._commit_round("g", 1, _Host, searcher, _round_rows(1, 200.0), {"fid": 200.0}, dict(state))
    assert load_checkpoint(search.state_path)["round"] == 0  # the resume runs round 1 again
    assert sorted(run.read().query("round == 1")["fid"]) == [200.0, 201.0, 202.0, 203.0]  # rows go first
    monkeypatch.setattr(EaganSearch, "_save_state", real_save)
    search._commit_round("g", 1, _Host, searcher, _round_rows(1, 300.0), {"fid": 300.0}, state)
    df = run.read()
    assert df.groupby("round").size().to_dict() == {0: 4, 1: 4}, "a round was lost or written twice"
    assert sorted(df.query("round == 1")["fid"]) == [300.0, 301.0, 302.0, 303.0]  # the second run's rows
    assert len(run.parts()) == 2  # one part per round

    old = RunDir.create(tmp_path, "old", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    healed = EaganSearch(cfg, old, progress=False)
    saved = {**healed._fresh_state(), "stage": "g", "round": 0, "last_rows": _round_rows(0, 100.0)}
    healed._replay_rows(saved)  # the state said round 0 was done; its rows had not landed
    healed._replay_rows(saved)  # a second resume writes nothing twice
    assert sorted(old.read()["candidate_id"]) == [f"g000-{i:03d}" for i in range(4)]
