"""`--resume` unpickles none of Tune's state files unless raynas sealed them (issue 25): a planted pickle in
tuner.pkl, inside experiment_state-*.json, in basic-variant-state-*.json or in the searcher's
search_gen_state-*.json is refused with exit 2 and one message naming it, and its code never runs; a damaged
experiment state is refused instead of starting a new experiment; sealed runs still resume, a driver killed
with SIGKILL included (test_train_tune and test_signals resume runs stopped by Ctrl-C and SIGTERM)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, assert_user_error, run_cli, stop_session
from ray import cloudpickle
from test_train_tune import TINY, make_run

from raynas.config import load_config
from raynas.errors import RunDirError
from raynas.results import RunDir
from trainables import tune_seal

# The trials below travel to Ray's workers by value: those import tests/ but not tests/ray/.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def tiny_config(where: Path):
    """A `raynas train` run's config (its trials below are stand-ins: only Tune's state matters here)."""
    return load_config("quickstart", [*TINY, f"run.output_dir={where}"], method="train")


class Payload:
    """Unpickling it writes ``marker``: the sign that a file's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def reports_once(config):  # a trial that finishes at once: the run has all of Tune's state files
    from ray import tune

    tune.report({"epoch": 1, "loss": float(sum(config.get("v", [0])))})


def kills_the_driver_once(config):  # SIGKILL to the driver after the first report: no chance to save anything
    from ray import tune

    for epoch in (1, 2):
        tune.report({"epoch": epoch})
        if not os.path.exists(config["_marker"]):
            open(config["_marker"], "w").close()
            time.sleep(1)  # the driver's Tune takes the report in and saves its state as it goes
            os.kill(config["_driver_pid"], signal.SIGKILL)
            time.sleep(60)


@pytest.fixture(scope="module")
def finished(ray_session, tmp_path_factory):
    """One finished run made with raynas's launcher; each test plants into its own copy."""
    from trainables.launch import run_trainable

    cfg = tiny_config(tmp_path_factory.mktemp("sealed"))
    run = make_run(cfg, "base")
    run_trainable(reports_once, cfg, run, resources={"cpu": 1})
    return run.path


@pytest.fixture(scope="module")
def with_searcher(ray_session, tmp_path_factory):
    """A finished experiment whose trials came from the NSGA-II Tune searcher (its search_gen_state-*.json),
    run by a Tuner of the user's own with the seal callback (README: raynas inside your own Tuner), in a
    raynas run's folder so that `raynas train --resume` takes it."""
    from ray import tune

    from searchers.tune_adapter import NSGA2TuneSearcher

    cfg = tiny_config(tmp_path_factory.mktemp("searcher"))
    run = make_run(cfg, "nsga")
    searcher = NSGA2TuneSearcher(n_choices=[2, 2], to_config=lambda v: {"v": list(v)}, pop_size=2,
                                 max_generations=1, metric="loss", mode="min")
    tune.Tuner(tune.with_resources(reports_once, {"cpu": 1}),
               tune_config=tune.TuneConfig(search_alg=searcher, num_samples=2),
               run_config=tune.RunConfig(name="tune", storage_path=str(run.path),
                                         callbacks=[tune_seal.TuneStateSeal()], verbose=0)).fit()
    tune_seal.verify(str(run.tune_dir))  # the callback alone sealed it all, tuner.pkl included
    return run.path


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _one(run: Path, pattern: str) -> Path:
    (path,) = sorted((run / "tune").glob(pattern))
    return path


def _plant_in_experiment_state(path: Path, marker: Path) -> None:
    """The trial's cloudpickled placement_group_factory, as Tune stores it (hex inside the trial's JSON)."""
    state = json.loads(path.read_text())
    trial = json.loads(state["trial_data"][0][0])
    trial["placement_group_factory"] = pickle.dumps(Payload(marker)).hex()
    state["trial_data"][0][0] = json.dumps(trial)
    path.write_text(json.dumps(state))


PLANTED = {
    "tuner.pkl": lambda run, marker: (run / "tune" / "tuner.pkl").write_bytes(pickle.dumps(Payload(marker))),
    "experiment_state": lambda run, marker: _plant_in_experiment_state(_one(run, "experiment_state-*.json"), marker),
    "basic-variant-state": lambda run, marker: _one(run, "basic-variant-state-*.json").write_bytes(
        pickle.dumps(Payload(marker))),
}


@pytest.mark.parametrize("what", sorted(PLANTED))
def test_a_planted_pickle_is_refused_and_never_runs(finished, tmp_path, capsys, what):
    run, marker = _copy(finished, tmp_path), tmp_path / "code-ran"
    PLANTED[what](run, marker)
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert_user_error(code, err, what, "raynas's seal")
    assert err.count("raynas: error:") == 1 and not marker.exists()


def test_a_planted_searcher_state_is_refused_and_never_runs(with_searcher, tmp_path, capsys):
    run, marker = _copy(with_searcher, tmp_path), tmp_path / "code-ran"
    _one(run, "search_gen_state-*.json").write_bytes(pickle.dumps(Payload(marker)))
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert_user_error(code, err, "search_gen_state-", "raynas's seal")
    assert not marker.exists()


def test_an_extra_state_file_is_refused(finished, tmp_path, capsys):
    """A file Tune would read that its run never wrote (a searcher state beside the basic one)."""
    run, marker = _copy(finished, tmp_path), tmp_path / "code-ran"
    (run / "tune" / "search_gen_state-2099-01-01_00-00-00.json").write_bytes(pickle.dumps(Payload(marker)))
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert_user_error(code, err, "search_gen_state-2099-01-01_00-00-00.json", "never sealed it")
    assert not marker.exists()


def test_a_damaged_experiment_state_is_named_and_never_started_afresh(finished, tmp_path, capsys):
    """Before, Tune logged "Failed to restore the run state", trained a new trial with empty params and raynas
    exited 0 with its rows under RUN/tune/raynas. Now the damaged file is named and set aside, nothing of it is
    unpickled, and a new experiment continues the run's own trial (its params and trial id) from its
    checkpoints; the stand-in trial here kept none, so it trains the run's own config."""
    run = _copy(finished, tmp_path)
    state = _one(run, "experiment_state-*.json")
    state.write_bytes(state.read_bytes()[:100])
    code, out, err = run_cli(capsys, "train", "--resume", str(run))
    assert code == 0, err
    assert f"{state.name} is damaged" in out and "cannot be restored" in out
    assert (run / "tune.stopped-1" / state.name).exists()  # kept aside, not deleted
    assert not (run / "tune" / "raynas").exists()  # no new experiment wrote rows into the old one's place
    assert sorted(RunDir(run).read()["epoch"].dropna().astype(int).unique()) == [1, 2, 3]


def test_an_unsealed_run_is_refused_until_vouched_for(finished, tmp_path, capsys):
    """A run from before sealing (or with its seal removed) is refused with the way to trust it; once vouched
    for, it resumes, and a damaged state is never vouched for."""
    from trainables.launch import run_trainable

    run = _copy(finished, tmp_path)
    (run / "tune" / tune_seal.SEAL_FILE).unlink()
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert_user_error(code, err, "no raynas seal", f"{tune_seal.TRUST_COMMAND} {run / 'tune'}")

    assert tune_seal.main(["trust", str(run / "tune")]) == 0  # the folder the message names
    cfg = tiny_config(tmp_path)
    (result,) = list(run_trainable(reports_once, cfg, make_run_at(run), resources={"cpu": 1}, resume=True))
    assert result.metrics["epoch"] == 1

    state = max((run / "tune").glob("experiment_state-*.json"))  # the resumed session's, which Tune reads
    state.write_text("{not json")
    (run / "tune" / tune_seal.SEAL_FILE).unlink()
    assert tune_seal.main(["trust", str(run)]) == 2
    assert state.name in capsys.readouterr().err


def test_a_state_tune_cannot_restore_stops_the_resume(finished, tmp_path):
    """Tune's own fallback (log "Failed to restore the run state", start a new experiment) becomes an error
    naming the file, even for a state the user vouched for."""
    from trainables.launch import run_trainable

    run = _copy(finished, tmp_path)
    state = _one(run, "experiment_state-*.json")
    data = json.loads(state.read_text())
    data["trial_data"] = [["{}", "{}"]]
    state.write_text(json.dumps(data))
    tune_seal.trust(str(run))
    with pytest.raises(RunDirError, match=f"Tune could not restore the run from {state.name}"):
        run_trainable(reports_once, tiny_config(tmp_path), make_run_at(run), resources={"cpu": 1}, resume=True)
    assert not (run / "tune" / "raynas").exists()


def make_run_at(path: Path):
    from raynas.results import RunDir

    return RunDir.open(str(path))


@pytest.mark.slow
def test_a_driver_killed_with_sigkill_still_resumes(ray_session, tmp_path):
    """Tune saves (and raynas seals) its state as it goes: a driver killed without warning leaves a run that
    verifies and resumes."""
    from trainables.launch import run_trainable

    cfg = tiny_config(tmp_path)
    run = make_run(cfg, "killed")
    script = (
        "import os, sys; from pathlib import Path\n"
        "sys.path[:0] = [sys.argv[1] + '/tests', sys.argv[1] + '/tests/ray']\n"
        "import ray; ray.init(address=sys.argv[2])\n"
        "from test_tune_state_trust import kills_the_driver_once, tiny_config\n"
        "from raynas.results import RunDir\n"
        "from trainables.launch import run_trainable\n"
        "run_trainable(kills_the_driver_once, tiny_config(Path(sys.argv[3]).parent), RunDir.open(sys.argv[3]),\n"
        "              resources={'cpu': 1}, param_space={'_driver_pid': os.getpid(), '_marker': sys.argv[4]})\n"
    )
    address = ray_session.get_runtime_context().gcs_address
    proc = subprocess.Popen([sys.executable, "-c", script, str(ROOT), address, str(run.path), str(tmp_path / "kill")],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            stop_session(proc)
    assert proc.returncode == -signal.SIGKILL, out[-3000:]
    tune_seal.verify(str(run.tune_dir))
    (result,) = list(run_trainable(kills_the_driver_once, cfg, run, resources={"cpu": 1}, resume=True))
    assert result.metrics["epoch"] == 2
    sealed = json.loads((run.tune_dir / tune_seal.SEAL_FILE).read_text())["files"]
    assert len([n for n in sealed if n.startswith("experiment_state-")]) == 2  # the resumed session's too
    tune_seal.verify(str(run.tune_dir))  # so the run can be resumed again


@pytest.mark.slow
def test_the_cli_refuses_a_planted_tuner_pkl_in_a_process_of_its_own(finished, tmp_path, ray_session):
    """`raynas train --resume` as a user runs it: exit 2, one error line naming the file, no code ran."""
    run, marker = _copy(finished, tmp_path), tmp_path / "code-ran"
    PLANTED["tuner.pkl"](run, marker)
    address = ray_session.get_runtime_context().gcs_address
    proc = subprocess.run([sys.executable, "-m", "raynas", "train", "--resume", str(run), "--address", address],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.count("raynas: error:") == 1 and "Traceback" not in proc.stderr
    assert "tuner.pkl" in proc.stderr and not marker.exists()


def test_a_run_stored_at_a_uri_is_sealed_and_checked_there(ray_session, tmp_path, monkeypatch):
    """Tune keeps a URI run's state at URI/RUN/tune: the seals go there too, and the check reads them there."""
    from raynas.results import RunDir
    from trainables.launch import run_trainable

    monkeypatch.setenv("RAYNAS_STAGING", str(tmp_path / "staging"))
    cfg = tiny_config(tmp_path)
    run = RunDir.create(f"file://{tmp_path / 'store'}", "uri-run", config=cfg.to_dict(), seed=0, preset=cfg.preset,
                        device="cpu")
    run_trainable(reports_once, cfg, run, resources={"cpu": 1})
    tune_seal.verify(f"file://{tmp_path / 'store' / 'uri-run' / 'tune'}")
    stored, marker = tmp_path / "store" / "uri-run", tmp_path / "code-ran"
    planted = max((stored / "tune").glob("basic-variant-state-*.json"))
    planted.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(RunDirError, match=f"file://.*/{planted.name} is damaged or was changed"):
        run_trainable(reports_once, cfg, run, resources={"cpu": 1}, resume=True)
    assert not marker.exists()
