"""raynas's progress line for a Tune run, in place of Tune's console output.

Tune's console reporter prints each trial's whole config (~80 lines a trial), a status table every 30 s, its own
``tensorboard --logdir`` hint (Ray's session folder, not the run's) and where its results are. Outside
``--verbose`` raynas silences it (``RunConfig(verbose=0)``) and shows one progress bar or line instead, with the
work done over all trials and an estimate of the time left.
"""

from __future__ import annotations

from typing import Any

from ray.tune.experimental.output import AirVerbosity
from ray.tune.experimental.output import ProgressReporter as _TuneReporter

from raynas.progress import Progress

_FINISHED = ("TERMINATED", "ERROR")


class TuneProgress(_TuneReporter):
    """A Tune callback that drives one ``raynas.progress.Progress`` over every trial of a run.

    With ``iterations`` (what each trial reports in all, e.g. its epochs) the work is counted in reported
    iterations, so a single trial shows its epochs and an ETA; without it, in finished trials. It is also Tune's
    console reporter: Tune's output engine calls the first reporter among the run's callbacks for the run's start
    and its heartbeat, so Tune's start table and hints are never printed (its heartbeat drives this bar)."""

    # Tune's console reporter prints at these levels; this one never does (its own line is raynas's)
    _heartbeat_threshold = _start_end_verbosity = _intermediate_result_verbosity = AirVerbosity.VERBOSE

    def __init__(self, desc: str, iterations: int | None = None) -> None:
        super().__init__(AirVerbosity.SILENT)
        self.iterations = iterations
        self.total_trials = 0
        self.progress = Progress(desc, None, "epochs" if iterations else "trials")

    # ------------------------------------------------------------------ Tune's hooks
    def setup(self, start_time: float | None = None, **info: Any) -> None:
        total = info.get("total_num_samples") or info.get("total_samples")
        if total and total < 10**9:  # an endless search says sys.maxsize: no total then
            self.total_trials = int(total)

    def experiment_started(self, *args: Any, **kwargs: Any) -> None:
        pass  # Tune's start table, results folder and session-folder TensorBoard hint: raynas prints its own

    def print_heartbeat(self, trials, *args: Any, force: bool = False) -> None:
        self.show(trials)

    def on_step_end(self, iteration: int, trials, **info: Any) -> None:
        self.show(trials)  # Tune's legacy output engine has no heartbeat

    def on_trial_start(self, iteration: int, trials, trial, **info: Any) -> None:
        self.show(trials)

    def on_trial_result(self, iteration: int, trials, trial, result: dict, **info: Any) -> None:
        self.show(trials)

    def on_trial_complete(self, iteration: int, trials, trial, **info: Any) -> None:
        self.show(trials)

    def on_trial_error(self, iteration: int, trials, trial, **info: Any) -> None:
        self.show(trials)  # raynas names the error (and its file) itself when the run ends

    def on_trial_recover(self, iteration: int, trials, trial, **info: Any) -> None:
        self.show(trials)

    def on_checkpoint(self, iteration: int, trials, trial, checkpoint, **info: Any) -> None:
        pass

    def on_experiment_end(self, trials, **info: Any) -> None:
        self.show(trials)
        self.progress.close()

    # ------------------------------------------------------------------ the line
    def counts(self, trials) -> tuple[float, float, str]:
        """(work done, work in all, a note) over ``trials``; trials not created yet count as not started. A
        trial's ``epochs_total`` result (what it will report in all) overrides the run's ``iterations``."""
        n = max(self.total_trials, len(trials))
        finished = sum(t.status in _FINISHED for t in trials)
        running = sum(t.status == "RUNNING" for t in trials)
        note = f"trials: {finished}/{n} done, {running} running" if n > 1 else ""
        stated = [int(r["epochs_total"]) for r in (t.last_result or {} for t in trials) if r.get("epochs_total")]
        each = self.iterations or (max(stated) if stated else None)
        if not each:
            self.progress.unit = "trials"
            return float(finished), float(n), note
        self.progress.unit = "epochs"
        done, total = 0.0, 0.0
        for t in trials:
            result = t.last_result or {}
            reached = int(result.get("training_iteration") or 0)
            if t.status in _FINISHED:  # ended early (a scheduler, an error) or late: what it did is its share
                done, total = done + reached, total + reached
                continue
            expected = int(result.get("epochs_total") or each)
            done, total = done + reached, total + max(expected, reached)
        total += each * (n - len(trials))
        return done, total, note

    def show(self, trials) -> None:
        done, total, note = self.counts(trials)
        finished = bool(trials) and len(trials) >= self.total_trials and all(t.status in _FINISHED for t in trials)
        self.progress.update(done, note, total=total, finished=finished)  # done once Tune has ended every trial
