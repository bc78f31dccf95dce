"""What every command shares: option groups, config from the command line, run directories (new or
resumed), Ray start-up with an up-front resource check, and the end-of-run report."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from raynas.config import FIXED, RaynasConfig, from_dict, load_config, read_config_file, upgrade_saved_config
from raynas.errors import ConfigError, RaynasError, RunInterrupted


# ============================================================================ option groups
def add_config_args(p: argparse.ArgumentParser, default_preset: str | None = "quickstart") -> None:
    default = default_preset or "eagan-cifar10 for GAN genotypes, darts-cifar10 for classifier genotypes"
    p.add_argument("--preset", default=default_preset,
                   help=f"preset name or YAML path (default: {default}; see `raynas presets`)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=5 (repeatable; see `raynas config keys`)")
    p.add_argument("--data-root", help="dataset folder (else RAYNAS_DATA, then system locations)")
    p.add_argument("--inception-weights", help="local Inception weights file for IS/FID/KID")
    p.add_argument("--name", help="run directory name (default: PRESET-METHOD-TIMESTAMP)")
    p.add_argument("--storage", metavar="PATH|URI",
                   help="where the run is stored (results, checkpoints, Tune state): a folder, a mount every node "
                        "shares (e.g. /mnt/efs/raynas) or an object-store URI (e.g. s3://bucket/raynas); sets "
                        "run.output_dir (default: RAYNAS_STORAGE, else runs)")
    p.add_argument("--output-dir", help="the same as --storage (default: runs)")


def add_ray_args(p: argparse.ArgumentParser, resources_help: str = "per-trial resources, e.g. gpu=0.5,cpu=2") -> None:
    p.add_argument("--resources", help=resources_help)
    p.add_argument("--address", help="Ray cluster address (e.g. auto); default: RAY_ADDRESS or embedded local Ray")
    p.add_argument("--num-cpus", type=positive_int, help="CPUs for the embedded local Ray (default: all)")
    p.add_argument("--dashboard", action="store_true",
                   help="start the embedded Ray with its dashboard on 127.0.0.1 and print its URL (needs the "
                        "cluster extra: pip install 'raynas[cluster]')")
    p.add_argument("--allow-cpu", action="store_true",
                   help="run a GPU preset (resources.gpu > 0) on CPUs when the Ray cluster has no GPU, instead of "
                        "failing")
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="also show Ray's own console output (the same as `raynas --verbose ...`)")


def add_skip_damaged_arg(p: argparse.ArgumentParser) -> None:
    """``--skip-damaged``: read a run whose results hold unreadable parts (``raynas.cli._run`` applies it)."""
    p.add_argument("--skip-damaged", action="store_true",
                   help="results parts that cannot be read (truncated by a crash or a full disk) are left out, each "
                        "named in a warning, instead of stopping with an error")


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (counts, sizes)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (where 0 means "no limit")."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, lo: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < lo:
        raise argparse.ArgumentTypeError(f"must be at least {lo}, got {value}")
    return value


def check_writable(path: str, flag: str) -> Path:
    """The file ``flag`` names, checked before the command does its work: not a folder, and its folder exists
    (made if missing) and is writable. Writing can still fail (a full disk, /proc): wrap it in ``writing``."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file path, e.g. {out / 'out.png'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot create the folder {out.parent} ({exc.strerror or exc}); give a "
                          "path in a folder you can write to") from None
    if not os.access(out.parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError(f"{flag} {path}: {out.parent} is not writable; give a path in a folder you can write to")
    return out


@contextmanager
def writing(path: str | Path, flag: str) -> Iterator[None]:
    """An operating-system error while writing ``flag``'s file becomes one user error naming the file."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror or exc}); give a path in a folder "
                          "you can write to") from None


# ============================================================================ config
_FLAG_KEYS = (("data_root", "data.root"), ("inception_weights", "eval.inception_weights"), ("name", "run.name"),
              ("output_dir", "run.output_dir"), ("storage", "run.output_dir"))
STORAGE_ENV = "RAYNAS_STORAGE"


def config_from_args(args: argparse.Namespace, method: str = FIXED, extra: list[str] | tuple[str, ...] = (),
                     task: str | None = None) -> RaynasConfig:
    """Preset + ``extra`` + ``--set`` + the path flags → a validated config of ``method``, paths absolute."""
    overrides = [*extra, *args.overrides]
    if getattr(args, "storage", None) and getattr(args, "output_dir", None) and args.storage != args.output_dir:
        raise ConfigError("--storage and --output-dir name the same setting (run.output_dir); pass one of them")
    storage_given = any(o.split("=", 1)[0].strip() == "run.output_dir" for o in overrides)
    check_no_empty_flags(args)
    for flag, key in _FLAG_KEYS:
        value = getattr(args, flag, None)
        if value:
            if key == "eval.inception_weights" and _task_of(args.preset, method, task) != "gan":
                continue  # classifiers have no IS/FID
            overrides.append(f"{key}={value}")
            storage_given = storage_given or key == "run.output_dir"
    if not storage_given and os.environ.get(STORAGE_ENV):  # the cluster's storage (cluster.yaml sets it)
        overrides.append(f"run.output_dir={os.environ[STORAGE_ENV]}")
    return absolute_paths(load_config(args.preset, overrides, method=method, task=task))


def check_no_empty_flags(args: argparse.Namespace) -> None:
    """``--storage ''`` (an unset shell variable) must not quietly mean the default location."""
    for flag, _ in _FLAG_KEYS:
        value = getattr(args, flag, None)
        if value is not None and not str(value).strip():
            option = "--" + flag.replace("_", "-")
            example = " (a folder, or a URI such as s3://bucket/raynas)" if flag in ("storage", "output_dir") else ""
            raise ConfigError(f"{option} is empty; give it a value{example}, or leave {option} out for its default")


def _task_of(preset: str, method: str, task: str | None) -> str | None:
    from raynas.config import load_preset_dict, method_task

    if method != FIXED:
        return method_task(method)
    if task:
        return task
    data = upgrade_saved_config(load_preset_dict(preset))
    return method_task(str(data.get("method", FIXED))) or str(data.get("task", "gan"))


PATH_KEYS = (("data", "root"), ("eval", "inception_weights"), ("model", "g_genotype"), ("model", "d_genotype"),
             ("model", "genotype"), ("eagan", "fixed_d_genotype"), ("run", "output_dir"))


def absolute_paths(cfg: RaynasConfig) -> RaynasConfig:
    """Ray workers (and Tune trials, which change directory) do not share the shell's working directory:
    make every path in the config absolute before it leaves this process."""
    from raynas.results.storage import check_storage, is_uri
    from raynas.spaces.genotype import builtin_genotypes

    for section, key in PATH_KEYS:
        part = getattr(cfg, section, None)
        value = getattr(part, key, None) if part is not None else None
        shipped = key.endswith("genotype") and value in builtin_genotypes() and not os.path.exists(value)
        if (section, key) == ("run", "output_dir") and value:
            absolute = check_storage(value)  # never inside Ray's working-dir copy of a submitted job
        elif value and not shipped and not is_uri(value):
            absolute = os.path.abspath(os.path.expanduser(value))
        else:
            continue
        cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(part, **{key: absolute})})
    return cfg


# ============================================================================ run directories
def create_run(cfg: RaynasConfig, label: str, output_dir: str | Path | None = None, name: str | None = None,
               exist_ok: bool = False):
    from raynas.results import RunDir

    name = name or cfg.run.name or f"{cfg.preset}-{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    return RunDir.create(output_dir or cfg.run.output_dir, name, config=cfg.to_dict(), seed=cfg.train.seed,
                         preset=cfg.preset, device=cfg.train.device, exist_ok=exist_ok)


_REFUSED_ON_RESUME = (("--set", "overrides"), ("--data-root", "data_root"),
                      ("--inception-weights", "inception_weights"), ("--name", "name"), ("--output-dir", "output_dir"),
                      ("--storage", "storage"))


def open_resumed_run(path: str | Path, args: argparse.Namespace | None = None, method: str | None = None):
    """(run, cfg) of a run to resume, with the config it was started with. Settings given alongside
    ``--resume`` would be silently ignored, so they are refused."""
    from raynas.results import RunDir

    if args is not None:
        changed = [flag for flag, key in _REFUSED_ON_RESUME if getattr(args, key, None) not in (None, [])]
        if changed:
            raise ConfigError(f"--resume continues {path} with the config it was started with "
                              f"(its config.yaml); {', '.join(changed)} would be ignored. Drop them, or start "
                              "a new run with the changed settings")
    from raynas.results.storage import check_storage

    run = RunDir.open(check_storage(str(path), source="--resume"))
    cfg = saved_config(run.path)
    if method is not None and cfg.method != method:
        how = "raynas train" if cfg.method == FIXED else f"raynas search {cfg.method}"
        raise ConfigError(f"{run.location} is a {cfg.method} run; resume it with `{how} --resume {run.location}`")
    return run, cfg


def saved_config(run_path: Path) -> RaynasConfig:
    """A run directory's config.yaml, upgraded from whichever raynas wrote it."""
    path = Path(run_path) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_path} has no config.yaml, so it cannot be resumed; pass the run directory "
                          "printed when the run started")
    return from_dict(RaynasConfig, upgrade_saved_config(read_config_file(path)))


@contextmanager
def new_run_or_resume(args: argparse.Namespace, label: str, make_config: Callable[[], RaynasConfig],
                      check: Callable[[RaynasConfig], Any] = lambda cfg: None,
                      start: Callable[[RaynasConfig], Any] = lambda cfg: None,
                      method: str | None = None,
                      created: Callable[[Any], Any] = lambda run: None) -> Iterator[tuple[Any, RaynasConfig, Any]]:
    """``(run, cfg, started)``: reopen ``--resume RUN_DIR`` with its saved config, or build a new config;
    ``check`` it (Ray-free), create its run directory (``created`` adds what a resume needs besides the
    config) and ``start`` (Ray, resource fit). A new directory is removed again only when an error ends the
    command before the run wrote anything, so a run that cannot start leaves none behind; a stop (Ctrl-C,
    SIGTERM) never removes it, and a resumed one is never touched. A stop becomes ``RunInterrupted`` naming
    the run to resume."""
    global CURRENT_RUN
    resume = getattr(args, "resume", None)
    if resume:
        run, cfg = open_resumed_run(resume, args, method)
        check(cfg)  # the data, weights and files it needs must still be there before Tune restores anything
        check_address(args)
        CURRENT_RUN = run
        announce_run(run, "resuming")
        try:
            with _recording(run):
                started = start(cfg)
                with syncing(run):
                    yield run, cfg, started
        except KeyboardInterrupt as exc:
            raise RunInterrupted(run.location, getattr(exc, "signum", None)) from exc
        return
    cfg = make_config()
    check(cfg)
    check_address(args)  # an address where nothing answers fails before a run directory exists
    run = create_run(cfg, label)
    run.record_meta(command=label)  # what made it: `raynas runs` names a comparison or a grid, not its 1st method
    CURRENT_RUN = run
    announce_run(run, "storing")
    definition: set[str] = set()
    try:
        created(run)
        definition = run.files()  # a run holding only these has written nothing yet
        with _recording(run):
            started = start(cfg)
            with syncing(run):
                yield run, cfg, started
    except KeyboardInterrupt as exc:
        raise RunInterrupted(run.location, getattr(exc, "signum", None)) from exc
    except Exception as exc:
        from raynas.results.storage import storage_full

        # it failed before writing anything: leave no run directory behind, unless the disk filled up (then
        # the run continues with --resume once there is space; its warm-up may be all it lost)
        if not run.written(besides=definition) and storage_full(exc, run.location) is None:
            run.remove()
            CURRENT_RUN = None
        raise


CURRENT_RUN = None  # the run this command stores (its location is printed again when the command ends)


@contextmanager
def _recording(run) -> Iterator[None]:
    """run.json says the run is running, then how it ended (``raynas runs`` lists it); a run that finished leaves
    its summary.json (``raynas.results.summary``)."""
    from raynas.results.runs import mark_ended, mark_started
    from raynas.results.summary import write_summary

    mark_started(run)
    try:
        yield
    except KeyboardInterrupt:
        mark_ended(run, "interrupted")
        raise
    except BaseException as exc:
        if run.path.exists() or run.remote is not None:
            mark_ended(run, "failed", f"{type(exc).__name__}: {exc}"[:500])
        raise
    mark_ended(run, "finished")
    try:
        write_summary(run)
    except Exception as exc:  # noqa: BLE001 - a summary must never turn a finished run into a failed command
        print(f"raynas: warning: could not write {run.where('summary.json')}: {type(exc).__name__}: {exc}",
              flush=True)


def announce_run(run, verb: str) -> None:
    """The run's storage location, at the start (a job's log shows it first thing): the location the user gave,
    never a URI run's staging copy."""
    say(f"{verb} the run at {run.location}")


@contextmanager
def syncing(run) -> Iterator[None]:
    """A run stored at a URI: upload its staging copy every ``SYNC_SECONDS`` while the body runs."""
    if run.remote is None:
        yield
        return
    import threading

    from raynas.results.storage import SYNC_SECONDS

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(SYNC_SECONDS):
            try:
                run.sync()
            except Exception as exc:  # a storage hiccup must not kill the search; the final sync retries
                print(f"raynas: warning: could not upload to {run.location}: {exc}", flush=True)

    thread = threading.Thread(target=loop, name="raynas-sync", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def end_of_command(ok: bool) -> None:
    """Upload what is left of a URI run and print where the run is stored (also after an error)."""
    global CURRENT_RUN
    run, CURRENT_RUN = CURRENT_RUN, None
    if run is None or not (run.path.exists() or run.remote is not None):
        return
    if run.remote is not None:
        try:
            run.sync()
        except Exception as exc:
            print(f"raynas: warning: could not upload the last files to {run.location}: {exc}; they are in "
                  f"{run.path}", flush=True)
            return
    say(f"run stored at {run.location}" if ok else f"the run so far is kept at {run.location}")


# ============================================================================ Ray
def check_address(args: argparse.Namespace) -> None:
    """``--address`` (or ``RAY_ADDRESS``) must answer as a Ray cluster that accepts this client, checked in
    seconds (``ray.init`` would retry for minutes)."""
    address = getattr(args, "address", None) or os.environ.get("RAY_ADDRESS")
    if not address:
        return
    import ray

    if ray.is_initialized():  # this process already runs a Ray (tests, notebooks): init_ray keeps it
        return
    from trainables.launch import check_ray_address

    check_ray_address(address)


def start_ray(args: argparse.Namespace) -> None:
    from trainables.launch import init_ray

    init_ray(getattr(args, "address", None), getattr(args, "num_cpus", None),
             dashboard=bool(getattr(args, "dashboard", False)))


def trial_resources(args: argparse.Namespace, cfg: RaynasConfig, what: str = "the trial") -> dict[str, float]:
    """Per-trial resources from --resources (else the config), with Ray started and the request checked
    against it: an impossible request fails now rather than leaving Tune waiting forever."""
    from trainables.launch import check_device, check_fits, check_gpu_request, parse_resources

    resources = parse_resources(getattr(args, "resources", None), {"cpu": cfg.resources.cpu,
                                                                      "gpu": cfg.resources.gpu})
    start_ray(args)
    # what the trial asks for, --resources first: gpu=0 runs a GPU preset on CPUs, as the refusal says
    asked = dataclasses.replace(cfg, resources=dataclasses.replace(cfg.resources, gpu=resources["gpu"]))
    if check_gpu_request(asked, resources["gpu"], bool(getattr(args, "allow_cpu", False))):
        resources["gpu"] = 0.0
    check_fits(what, [resources])
    check_device(cfg, resources["gpu"])
    return resources


# ============================================================================ reporting
def say(message: str) -> None:
    print(f"raynas: {message}", flush=True)


def finish_run(run) -> None:
    """The per-epoch table, the plots and where everything is."""
    from raynas.plots import draw_run_plots
    from raynas.results import format_table
    from raynas.results.storage import user_location

    df = run.read()
    paths = draw_run_plots(run, df)
    cols = [c for c in ("epoch", "d_loss", "g_loss", "train_loss", "train_acc", "val_acc", "test_acc", "is_mean",
                        "fid", "kid_mean", "wall_seconds") if c in df and df[c].notna().any()]
    print(format_table(df.sort_values("epoch") if "epoch" in df else df, columns=cols))
    print()
    say(f"results  {run.where('results')}  (raynas results {run.location})")
    for p in paths:
        say(f"plot     {user_location(p)}")
    say(f"TensorBoard: tensorboard --logdir {run.where(run.experiment_name)}")


def user_error_exit(exc: RaynasError) -> int:
    import sys

    print(f"raynas: error: {exc}", file=sys.stderr)
    return exc.exit_code
