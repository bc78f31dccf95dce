"""Quiet, honest console output: raynas's own progress line instead of Tune's trial tables and hints, Ray's output
kept for --verbose, and plain lines (no carriage returns or control characters) where the output is not a
terminal."""

from __future__ import annotations

import io
import logging
import sys
from types import SimpleNamespace

import pytest

from raynas import progress
from raynas.config import load_config
from raynas.progress import Progress
from raynas.results import RunDir


def four_epochs(config) -> None:
    from trainables.common import report

    for epoch in range(1, 5):
        report({"epoch": epoch}, {"epoch": epoch})


def _fit(tmp_path, name: str, monkeypatch, *, new_engine: bool = True) -> None:
    from ray import cloudpickle

    from trainables.launch import run_trainable

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1" if new_engine else "0")  # what users get (the suite sets 0)
    cfg = load_config("quickstart", ["run.checkpoints_to_keep=1"])
    run = RunDir.create(tmp_path, name, config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    run_trainable(four_epochs, cfg, run, resources={"cpu": 1}, iterations=4, desc="toy")


@pytest.mark.slow
def test_a_tune_run_prints_raynas_progress_not_tunes_tables_and_hints(ray_session, tmp_path, monkeypatch, capfd):
    monkeypatch.delenv(progress.VERBOSE_ENV, raising=False)
    _fit(tmp_path, "quiet", monkeypatch)
    out, err = capfd.readouterr()
    text = out + err
    for noise in ("started with configuration", "Trial status", "tensorboard --logdir", "View detailed results",
                  "Configuration for experiment", "Checkpoint successfully created"):
        assert noise not in text, noise
    assert "raynas: toy: 4/4 epochs (100%)" in err and "done" in err
    assert "\r" not in text and "\x1b" not in text  # captured output is no terminal: plain lines only
    assert len(text.splitlines()) <= 5

    monkeypatch.setenv(progress.VERBOSE_ENV, "1")  # raynas --verbose: Tune's own output as before
    _fit(tmp_path, "verbose", monkeypatch)
    out, err = capfd.readouterr()
    assert "Trial status" in out + err or "Configuration for experiment" in out + err


def test_the_verbose_flag_is_global_and_reaches_the_environment(monkeypatch, capsys):
    from conftest import run_cli

    monkeypatch.delenv(progress.VERBOSE_ENV, raising=False)
    code, out, _ = run_cli(capsys, "--verbose", "presets")
    assert code == 0 and progress.verbose()
    progress.set_verbose(False)
    assert not progress.verbose()
    code, out, _ = run_cli(capsys, "--help")
    assert "--verbose" in out


def test_tunes_restore_hint_is_dropped_and_its_snapshot_warning_kept_for_verbose(monkeypatch, caplog):
    from trainables.launch import tune_interrupt_watch

    monkeypatch.delenv(progress.VERBOSE_ENV, raising=False)
    tune_log = logging.getLogger("ray.tune.tune")
    state_log = logging.getLogger("ray.tune.execution.experiment_state")
    with caplog.at_level(logging.WARNING), tune_interrupt_watch() as stopped:
        tune_log.warning("Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run.")
        tune_log.warning("Experiment has been interrupted, but the most recent state was saved.\nResume "
                         'experiment with: Tuner.restore(path="/x/tune", trainable=...)')
        state_log.warning("Experiment state snapshotting has been triggered multiple times in the last 5.0 s")
        tune_log.warning("something else Tune says")
    assert stopped.is_set()
    messages = [r.getMessage() for r in caplog.records]
    assert not any("Tuner.restore" in m for m in messages)  # raynas prints `--resume RUN` instead
    assert not any("snapshotting" in m for m in messages)
    assert any("something else" in m for m in messages)
    caplog.clear()
    monkeypatch.setenv(progress.VERBOSE_ENV, "1")
    with caplog.at_level(logging.WARNING), tune_interrupt_watch():
        state_log.warning("Experiment state snapshotting has been triggered multiple times in the last 5.0 s")
    assert any("snapshotting" in r.getMessage() for r in caplog.records)


def test_plain_progress_lines_are_rate_limited_and_carry_an_eta():
    now = [0.0]
    out = io.StringIO()
    bar = Progress("search", 10, "epochs", stream=out, every=30.0, clock=lambda: now[0], bar=False)
    bar.update(0)
    for epoch in range(1, 11):
        now[0] += 10.0
        bar.update(epoch)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # the first update, one line per 30 s, and the last one
    assert lines[0] == "raynas: search: 0/10 epochs (0%) 0s elapsed"
    assert lines[1] == "raynas: search: 3/10 epochs (30%) 30s elapsed ETA 1m10s"
    assert lines[-1] == "raynas: search: 10/10 epochs (100%) 1m40s elapsed done"
    assert len(lines) == 5


def test_a_terminal_gets_one_bar_redrawn_in_place():
    now = [0.0]
    out = io.StringIO()
    bar = Progress("train", 4, "epochs", stream=out, clock=lambda: now[0], bar=True)
    for epoch in range(5):
        now[0] += 1.0
        bar.update(epoch)
        bar.update(epoch)  # Tune calls back many times a second: the same line is not drawn again
    bar.close()
    text = out.getvalue()
    assert text.count("\r") == 5 and text.count("\n") == 1 and "4/4 epochs (100%)" in text
    assert "[####################] train: 4/4 epochs" in text and "[#####...............] train: 1/4" in text
    assert not progress.interactive(io.StringIO())  # a file or a pipe is no terminal


def test_the_eta_counts_only_work_done_since_the_start_of_this_command():
    now = [100.0]
    bar = Progress("resumed", 10, "epochs", stream=io.StringIO(), clock=lambda: now[0], bar=False)
    bar.update(8)  # a resumed run: 8 epochs were done before
    now[0] += 60.0
    bar.update(9)
    assert bar.eta() == pytest.approx(60.0)


def test_a_clock_begun_before_the_first_unit_counts_its_time():
    """EAGAN's first update comes after its first round: begin() at the stage's start times that round too."""
    now, out = [100.0], io.StringIO()
    bar = Progress("EAGAN stage d", 2, "rounds", stream=out, clock=lambda: now[0], bar=False)
    bar.begin(0)
    assert out.getvalue() == ""  # no line yet
    now[0] += 14.0
    bar.update(1)
    assert "1/2 rounds (50%) 14s elapsed ETA 14s" in out.getvalue()
    assert bar.eta() == pytest.approx(14.0)


def _trial(status: str, iteration: int, **result):
    return SimpleNamespace(status=status, last_result={"training_iteration": iteration, **result})


def test_tune_progress_counts_epochs_over_all_trials():
    from trainables.progress import TuneProgress

    tp = TuneProgress("grid", iterations=4)
    tp.setup(total_num_samples=3)
    trials = [_trial("TERMINATED", 4), _trial("RUNNING", 2)]
    done, total, note = tp.counts(trials)
    assert (done, total) == (6, 12) and note == "trials: 1/3 done, 1 running"
    # a trial that states its own length (epochs_total) and one stopped early by a scheduler
    trials = [_trial("TERMINATED", 1), _trial("RUNNING", 2, epochs_total=6)]
    done, total, _ = tp.counts(trials)
    assert (done, total) == (3, 1 + 6 + 4)
    # without a length: finished trials
    tp = TuneProgress("cells")
    tp.setup(total_num_samples=2)
    assert tp.counts([_trial("TERMINATED", 7), _trial("PENDING", 0)])[:2] == (1, 2)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_eagan_bars_only_on_a_terminal_and_plain_lines_in_a_log(ray_session, tmp_path, monkeypatch):
    """EAGAN's nested tqdm bars wrote carriage returns and escape codes into redirected logs."""
    from types import SimpleNamespace

    import ray

    from trainables.eagan.driver import EaganSearch

    stats = {"d_loss": 1.0, "g_loss": 1.0, "train_seconds": 0.1, "images_per_s": 10.0, "batches": [1, 1]}
    host = SimpleNamespace(train=SimpleNamespace(remote=lambda population, n: ray.put(stats)))
    cfg = load_config("quickstart", method="eagan")
    monkeypatch.delenv("TERM", raising=False)
    for stream, bars in ((io.StringIO(), False), (_Tty(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        run = RunDir.create(tmp_path, f"eagan-{bars}", config=cfg.to_dict(), seed=0, preset="quickstart",
                            device="cpu")
        search = EaganSearch(cfg, run)
        assert search.bars is bars
        search._train_epochs(host, None, 3, "stage g warm-up")
        text = stream.getvalue()
        assert ("\r" in text) is bars, text  # a terminal redraws its bar; a log gets no bar at all


def test_metrics_writes_no_progress_bars_into_a_log(capfd):
    """`raynas metrics` asked torch-fidelity for its bars even when its output went to a file."""
    from raynas.cli import main

    code = main(["metrics", "dataset:embedded:train", "dataset:embedded:test", "--extractor", "raynas-fmnist-cnn",
                 "--num-samples", "200", "--metrics", "fid", "--device", "cpu"])
    out, err = capfd.readouterr()
    assert code == 0, err
    assert "\r" not in out + err and "it/s" not in err


def test_a_plain_stream_gets_a_heartbeat_while_nothing_advances():
    now = [0.0]
    out = io.StringIO()
    bar = Progress("pipeline", 1, "trials", stream=out, every=30.0, clock=lambda: now[0], bar=False)
    for _ in range(30):  # 15 minutes without a finished trial
        now[0] += 30.0
        bar.update(0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1] == "raynas: pipeline: 0/1 trials (0%) 10m00s elapsed"


def test_the_last_line_says_done_when_tune_ends_the_trial_after_its_last_epoch():
    from trainables.progress import TuneProgress

    tp = TuneProgress("search", iterations=2)
    tp.progress.stream, tp.progress.bar, tp.progress.every = io.StringIO(), False, 0.0
    tp.setup(total_num_samples=1)
    tp.show([_trial("RUNNING", 1)])
    tp.show([_trial("RUNNING", 2)])  # its last epoch is reported; Tune has not ended it yet
    tp.show([_trial("TERMINATED", 2)])
    lines = tp.progress.stream.getvalue().splitlines()
    assert [line.split(": ", 2)[2].split(" (")[0] for line in lines] == ["1/2 epochs", "2/2 epochs", "2/2 epochs"]
    assert "done" not in lines[1] and lines[-1].endswith("done")


def test_verbose_is_also_taken_after_a_command_that_starts_ray(monkeypatch):
    from raynas.cli import build_parser

    assert build_parser().parse_args(["search", "damgan", "--verbose"]).verbose is True
    assert build_parser().parse_args(["--verbose", "train"]).verbose is True
    assert build_parser().parse_args(["train"]).verbose is False
