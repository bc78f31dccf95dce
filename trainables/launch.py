"""Starting Ray and Tune runs: embedded local Ray by default, an existing cluster with ``address``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raynas.config import RaynasConfig
from raynas.errors import ConfigError, RaynasError, RunDirError
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
        if out[key] < 0:
            raise ConfigError(f"--resources {spec!r}: {key} must be >= 0")
    return out


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: float | None = None) -> None:
    """Connect to ``address`` (or ``RAY_ADDRESS``), else start an embedded local Ray.

    ``num_gpus`` overrides the detected GPU count of an embedded Ray (benchmarks use it to check actor
    placement for one logical GPU on a CPU machine)."""
    import ray

    global _EMBEDDED
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not address:  # token authentication stays on (Ray's default); its notice that it chose so is noise here
        logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_DefaultAuthNotice())
    if ray.is_initialized():
        _EMBEDDED = not address  # a Ray this process already runs locally (tests, notebooks)
        return
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "include_dashboard": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        # address="local": always a new instance of our own, even when a `ray start` cluster runs on this machine
        # (plain ray.init() would attach to it and could not set num_cpus)
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
        _EMBEDDED = True


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
        user = find_user_error(result.error)
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
                  param_space: dict[str, Any] | None = None, num_samples: int = 1, max_failures: int = 2,
                  resume: bool = False, metric: str | None = None, mode: str | None = None,
                  search_alg: Any = None, max_concurrent: int = 0):
    """Run ``trainable`` as Tune trials storing everything under ``run.path / 'tune'``."""
    from ray import tune

    wrapped = tune.with_resources(trainable, resources)
    tune_dir = run.path.resolve() / "tune"
    if resume:
        if not tune_dir.exists():
            raise RunDirError(f"{tune_dir} does not exist, so there is nothing to resume; pass the run "
                              "directory printed when the run started (it contains config.yaml and tune/)")
        tuner = tune.Tuner.restore(str(tune_dir), trainable=wrapped, resume_errored=True)
    else:
        space = {"raynas": cfg.to_dict(), "run_dir": str(run.path.resolve())}
        space.update(param_space or {})
        tuner = tune.Tuner(
            wrapped,
            param_space=space,
            tune_config=tune.TuneConfig(num_samples=num_samples, metric=metric, mode=mode, search_alg=search_alg,
                                        max_concurrent_trials=max_concurrent or None),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(run.path.resolve()),
                failure_config=tune.FailureConfig(max_failures=max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                verbose=1,
            ),
        )
    results = tuner.fit()
    raise_trial_errors(results)
    if results.num_terminated + results.num_errors < len(results):  # Tune caught Ctrl-C and stopped early
        from raynas.errors import RunInterrupted

        raise RunInterrupted(run.path)
    return results

