"""Shared fixtures: one Ray instance for the whole session, offline mode, small thread pools."""

from __future__ import annotations

import logging
import os
import sys

# Before numpy/torch load: FID's 2048x2048 eigen-decomposition with default BLAS threads on two busy
# cores is ~8x slower than with one.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as raynas sets it (see raynas/__init__.py)

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests never touch the network: dataset downloads are skipped and fail fast.
os.environ.setdefault("RAYNAS_OFFLINE", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "0")

import torch  # noqa: E402

# Two shared cores: one intra-op thread per process avoids oversubscription (tiny convs run ~100x faster).
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _metrics_cache(tmp_path_factory):
    """Real-statistics cache in a temp dir so tests never see a developer's cache."""
    path = tmp_path_factory.mktemp("raynas-cache")
    os.environ["RAYNAS_CACHE"] = str(path)
    # the key that seals Tune's state (trainables/tune_seal.py): the tests', never the developer's own
    os.environ["RAYNAS_SEAL_KEY_FILE"] = str(tmp_path_factory.mktemp("raynas-seal") / "seal.key")
    yield path


@pytest.fixture(scope="session")
def ray_session(_metrics_cache):
    """One local Ray (num_cpus=2) shared by every test that needs it; ray.init costs ~7 s."""
    import ray

    if not ray.is_initialized():
        # address="local": a Ray of the suite's own, even while a test's `ray start` head (or anything else's)
        # runs on this machine; plain ray.init() would try to attach to it and refuse num_cpus
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                 runtime_env={"env_vars": {"RAYNAS_OFFLINE": "1", "RAYNAS_CACHE": os.environ["RAYNAS_CACHE"],
                                           # the tests' own packages (toy_method) import in workers too
                                           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}})
    yield ray
    ray.shutdown()


def pytest_configure(config):
    config.addinivalue_line("markers", "pinned_job(name): the test reads pinned_runs.JOBS[name] (the "
                                       "pinned_jobs fixture starts every job the session's tests name at once)")


@pytest.fixture(scope="session")
def pinned_jobs(request):
    """The pinned runs (``pinned_runs.JOBS``) that this session's selected tests name, run side by side."""
    from pinned_runs import PinnedJobs

    jobs = PinnedJobs({m.args[0] for item in request.session.items for m in item.iter_markers("pinned_job")})
    yield jobs
    jobs.stop()


@pytest.fixture
def hermetic_data(monkeypatch, tmp_path):
    """No network, no user data folders, a fresh dataset cache for the test."""
    from raynas.data import clear_cache

    monkeypatch.setenv("RAYNAS_OFFLINE", "1")
    monkeypatch.delenv("RAYNAS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    clear_cache()
    yield
    clear_cache()


def run_cli(capsys, *argv):
    """Run the raynas CLI in-process; returns (exit code, stdout, stderr)."""
    from raynas.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *fragments):
    """A user mistake: exit 2, one 'raynas: error:' message naming every fragment, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("raynas: error: ")
    for f in fragments:
        assert f in err, err


def stop_session(proc, grace: float = 5) -> None:
    """Stop a subprocess started with ``start_new_session=True`` and every process of its session (the Ray
    processes it started), by pid: never other Ray instances on the machine. SIGTERM, then SIGKILL for what is
    left after ``grace`` seconds (a ``ray start --head``'s gcs_server, raylet and workers outlive 15 s of SIGTERM:
    waiting longer only costs the suite time)."""
    import contextlib
    import importlib
    import signal

    try:
        import psutil
    except ImportError:  # Ray ships its own copy, on the path once ray is imported
        importlib.import_module("ray")
        psutil = importlib.import_module("psutil")

    try:
        parent = psutil.Process(proc.pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    with_session = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getsid(p.pid) == proc.pid:
                with_session.append(p)
        except (OSError, psutil.Error):
            continue
    targets = {p.pid: p for p in [*family, *with_session]}
    for p in targets.values():
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(list(targets.values()), timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def plain_shell_env(**extra: str) -> dict[str, str]:
    """The environment of a plain shell for a subprocess: no Ray address or auth mode inherited from the test
    session, this checkout's code first on the path (workers import it too), offline, one thread."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    env.update({"RAYNAS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    env.update(extra)
    return env
