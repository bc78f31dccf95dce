"""Starting Ray and Tune runs: embedded local Ray by default, an existing cluster with ``address``."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from raynas import signals
from raynas.config import RaynasConfig
from raynas.errors import ClusterError, ConfigError, RaynasError, RunDirError
from raynas.results import RunDir


def parse_resources(spec: str | None, default: dict[str, float]) -> dict[str, float]:
    """``gpu=0.5,cpu=2`` → {"gpu": 0.5, "cpu": 2.0}; unspecified keys keep their defaults."""
    out = dict(default)
    if not spec:
        return out
    for part in spec.split(","):
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key not in ("cpu", "gpu") or not value:
            raise ConfigError(f"--resources {spec!r}: expected entries like cpu=2,gpu=0.5 (keys: cpu, gpu)")
        try:
            out[key] = float(value)
        except ValueError:
            raise ConfigError(f"--resources {spec!r}: {value!r} is not a number") from None
        if not math.isfinite(out[key]):  # Ray would accept nan and wait forever for a node that has it
            raise ConfigError(f"--resources {spec!r}: {key}={value} is not a finite number; give a count such as "
                              f"{key}=1 or a fraction such as {key}=0.5")
        if out[key] < 0:
            raise ConfigError(f"--resources {spec!r}: {key} must be >= 0")
    return out


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: float | None = None, *,
             dashboard: bool = False) -> None:
    """Connect to ``address`` (or ``RAY_ADDRESS``), else start an embedded local Ray.

    ``num_gpus`` overrides the detected GPU count of an embedded Ray (benchmarks use it to check actor
    placement for one logical GPU on a CPU machine). ``dashboard`` starts the embedded Ray's dashboard on
    127.0.0.1 only and prints its URL (on a cluster: prints the cluster's)."""
    import ray

    global _EMBEDDED
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not address:  # token authentication stays on (Ray's default); its notice that it chose so is noise here
        logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_DefaultAuthNotice())
    if ray.is_initialized():
        _EMBEDDED = not address  # a Ray this process already runs locally (tests, notebooks)
        return
    if dashboard:
        check_dashboard_installed()
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "include_dashboard": dashboard}
    with signals.keep_handlers():  # the CLI's Ctrl-C and SIGTERM handling survive ray.init
        if address:
            kwargs.pop("include_dashboard")  # the cluster's dashboard is the head's business
            check_ray_address(address)
            try:
                context = ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ray.exceptions.RayError) as exc:
                raise _connect_error(f"{_address_source(address)} {address}", exc) from None
        else:
            # address="local": always a new instance of our own, even when a `ray start` cluster runs on this
            # machine (plain ray.init() would attach to it and could not set num_cpus)
            if dashboard:
                kwargs["dashboard_host"] = "127.0.0.1"  # never on a public interface
            context = ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
            _EMBEDDED = True
    if dashboard:
        url = getattr(context, "dashboard_url", None)
        if url:
            print(f"raynas: Ray dashboard at http://{url} (it asks for the token that `ray get-auth-token` "
                  "prints)", flush=True)
        else:
            print("raynas: this Ray has no dashboard running", flush=True)


ADDRESS_TIMEOUT_S = 10.0  # how long an address may take to answer before raynas gives up on it
AUTH_ENV = "RAY_AUTH_MODE"
TOKEN_WHERE = ("the cluster's token (`ray get-auth-token` on its head prints it) goes in RAY_AUTH_TOKEN, in the "
               "file RAY_AUTH_TOKEN_PATH names, or in ~/.ray/auth_token (docs/cluster.md)")
_CHECKED: set[str] = set()


def _address_source(address: str) -> str:
    return "RAY_ADDRESS" if address == os.environ.get("RAY_ADDRESS") else "--address"


def check_ray_address(address: str) -> None:
    """Fail fast, in one message, where ``ray.init(address=...)`` would not: an address where nothing listens
    (Ray retries it for many minutes), and a cluster with token authentication that refuses this client (Ray
    retries for about 30 s, then raises a long traceback). A TCP connection first, then one request to the
    cluster's GCS, each within ``ADDRESS_TIMEOUT_S``. ``ray://`` (Ray Client) addresses get the TCP check."""
    if address in _CHECKED or address == "local":
        return
    import socket
    from urllib.parse import urlsplit

    source = f"{_address_source(address)} {address}"
    if "://" in address and not address.startswith("ray://"):
        raise ClusterError(f"{source}: Ray takes the cluster's GCS address, HOST:PORT (the head's port, 6379 by "
                           "default) or auto; an http:// address is the dashboard's, which `ray job submit "
                           "--address` takes instead")
    if address.startswith("ray://"):
        parts = urlsplit(address)
        gcs, host, port = None, parts.hostname, parts.port or 10001
    else:
        from ray._private.services import canonicalize_bootstrap_address

        try:
            gcs = canonicalize_bootstrap_address(address)
        except (ConnectionError, ValueError) as exc:
            raise ClusterError(f"{source}: {exc}") from None
        if gcs is None:
            return
        host, _, port_text = gcs.rpartition(":")
        port = int(port_text)
    try:
        socket.create_connection((host, port), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ClusterError(f"nothing answers at {source} ({host}:{port}: {why}). Start the cluster first (`ray "
                           "start --head` prints its address), check the host and port (the head's GCS port, 6379 "
                           "by default), or leave --address out to run on this machine's own Ray") from None
    if gcs is not None:
        _probe_gcs(gcs, source)
    _CHECKED.add(address)


def _probe_gcs(gcs: str, source: str) -> None:
    """One GCS request (the cluster id), in a thread so a peer that never answers cannot hold the command."""
    from ray._private.authentication.authentication_token_setup import ensure_token_if_auth_enabled
    from ray._raylet import GcsClient

    try:  # token mode without any token: Ray's native client would abort the process
        ensure_token_if_auth_enabled(None, create_token_if_missing=False)
    except Exception:  # noqa: BLE001 - Ray's AuthenticationError
        raise ClusterError(f"{AUTH_ENV}=token is set, but this machine has no token for the Ray cluster at {source}: "
                           f"{TOKEN_WHERE}") from None

    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            GcsClient(address=gcs)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome.append(exc)

    thread = threading.Thread(target=ask, name="raynas-gcs-probe", daemon=True)
    with _quiet_stderr():  # Ray's C++ client logs each refused attempt to fd 2; the message below says it all
        thread.start()
        thread.join(ADDRESS_TIMEOUT_S)
    if not outcome:
        raise ClusterError(f"{source} accepts connections but no Ray cluster answered there within "
                           f"{ADDRESS_TIMEOUT_S:g} s; pass the head's GCS address (HOST:6379 by default)")
    if outcome[0] is not None:
        raise _connect_error(source, outcome[0])


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block (native code writes there, below Python's sys.stderr)."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (a captured stream): nothing to quiet
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _connect_error(source: str, exc: BaseException) -> ClusterError:
    """A failed connection as one message: token authentication named by its variable, else Ray's first line."""
    text = " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None)
    if "AuthenticationError" in text or "InvalidAuthToken" in text or "nauthenticated" in text \
            or type(exc).__name__ == "AuthenticationError":
        if os.environ.get(AUTH_ENV, "").lower() != "token":
            return ClusterError(f"the Ray cluster at {source} uses token authentication, and {AUTH_ENV} is not "
                                f"set to token here: run `export {AUTH_ENV}=token`; {TOKEN_WHERE}")
        return ClusterError(f"the Ray cluster at {source} refused this client's token ({AUTH_ENV}=token is set): "
                            f"{TOKEN_WHERE}")
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return ClusterError(f"cannot connect to the Ray cluster at {source}: {first[:300]}")


def check_dashboard_installed() -> None:
    """The dashboard (and the job server) need ``ray[default]``; the plain install lacks them."""
    import importlib.util

    missing = [m for m in ("aiohttp", "aiohttp_cors", "opencensus") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"--dashboard needs Ray's dashboard packages ({', '.join(missing)} missing); install "
                          "them with: pip install 'raynas[cluster]'")


_EMBEDDED = False  # True when this process runs its own local Ray (nothing can scale it up)


class _DefaultAuthNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Token authentication is enabled for this Ray cluster" not in record.getMessage()


def check_fits(what: str, demands: list[dict[str, float]], fix: str | None = None) -> None:
    """Fail fast when actors or trials that must run at once can never be placed: Ray would wait forever.

    On an embedded local Ray this is a ConfigError; on a cluster (which an autoscaler may grow) it is
    a printed warning.
    """
    import ray

    have = ray.cluster_resources()
    problems = []
    for key, res in (("gpu", "GPU"), ("cpu", "CPU")):
        need = sum(d.get(key, 0.0) for d in demands)
        if need > have.get(res, 0.0) + 1e-9:
            problems.append(f"{key}={need:g} but this Ray has {have.get(res, 0.0):g} {res}(s)")
    if not problems:
        return
    fix = fix or ("pass --resources gpu=0 to run on CPU, a fraction such as gpu=0.25 to share one GPU, or "
                  "connect to a larger cluster with --address")
    message = f"{what} asks for {' and '.join(problems)} at the same time; {fix}"
    if _EMBEDDED:
        raise ConfigError(message)
    print(f"raynas: warning: {message}; waiting for the cluster to grow")


def wants_gpu(cfg: RaynasConfig, asked_gpu: float = 0.0) -> bool:
    """A "GPU run": its preset or overrides set ``resources.gpu`` > 0 (every paper preset does), or
    ``--resources gpu=X`` asks for a GPU share. Method defaults such as ``eagan.host_gpu`` only say how much of
    a GPU to take *when GPUs exist*, so they do not make a run a GPU run."""
    return max(float(cfg.resources.gpu), float(asked_gpu or 0.0)) > 0


def check_gpu_request(cfg: RaynasConfig, asked_gpu: float = 0.0, allow_cpu: bool = False) -> bool:
    """A GPU run on a Ray cluster without any GPU fails at once, instead of quietly running on CPUs (or waiting
    forever). With ``allow_cpu`` it runs on CPUs: returns True, and the caller drops its GPU request."""
    import ray

    if not wants_gpu(cfg, asked_gpu) or ray.cluster_resources().get("GPU", 0) > 0:
        return False
    gpu = max(float(cfg.resources.gpu), float(asked_gpu or 0.0))
    if allow_cpu:
        print(f"raynas: this Ray has no GPU; running {cfg.preset} on CPUs as --allow-cpu asks", flush=True)
        return True
    where = ("this machine" if _EMBEDDED else "this Ray cluster (no GPU worker has joined yet, or the cluster "
             "has none; `ray status` lists its resources)")
    raise ConfigError(f"{cfg.preset} asks for gpu={gpu:g} but this Ray has 0 GPU(s): {where}. Pass --allow-cpu "
                      "(or --resources gpu=0) to run it on CPUs, or run it where a GPU is (--address)")


def check_device(cfg: RaynasConfig, trial_gpus: float | None) -> None:
    """``train.device=cuda`` needs GPUs in this Ray and, for Tune trials, a GPU share per trial (a trial
    without one sees no CUDA device at all): refuse now, not after the trial has crashed three times."""
    import ray

    device = cfg.train.device
    if not device.startswith("cuda"):
        return
    if ray.cluster_resources().get("GPU", 0) <= 0:
        raise ConfigError(f"train.device={device} but this Ray has no GPU; use --set train.device=auto (CUDA "
                          "where a trial gets a GPU, else CPU) or cpu, or connect to a GPU cluster with --address")
    if trial_gpus is not None and trial_gpus <= 0:
        raise ConfigError(f"train.device={device} but each trial asks for no GPU, so it would see none; pass "
                          "--resources gpu=1 (or a fraction such as gpu=0.5)")


def find_user_error(error: BaseException | None) -> RaynasError | None:
    """Dig the RaynasError (if any) out of Ray/Tune's wrappers so the CLI can print just its message."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        cause = getattr(err, "cause", None)
        if isinstance(cause, BaseException) and cause is not err:
            # Ray's RayTaskError(X) is also an instance of X, but its message is the whole remote
            # traceback: follow it to the original exception instead.
            stack.append(cause)
            continue
        if isinstance(err, RaynasError):
            return err
        stack += [err.__cause__, err.__context__]
    return None


def raise_trial_errors(results) -> None:
    """Turn failed trials into one RaynasError (user mistakes) or a pointer to the error file."""
    for result in results:
        if result.error is None:
            continue
        from raynas.results.storage import storage_full

        user = find_user_error(result.error) or storage_full(result.error)  # a full disk is the user's to fix
        if user is not None:
            raise type(user)(str(user))
        where = Path(result.path) / "error.txt" if result.path else "the trial directory"
        raise RaynasError(f"a trial failed with an internal error ({type(result.error).__name__}); "
                          f"the traceback is in {where}. Results written so far are kept.")
    for result in results:
        metrics = result.metrics or {}
        if metrics.get("user_error"):
            import raynas.errors

            cls = getattr(raynas.errors, str(metrics["user_error"]), RaynasError)
            raise (cls if isinstance(cls, type) and issubclass(cls, RaynasError) else RaynasError)(metrics["error"])
        if metrics.get("diverged"):
            raise RaynasError(f"training diverged: {metrics.get('error')}. Checkpoints and results up to "
                              "the last good epoch are kept in the run directory.")


def run_trainable(trainable: Callable, cfg: RaynasConfig, run: RunDir, *, resources: dict[str, float],
                  param_space: dict[str, Any] | None = None, num_samples: int = 1, max_failures: int | None = None,
                  resume: bool = False, metric: str | None = None, mode: str | None = None,
                  search_alg: Any = None, max_concurrent: int = 0, scheduler: Any = None,
                  iterations: int | None = None, desc: str | None = None):
    """Run ``trainable`` as Tune trials storing everything under the run's experiment folder
    (``run.experiment_name``, ``tune/``; a folder, or the run's URI for a run stored in an object store: Tune
    persists its state and checkpoints there itself). A crashed trial is retried ``run.max_failures`` times
    (``max_failures`` overrides it) from its last checkpoint; a user error (``RaynasError``) in a trial is never
    retried. raynas's progress line (``desc``, default the method) counts ``iterations`` (the epochs each trial
    reports), else finished trials; Ray's own console output is for ``--verbose``."""
    from ray import tune

    from trainables import tune_seal
    from trainables.common import user_errors_as_results

    name = cfg.run.experiment_name
    wrapped = tune.with_resources(with_method_homes(user_errors_as_results(trainable)), resources)
    from raynas.results.storage import atomic_local_filesystem

    fs = None  # an object store publishes whole objects itself
    if run.remote is not None:
        tune_location, exists = run.remote.child(name).uri, run.remote.child(name).exists()
        (run.path / name).mkdir(parents=True, exist_ok=True)  # marks "Tune ran here" in the staging copy
    else:
        tune_dir = run.path.resolve() / name
        tune_location, exists = str(tune_dir), tune_dir.exists()
        fs = atomic_local_filesystem()  # Tune's state and checkpoints whole or absent after a full disk
    if resume and not exists and not run.parts():
        resume = False  # stopped before Tune began: nothing to restore, the run starts from its beginning
    if resume:
        if not exists:
            raise RunDirError(f"{tune_location} does not exist, so there is nothing to resume; pass the run "
                              "location printed when the run started (it contains config.yaml and tune/)")
        restored_from = tune_seal.verify(tune_location)  # nothing unsealed gets unpickled (README: resume)
        tuner = tune.Tuner.restore(tune_location, trainable=wrapped, resume_errored=True, storage_filesystem=fs)
        tune_seal.add_to_restored(tuner)
    else:
        # ``raynas`` + ``run_dir`` mark a trial started by raynas itself: a user mistake inside it is reported
        # as its last result (one message on the command line), where a user's own Tuner sees an error.
        space = {"raynas": cfg.to_dict(), "run_dir": run.location}
        space.update(param_space or {})
        tuner = tune.Tuner(
            wrapped,
            param_space=space,
            tune_config=tune.TuneConfig(num_samples=num_samples, metric=metric, mode=mode, search_alg=search_alg,
                                        scheduler=scheduler, max_concurrent_trials=max_concurrent or None),
            run_config=tune.RunConfig(
                name=name,
                storage_path=run.location,  # its experiment goes into tune/ below it
                storage_filesystem=fs,
                failure_config=tune.FailureConfig(
                    max_failures=cfg.run.max_failures if max_failures is None else max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=cfg.run.checkpoints_to_keep),
                callbacks=tune_seal.with_seal(None),
                verbose=0,
            ),
        )
        tune_seal.seal_stored(tune_location, [tune_seal.TUNER_FILE])  # the Tuner has just written it
    tune_output(tuner, desc or (cfg.method if cfg.method != "train" else "training"), iterations)
    # Tune handles Ctrl-C (and through raynas.signals SIGTERM) itself during fit, and leaves its handler behind
    restoring = tune_seal.restore_must_succeed(restored_from) if resume else contextlib.nullcontext()
    with tune_interrupt_watch() as interrupted, signals.keep_handlers(), restoring:
        results = tuner.fit()
    raise_trial_errors(results)
    # Tune catches the first Ctrl-C itself, saves its state, ends every trial as TERMINATED and returns
    if interrupted.is_set() or results.num_terminated + results.num_errors < len(results):
        from raynas.errors import RunInterrupted

        raise RunInterrupted(run.location, signals.received())
    return results


def tune_output(tuner, desc: str, iterations: int | None) -> None:
    """Tune's console output for this ``fit``: raynas's progress line (``trainables.progress``) with Tune's
    reporter silent, or with ``--verbose`` Tune's own (its level 1: trial configs, status tables, hints). Set on
    the Tuner after it is built or restored, so a run saved by any raynas resumes with today's output and the
    callback never lands in the run's pickled Tuner state. A Ray Client tuner (``ray://``) keeps Tune's output."""
    from raynas.progress import verbose
    from trainables import tune_seal

    local = getattr(tuner, "_local_tuner", None)
    if local is None:
        return
    run_config = local.get_run_config()
    if verbose():
        run_config.verbose, run_config.callbacks = 1, tune_seal.with_seal(None)
        return
    from trainables.progress import TuneProgress

    run_config.verbose = 0
    run_config.callbacks = tune_seal.with_seal([TuneProgress(desc, iterations)])  # the reporter stays first


def with_method_homes(trainable: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """``trainable``, importing first, in the trial's worker, every module that registered a method here
    (``Method.home``): a method from outside the plugin entry points (a test's, a notebook's) is known to the
    trial too. Same name as ``trainable`` (functools.wraps), so Tune restores runs started before this wrapper.
    Outside ``--verbose`` the trial's routine Ray Train log lines stay out of the console."""
    from raynas.methods import all_methods
    from raynas.progress import verbose

    homes = tuple(sorted({m.home for m in all_methods() if m.home}))
    quiet = not verbose()

    @functools.wraps(trainable)
    def wrapped(config: dict[str, Any]) -> None:
        from raynas.plugins import import_plugin

        if quiet:  # Ray Train's "Checkpoint successfully created at: ..." after every epoch, outside --verbose
            logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
        for home in homes:
            import_plugin(home)
        trainable(config)

    return wrapped


@contextlib.contextmanager
def tune_interrupt_watch() -> Iterator[threading.Event]:
    """An event set when Tune reports that it caught a stop signal (Ctrl-C, SIGUSR1) during ``fit``: the
    trials it then ends look finished in the ResultGrid, so its own warning is the one reliable sign.

    Meanwhile Tune's advice that does not apply to a raynas run stays unprinted: ``Tuner.restore(...)`` after a
    stop (raynas prints its own ``--resume`` line), and, outside ``--verbose``, the warning that frequent
    checkpoints snapshot the experiment often (a short retrain checkpoints every epoch on purpose)."""
    from raynas.progress import verbose

    event = threading.Event()
    quiet = not verbose()

    class Watch(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            text = str(record.msg)
            if text.startswith("Stop signal received"):
                event.set()
            if "Tuner.restore(" in text or "tune.run(..., resume=True)" in text:
                return False
            return not (quiet and "snapshotting has been triggered multiple" in text)

    watch = Watch()
    loggers = [logging.getLogger(name) for name in ("ray.tune.tune", "ray.tune.execution.experiment_state")]
    for logger in loggers:
        logger.addFilter(watch)
    try:
        yield event
    finally:
        for logger in loggers:
            logger.removeFilter(watch)


# ====================================================================== early stopping (ASHA) for grids
METRIC_ALIASES = {"accuracy": "val_acc", "acc": "val_acc", "is": "is_mean", "kid": "kid_mean"}


def metric_mode(metric: str) -> tuple[str, str]:
    """``fid`` / ``accuracy`` / ``is`` / any reported key → (result key, min|max)."""
    key = METRIC_ALIASES.get(metric, metric)
    mode = "min" if any(w in key for w in ("fid", "kid", "loss", "params", "error")) else "max"
    return key, mode


def asha_scheduler(metric: str, grace_period: int = 1, reduction_factor: float = 2.0):
    """Tune's ASHA over a grid's trials on ``metric`` (per reported epoch: ``training_iteration``)."""
    from ray.tune.schedulers import ASHAScheduler

    # A grid cell reports e.g. val_acc in its search phase only (its retrain epochs report train/test scores):
    # ASHA skips results without the metric, Tune's strict check would end the run instead.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    key, mode = metric_mode(metric)
    return ASHAScheduler(metric=key, mode=mode, time_attr="training_iteration", max_t=10**6,
                         grace_period=grace_period, reduction_factor=reduction_factor)


STOPPED_STAGE = "stopped"


def record_stopped(results, run: RunDir, stage: str, metric: str) -> int:
    """Trials an early-stopping scheduler ended before their ``stage`` row (a grid cell's outcome) keep one row
    in the run's results: ``stage=stopped`` (they never reached ``stage``), ``stopped=True``, the phase and
    epoch they stopped at and their last ``metric``; finished cells say ``stopped=False`` through their absence
    here (the summary fills False). Returns how many were stopped."""
    key, _ = metric_mode(metric)
    df = run.read()
    done = set(df.loc[df["stage"] == stage, "candidate_id"].dropna()) if "stage" in df else set()
    already = set(df.loc[df.get("stopped", False) == True, "candidate_id"]) if "stopped" in df else set()  # noqa: E712
    rows = []
    for result in results:
        metrics = result.metrics or {}
        tid = metrics.get("trial_id")
        if result.error is not None or tid is None or tid in done or tid in already:
            continue
        grid = {k.rsplit(".", 1)[-1]: v for k, v in (result.config or {}).items()
                if "." in k and not k.startswith("_")}
        rows.append({"run_id": run.name, "method": (result.config or {}).get("raynas", {}).get("method"),
                     "stage": STOPPED_STAGE, "stopped_phase": metrics.get("phase"),
                     "epoch": metrics.get("epoch", metrics.get("training_iteration")),
                     "round": None, "candidate_id": tid, **grid, "stopped": True,
                     "stopped_at_iteration": metrics.get("training_iteration"),
                     f"stopped_{key}": metrics.get(key)})
    run.append(rows)
    return len(rows)
