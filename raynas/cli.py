"""The ``raynas`` command line.

Every user mistake surfaces as a ``RaynasError``: printed as one clear message (no traceback) with
exit status 2. Heavy imports (torch, Ray) happen inside the commands so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from raynas.errors import ConfigError, RaynasError


# ----------------------------------------------------------------------------- shared options
def _add_config_args(p: argparse.ArgumentParser, default_preset: str = "quickstart") -> None:
    p.add_argument("--preset", default=default_preset,
                   help=f"preset name or YAML path (default: {default_preset}; see `raynas presets`)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=5 (repeatable; see `raynas config keys`)")
    p.add_argument("--data-root", help="dataset folder (else RAYNAS_DATA, then system locations)")
    p.add_argument("--inception-weights", help="local Inception weights file for IS/FID/KID")
    p.add_argument("--name", help="run directory name (default: PRESET-TIMESTAMP)")
    p.add_argument("--output-dir", help="where run directories go (default: runs)")


def _add_ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resources", help="per-trial resources, e.g. gpu=0.5,cpu=2")
    p.add_argument("--address", help="Ray cluster address (e.g. auto); default: RAY_ADDRESS or embedded local Ray")
    p.add_argument("--num-cpus", type=int, help="CPUs for the embedded local Ray (default: all)")


def _config_from_args(args: argparse.Namespace):
    from raynas.config import load_config

    overrides = list(args.overrides)
    for flag, key in (("data_root", "data.root"), ("inception_weights", "eval.inception_weights"),
                      ("name", "run.name"), ("output_dir", "run.output_dir")):
        value = getattr(args, flag, None)
        if value:
            overrides.append(f"{key}={value}")
    return absolute_paths(load_config(args.preset, overrides))


PATH_KEYS = (("data", "root"), ("eval", "inception_weights"), ("model", "g_genotype"), ("model", "d_genotype"),
             ("eagan", "fixed_d_genotype"), ("run", "output_dir"))


def absolute_paths(cfg):
    """Ray workers (and Tune trials, which change directory) do not share the shell's working directory:
    make every path in the config absolute before it leaves this process."""
    import dataclasses

    from raynas.spaces.genotype import builtin_genotypes

    for section, key in PATH_KEYS:
        value = getattr(getattr(cfg, section), key)
        shipped = key.endswith("genotype") and value in builtin_genotypes() and not os.path.exists(value)
        if value and not shipped:
            absolute = os.path.abspath(os.path.expanduser(value))
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{key: absolute})})
    return cfg


def _create_run(cfg, method: str):
    from raynas.results import RunDir

    name = cfg.run.name or f"{cfg.preset}-{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    return RunDir.create(cfg.run.output_dir, name, config=cfg.to_dict(), seed=cfg.train.seed, preset=cfg.preset,
                         device=cfg.train.device)


def _open_resumed_run(path: str, args: argparse.Namespace | None = None):
    """(run, cfg) of a run to resume, with the config it was started with. Settings given alongside
    ``--resume`` would be silently ignored, so they are refused."""
    from raynas.config import RaynasConfig, from_dict, upgrade_saved_config
    from raynas.results import RunDir

    if args is not None:
        changed = [flag for flag, key in (("--set", "overrides"), ("--data-root", "data_root"),
                                          ("--inception-weights", "inception_weights"), ("--name", "name"),
                                          ("--output-dir", "output_dir")) if getattr(args, key, None)]
        if changed:
            raise ConfigError(f"--resume continues {path} with the config it was started with "
                              f"(its config.yaml); {', '.join(changed)} would be ignored. Drop them, or start "
                              "a new run with the changed settings")
    run = RunDir.open(path)
    import yaml

    cfg = from_dict(RaynasConfig, upgrade_saved_config(yaml.safe_load((run.path / "config.yaml").read_text())))
    return run, cfg


def start_or_resume(args: argparse.Namespace, method: str, check: Callable) -> tuple:
    """(run, cfg): reopen ``--resume RUN_DIR`` with its saved config, or validate a new config with
    ``check`` (raising before anything is written) and create its run directory."""
    if getattr(args, "resume", None):
        return _open_resumed_run(args.resume, args)
    cfg = _config_from_args(args)
    check(cfg)
    return _create_run(cfg, method), cfg


# ----------------------------------------------------------------------------- commands
def trial_resources(args: argparse.Namespace, cfg, what: str = "the trial") -> dict[str, float]:
    """Per-trial resources from --resources (else the config), with Ray started and the request checked
    against it: an impossible request fails now rather than leaving Tune waiting forever."""
    from trainables.launch import check_fits, init_ray, parse_resources

    resources = parse_resources(args.resources, {"cpu": cfg.resources.cpu, "gpu": cfg.resources.gpu})
    init_ray(args.address, args.num_cpus)
    check_fits(what, [resources])
    return resources


def cmd_train(args: argparse.Namespace) -> int:
    from raynas.preflight import preflight

    run, cfg = start_or_resume(args, "train", preflight)
    try:
        resources = trial_resources(args, cfg)
    except RaynasError:
        if not args.resume:  # nothing ran: leave no empty run directory behind
            import shutil

            shutil.rmtree(run.path, ignore_errors=True)
        raise
    from trainables.gan import train_gan
    from trainables.launch import run_trainable

    print(f"raynas: run directory {run.path}")
    run_trainable(train_gan, cfg, run, resources=resources, resume=bool(args.resume))
    _finish_run(run)
    return 0


def _finish_run(run) -> None:
    from raynas.plots import draw_run_plots
    from raynas.results import format_table

    df = run.read()
    paths = draw_run_plots(run)
    cols = [c for c in ("epoch", "d_loss", "g_loss", "is_mean", "fid", "kid_mean", "wall_seconds") if c in df]
    print(format_table(df.sort_values("epoch") if "epoch" in df else df, columns=cols))
    print(f"\nraynas: results  {run.results_dir}  (raynas results {run.path})")
    for p in paths:
        print(f"raynas: plot     {p}")
    print(f"raynas: TensorBoard: tensorboard --logdir {run.path / 'tune'}")


def cmd_metrics(args: argparse.Namespace) -> int:
    from raynas.device import resolve_device
    from raynas.metrics import compute_metrics, parse_source

    device = resolve_device(args.device)
    kw = {"root": args.data_root, "resolution": args.resolution, "channels": args.channels}
    fake = parse_source(args.source1, checkpoint_loader=_load_generator_checkpoint, device=device, **kw)
    real = parse_source(args.source2, checkpoint_loader=_load_generator_checkpoint, device=device, **kw)
    result = compute_metrics(fake, real, metrics=tuple(args.metrics.split(",")), protocol=args.protocol,
                             num_samples=args.num_samples, extractor=args.extractor,
                             inception_weights=args.inception_weights, device=device, progress=True)
    for key, value in result.as_row().items():
        print(f"{key:12s} {value}")
    return 0


def _load_generator_checkpoint(path: str, device=None):
    """A trainer checkpoint (state.pt of a run, or its checkpoint folder) → (EMA generator, latent_dim)."""
    from raynas.checkpoints import load_generator

    return load_generator(path, device=device)


def cmd_results(args: argparse.Namespace) -> int:
    from raynas.errors import RunDirError
    from raynas.results import RunDir, export_csv, format_table, pareto_front

    run = RunDir.open(args.run_dir)
    df = run.read()
    if df.empty:
        raise RunDirError(f"{run.path} has no results yet; they appear after the first epoch or round")
    if args.pareto:
        objectives = []
        for item in args.pareto.split(","):
            name, _, direction = item.partition(":")
            if name not in df.columns or direction not in ("min", "max"):
                raise RunDirError(f"--pareto {args.pareto!r}: use COLUMN:min|max with columns from: "
                                  f"{', '.join(df.columns)}")
            objectives.append((name, direction))
        df = pareto_front(df, objectives)
    print(format_table(df, max_rows=args.max_rows))
    if args.csv:
        export_csv(df, args.csv)
        print(f"raynas: wrote {args.csv}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from raynas.plots import draw_run_plots
    from raynas.results import RunDir

    if args.out and not args.compare:
        raise ConfigError("--out names the comparison plot; pass the runs to compare with --compare RUN_DIR ...")
    run = RunDir.open(args.run_dir)
    for p in draw_run_plots(run):
        print(f"raynas: plot {p}")
    if args.compare:
        from raynas.plots import draw_learning_curves

        runs = {run.path.name: run.read()}
        for other in args.compare:
            o = RunDir.open(other)
            label = o.path.name if o.path.name not in runs else str(other)
            runs[label if label not in runs else f"{label} ({len(runs) + 1})"] = o.read()
        out = Path(args.out) if args.out else run.path / "plots" / "compare.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        if draw_learning_curves(runs, out) is None:
            raise ConfigError("none of these runs has per-round search results to compare (EAGAN runs do)")
        print(f"raynas: plot {out}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from raynas.config import PRESET_DIR, list_presets
    from raynas.spaces.genotype import builtin_genotypes

    for name in list_presets():
        first = (PRESET_DIR / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ")
        print(f"{name:18s} {first}")
    print("\nshipped genotypes (use the name wherever a genotype file is asked for):")
    for name, path in builtin_genotypes().items():
        print(f"{name:18s} {path}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from raynas.config import describe_keys

    if args.action == "keys":
        print("\n".join(describe_keys()))
        return 0
    print(yaml.safe_dump(_config_from_args(args).to_dict(), sort_keys=False), end="")
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raynas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train (and evaluate) a fixed GAN as a Ray Tune trial")
    _add_config_args(p)
    _add_ray_args(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="resume an interrupted run from its checkpoints")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("metrics", help="IS/FID/KID between two sources (real-vs-real baselines too)")
    p.add_argument("source1", help="dataset:NAME:SPLIT | folder:PATH | checkpoint:PATH (scored as fake)")
    p.add_argument("source2", help="dataset:NAME:SPLIT | folder:PATH | checkpoint:PATH (reference)")
    p.add_argument("--metrics", default="is,fid,kid")
    p.add_argument("--protocol", default="search", choices=("quick", "search", "paper"))
    p.add_argument("--num-samples", type=int)
    p.add_argument("--extractor", default="inception-v3-compat")
    p.add_argument("--inception-weights")
    p.add_argument("--data-root")
    p.add_argument("--resolution", type=int)
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("results", help="print a run's results table (optionally Pareto-filtered, CSV)")
    p.add_argument("run_dir")
    p.add_argument("--csv", help="also export the table to this CSV file")
    p.add_argument("--pareto", help="keep non-dominated rows, e.g. is_mean:max,fid:min,params:min")
    p.add_argument("--max-rows", type=int, default=50)
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("report", help="draw a run's plots into RUN_DIR/plots")
    p.add_argument("run_dir")
    p.add_argument("--compare", nargs="+", metavar="RUN_DIR",
                   help="also draw best IS/FID per round of these searches beside RUN_DIR's (Figs. 6 and 7)")
    p.add_argument("--out", help="comparison plot path (default RUN_DIR/plots/compare.png)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("presets", help="list the presets")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("config", help="show the resolved config of a preset, or every key")
    p.add_argument("action", choices=("show", "keys"))
    _add_config_args(p)
    p.set_defaults(func=cmd_config)

    for register in EXTRA_COMMANDS:
        register(sub)
    return parser


# Method modules add their sub-commands here (search, retrain, arch, ablate).
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    from raynas import commands, commands_damgan  # noqa: F401  (register method sub-commands)

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RaynasError as exc:
        print(f"raynas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("raynas: interrupted; results and checkpoints written so far are kept "
              f"(resume with --resume {Path('RUN_DIR')})", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # stdout piped into `head` and closed: stop quietly, as shell tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        raise


if __name__ == "__main__":
    sys.exit(main())
