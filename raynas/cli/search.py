"""``raynas search METHOD`` and ``raynas ablate METHOD``: built from the method registry, so a new method
gets both commands (with its own flags) without a CLI edit."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from raynas.cli.common import (
    add_config_args,
    add_ray_args,
    config_from_args,
    finish_run,
    new_run_or_resume,
    positive_int,
    say,
    start_ray,
)
from raynas.errors import ConfigError
from raynas.methods import all_methods, get_method, load_object
from raynas.methods.spec import Flag, Method, SearchOutcome, SearchRequest
from raynas.results.ablation import ABLATION_FILE


# ============================================================================ flags → config and options
def _flags(method: Method, command: str, extra: tuple[Flag, ...] = ()) -> list[Flag]:
    return [f for f in (*method.flags, *extra) if command in f.commands]


def _add_flags(p: argparse.ArgumentParser, flags: list[Flag]) -> None:
    for f in flags:
        if f.kind == "switch":
            p.add_argument(f.name, action="store_true", help=f.help)
            continue
        kwargs: dict[str, Any] = {"help": f.help, "default": f.default}
        if f.kind == "int":
            kwargs["type"] = positive_int
        if f.choices:
            kwargs["choices"] = f.choices
        p.add_argument(f.name, **kwargs)


def _split_flags(args: argparse.Namespace, flags: list[Flag]) -> tuple[list[str], dict[str, Any]]:
    """(config overrides from flags that set keys, options for the runner from the others)."""
    overrides, options = [], {}
    for f in flags:
        value = getattr(args, f.dest, None)
        if f.sets:
            if value not in (None, False):
                overrides.append(f"{f.sets}={value}")
        else:
            options[f.dest] = value
    return overrides, options


def _resources_overrides(method: Method, args: argparse.Namespace) -> list[str]:
    """``--resources cpu=2,gpu=0.5`` as the overrides of the method's resource keys."""
    if not getattr(args, "resources", None):
        return []
    from raynas.config import key_metadata
    from trainables.launch import parse_resources

    parsed = parse_resources(args.resources, {})
    keys = dict(zip(("cpu", "gpu"), method.resources_keys))
    for kind, value in parsed.items():
        hi = key_metadata(keys[kind]).get("hi")
        if hi is not None and value > hi:
            raise ConfigError(f"--resources {args.resources}: {kind}={value:g} is more than one "
                              f"{'Evaluator' if method.shape == 'population' else 'trial'} can take (at most "
                              f"{hi:g}; it sets {keys[kind]}). Use a fraction such as {kind}=0.25")
    return [f"{keys[k]}={v}" for k, v in parsed.items()]


def _check(method: Method):
    """The method's Ray-free checks of a new config."""
    return (lambda cfg: load_object(method.check)(cfg)) if method.check else (lambda cfg: None)


def _prepare(method: Method, args: argparse.Namespace, resume: bool):
    """Ray start-up and the resource checks; returns per-trial resources (None: the method places its actors).
    ``prepare.cfg`` holds a resumed config whose resources ``--resources`` changed."""

    def prepare(cfg):
        if resume and getattr(args, "resources", None):  # a resumed run may move to other hardware
            from trainables.launch import parse_resources

            res = parse_resources(args.resources, {"cpu": _get(cfg, method.resources_keys[0]),
                                                   "gpu": _get(cfg, method.resources_keys[1])})
            cfg = _with(cfg, {method.resources_keys[0]: res["cpu"], method.resources_keys[1]: res["gpu"]})
            prepare.cfg = cfg
        start_ray(args)
        from trainables.launch import check_device, check_fits, check_gpu_request, parse_resources

        asked = parse_resources(getattr(args, "resources", None), {})
        on_cpu = check_gpu_request(cfg, asked.get("gpu", 0.0), bool(getattr(args, "allow_cpu", False)))
        if asked and not on_cpu:  # what the user typed must exist, whatever the method does with it
            check_fits(f"--resources {args.resources}", [{"gpu": asked.get("gpu", 0.0)}])
        if method.placement:
            load_object(method.placement)(cfg)
            check_device(cfg, None)
            return None
        resources = {"cpu": cfg.resources.cpu, "gpu": 0.0 if on_cpu else cfg.resources.gpu}
        check_fits("each trial", [resources])
        check_device(cfg, resources["gpu"])
        return resources

    prepare.cfg = None
    return prepare


def _get(cfg, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _with(cfg, values: dict[str, Any]):
    import dataclasses

    for key, value in values.items():
        section, name = key.split(".")
        cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{name: value})})
    return cfg


def _refuse_flags_on_resume(args: argparse.Namespace, overrides: list[str]) -> None:
    if getattr(args, "resume", None) and overrides:
        raise ConfigError(f"--resume continues {args.resume} with the config it was started with; "
                          f"{', '.join(o.split('=')[0] for o in overrides)} would be ignored. Drop them, or start "
                          "a new run with the changed settings")


# ============================================================================ search
def cmd_search(args: argparse.Namespace) -> int:
    method = get_method(args.method)
    overrides, options = _split_flags(args, _flags(method, "search"))
    _refuse_flags_on_resume(args, overrides)
    options["seeds"] = getattr(args, "seeds", 1) or 1
    resume = bool(args.resume)
    prepare = _prepare(method, args, resume)
    make = lambda: config_from_args(args, method.name, [*_resources_overrides(method, args), *overrides])  # noqa: E731
    with new_run_or_resume(args, method.name, make, _check(method), prepare, method=method.name) as (run, cfg,
                                                                                                   resources):
        cfg = prepare.cfg or cfg
        outcome = load_object(method.runner)(SearchRequest(cfg=cfg, run=run, resources=resources, options=options,
                                                           resume=resume))
    report_outcome(f"{method.name} search", run, outcome)
    return 0


def report_outcome(title: str, run, outcome: SearchOutcome) -> None:
    """What a finished search or comparison printed: its table or text, then where everything is."""
    from raynas.plots import draw_run_plots
    from raynas.results import format_table
    from raynas.results.storage import user_location

    if outcome.table is not None and len(outcome.table):
        print(format_table(outcome.table, columns=[c for c in outcome.columns if c in outcome.table]))
    if outcome.text:
        print(outcome.text)
    print()
    say(f"{title} finished: {run.where()}")
    listed = set()
    for name, path in outcome.outputs.items():
        say(f"{name:9s} {user_location(path)}")
        listed.add(os.path.normpath(user_location(path)))
    for p in draw_run_plots(run):
        if os.path.normpath(user_location(p)) not in listed:  # a plot the outcome names (DARTS-GAL's masks.png)
            say(f"plot     {user_location(p)}")
    # a note that says where TensorBoard looks (EAGAN writes its own folder) replaces the general hint
    tensorboard = next((n for n in outcome.notes if n.startswith(TENSORBOARD)), None)
    for note in outcome.notes:
        if note is not tensorboard:
            say(note)
    for nested in outcome.runs:
        print()
        finish_run(nested)
        _summarise_nested(nested)
    for caveat in search_caveats(run):
        say(caveat)
    next_steps(run, tensorboard=tensorboard, retrain=outcome.retrain)


def search_caveats(run) -> list[str]:
    """What a reader must know before trusting a finished search: a quickstart preset is a smoke test of the
    pipeline (a 1-epoch classifier search ends near chance with a mostly-pooling cell), and α that is still near
    uniform at the last epoch (mean top1 − top2 margin of the normalised weights below ``NEAR_UNIFORM_MARGIN``)
    has not chosen anything yet: its genotype is close to a random pick."""
    import pandas as pd

    from raynas.plots.alpha import NEAR_UNIFORM_MARGIN

    notes = []
    df = run.read()
    if "alpha_margin_mean" in df and df["alpha_margin_mean"].notna().any():
        rows = df[df["alpha_margin_mean"].notna()].assign(_e=lambda d: pd.to_numeric(d.get("epoch"), errors="coerce"))
        last = rows.sort_values("_e").groupby(rows["candidate_id"].fillna(""), sort=False).tail(1)
        margin = float(pd.to_numeric(last["alpha_margin_mean"], errors="coerce").max())
        if margin < NEAR_UNIFORM_MARGIN:
            epochs = int(rows["_e"].max()) if rows["_e"].notna().any() else 0
            notes.append(f"warning: α is still near uniform after {epochs} search epoch{'s' * (epochs != 1)} (mean "
                         f"top1 − top2 margin {margin:.3g} < {NEAR_UNIFORM_MARGIN}): the search has not decided, so "
                         "the genotype is close to a random pick; search longer (more epochs) before trusting it")
    preset = str(run.config.get("preset") or run.meta.get("preset") or "")
    if preset.startswith("quickstart"):
        notes.append(f"note: {preset} is a smoke test of the pipeline on a tiny budget, not a result; for results "
                     "use a paper preset (`raynas presets`)")
    return notes


TENSORBOARD = "TensorBoard: "


def next_steps(run, *, tensorboard: str | None = None, retrain: str | None = None, report: bool = False) -> None:
    """What to do with a finished run, printed last by every search and ablation: its table, its TensorBoard
    (one hint), and the retrain of what it found or the command that redraws its plots."""
    say(f"results  raynas results {run.where()}")
    if report:
        say(f"report   raynas report {run.where()}  (redraws the plots)")
    say(tensorboard or f"{TENSORBOARD}tensorboard --logdir {run.where()}")
    if retrain:
        say(f"retrain  {retrain}")


def _summarise_nested(run) -> None:
    """A nested run the search made and finished (``--then-retrain``'s retrain) leaves its summary.json too."""
    from raynas.results.summary import write_summary

    try:
        write_summary(run)
        run.sync()
    except Exception as exc:  # noqa: BLE001 - provenance only, as the run's own summary
        say(f"warning: could not write {run.where('summary.json')}: {type(exc).__name__}: {exc}")


# ============================================================================ ablate (generic grid)
def parse_grid(items: list[str], method: Method, make_config) -> dict[str, list[Any]]:
    """``KEY=V1,V2`` items → {dotted key: values}; every value is validated as a whole config now.

    KEY is a short alias (``kprime``), a key of the method's section (``k`` → ``swd.k``) or any dotted
    key (``train.lr_g``)."""
    import yaml

    from raynas.config import all_keys

    section_keys = [k for k in all_keys() if k.startswith(f"{method.section}.")]
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        full = method.grid_aliases.get(key) or (f"{method.section}.{key}" if f"{method.section}.{key}" in
                                                section_keys else key)
        if not sep or "." not in full or full not in all_keys():
            short = sorted({*method.grid_aliases, *(k.split(".", 1)[1] for k in section_keys)})
            example = method.default_grid[0] if method.default_grid else "train.lr_g=1e-4,2e-4"
            raise ConfigError(f"--grid {item!r}: write KEY=V1,V2,... with KEY one of {', '.join(short)} or any "
                              f"section.key from `raynas config keys` (e.g. --grid {example})")
        values = [yaml.safe_load(v.strip()) for v in raw.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--grid {item!r} lists no values")
        if len(set(map(str, values))) != len(values):
            raise ConfigError(f"--grid {item!r} repeats a value")
        for v in values:  # each cell must be a config that can run
            cfg = make_config([f"{full}={v}"])
            if method.check:
                load_object(method.check)(cfg)
        grid[full] = values
    return grid


def cmd_ablate(args: argparse.Namespace) -> int:
    from ray import tune

    method = get_method(args.method)
    overrides, options = _split_flags(args, _flags(method, "ablate"))
    _refuse_flags_on_resume(args, overrides)
    resume = bool(args.resume)
    prepare = _prepare(method, args, resume)
    base = [*_resources_overrides(method, args), *overrides]
    make = lambda extra=(): config_from_args(args, method.name, [*base, *extra])  # noqa: E731
    spec: dict[str, Any] = {}
    scheduler = getattr(args, "scheduler", None) or "fifo"
    if scheduler == "asha" and method.ablation_runner:
        raise ConfigError(f"--scheduler asha stops Tune trials early, but `raynas ablate {method.name}` runs its "
                          "cells one after another as whole searches; drop --scheduler")
    if scheduler == "asha" and not getattr(args, "metric", None):
        metrics = ", ".join(m for m, _ in method.ablation_metrics)
        raise ConfigError(f"--scheduler asha needs --metric: the score it compares trials by (fid, is, accuracy "
                          f"= val_acc, or any key the cells report, e.g. {metrics})")
    if resume and (getattr(args, "scheduler", None) or getattr(args, "metric", None)):
        raise ConfigError(f"--resume continues {args.resume} with the scheduler it was started with; drop "
                          "--scheduler/--metric")
    if not resume:
        make()  # config errors first
        grid = parse_grid(args.grid or list(method.default_grid), method, make)
        spec = {"grid": grid, "seeds": args.seeds, "retrain_epochs": options.get("retrain_epochs")}
        if scheduler == "asha":
            spec["scheduler"] = {"name": "asha", "metric": args.metric, "grace_period": args.grace_period}

    def define(run) -> None:  # with the run's config, before Ray starts: a grid stopped that early resumes too
        (run.path / ABLATION_FILE).write_text(json.dumps(spec, indent=2) + "\n")

    with new_run_or_resume(args, f"{method.name}-ablation", make, _check(method), prepare,
                           method=method.name, created=define) as (run, cfg, res):
        cfg = prepare.cfg or cfg
        from trainables.launch import run_trainable

        if resume:
            path = run.path / ABLATION_FILE
            spec = json.loads(path.read_text()) if path.is_file() else {
                "grid": {method.grid_aliases.get(k, k): None for k in
                         (i.partition("=")[0] for i in method.default_grid)}}
        if method.ablation_runner:  # the method runs its cells itself, one after another
            load_object(method.ablation_runner)(SearchRequest(
                cfg=cfg, run=run, resources=res, resume=resume,
                options={"cells": grid_cells(spec, cfg.train.seed), "retrain_epochs": spec.get("retrain_epochs")}))
        else:
            from trainables.launch import asha_scheduler, record_stopped

            # Tune restores a resumed grid itself; the grid is built for a run stopped before Tune began too
            space = None
            if None not in spec["grid"].values():
                space = (load_object(method.ablation_space)(spec["grid"]) if method.ablation_space else
                         {key: tune.grid_search(values) for key, values in spec["grid"].items()})
                space["train.seed"] = tune.grid_search([cfg.train.seed + i for i in range(int(spec.get("seeds") or 1))])
                space["retrain_epochs"] = spec.get("retrain_epochs")
            asha = spec.get("scheduler") or {}
            sched = asha_scheduler(asha["metric"], asha.get("grace_period") or 1) if asha else None
            results = run_trainable(load_object(method.ablation_cell), cfg, run, resources=res, param_space=space,
                                    resume=resume, max_concurrent=getattr(args, "max_concurrent", None) or 0,
                                    scheduler=sched, desc=f"{method.name} ablation")
            if asha:
                stopped = record_stopped(results, run, method.ablation_stage, asha["metric"])
                say(f"ASHA on {asha['metric']} stopped {stopped} of {len(results)} trials early (stopped=True in "
                    "the table)")
    summarize_ablation(method, run, list(spec["grid"]), early_stopping=bool(spec.get("scheduler")))
    return 0


def grid_cells(spec: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Every (grid point, seed) of an ablation as a dict of dotted config overrides."""
    import itertools

    keys = list(spec["grid"])
    seeds = [seed + i for i in range(int(spec.get("seeds") or 1))]
    return [{**dict(zip(keys, values)), "train.seed": s}
            for values in itertools.product(*spec["grid"].values()) for s in seeds]


def summarize_ablation(method: Method, run, keys: list[str], early_stopping: bool = False) -> None:
    from raynas.methods.figures import draw_method_ablation
    from raynas.results import format_table
    from raynas.results.ablation import grid_summary, summary_name
    from raynas.results.storage import user_location

    axes = [k.rsplit(".", 1)[-1] for k in keys]
    df = run.read()
    if early_stopping and "stopped" not in df:
        df["stopped"] = False
    if "stopped" in df:  # an early-stopping grid: every cell says whether it ran to the end
        df["stopped"] = df["stopped"].astype("boolean").fillna(False).astype(bool)
    groups = [*axes, *(c for c in method.ablation_group_by if c not in axes)]
    cells, means = grid_summary(df, groups, stage=method.ablation_stage)
    name = summary_name(axes)
    cells.to_parquet(run.path / f"{name}.parquet", index=False)
    metrics = [m for m, _ in method.ablation_metrics]
    print(format_table(cells, columns=[c for c in [*groups, "seed", "stopped", *metrics, "params", "flops",
                                                   "search_gpu_seconds",
                                                   "search_seconds"] if c in cells]))
    plots = draw_method_ablation(method, cells, means, axes, run.plots_dir)
    if not means.empty:
        means.to_parquet(run.path / f"{name}_mean.parquet", index=False)
        print()
        print(format_table(means, columns=[c for c in [*groups, "seeds", *(f"{m}_{s}" for m in metrics
                                                                           for s in ("mean", "std")),
                                                  "search_gpu_seconds_mean", "search_seconds_mean"] if c in means]))
    print()
    say(f"table  {run.where(f'{name}.parquet')}" + (f"  (means over seeds: {name}_mean.parquet)"
                                                       if not means.empty else ""))
    for p in plots:
        if p is not None:
            say(f"plot   {user_location(p)}")
    next_steps(run, report=True)


# ============================================================================ ablations with a command of their own
def cmd_extra_ablation(args: argparse.Namespace) -> int:
    method = get_method(args.method)
    ablation = next(a for a in method.ablations if a.name == args.ablation)
    flags = _flags(method, ablation.name, ablation.flags)
    overrides, options = _split_flags(args, flags)
    _refuse_flags_on_resume(args, overrides)
    resume = bool(args.resume)
    prepare = _prepare(method, args, resume)

    def check(cfg):
        _check(method)(cfg)
        if ablation.check:
            options.update(load_object(ablation.check)(cfg, options))

    make = lambda: config_from_args(args, method.name, [*_resources_overrides(method, args), *overrides])  # noqa: E731
    with new_run_or_resume(args, ablation.name, make, check, prepare, method=method.name) as (run, cfg, resources):
        load_object(ablation.runner)(SearchRequest(cfg=prepare.cfg or cfg, run=run, resources=resources,
                                                   options=options, resume=resume))
    next_steps(run, report=True)
    return 0


# ============================================================================ parsers from the registry
def register(sub: argparse._SubParsersAction, commands) -> None:
    search = sub.add_parser("search", help="run an architecture search")
    ssub = search.add_subparsers(dest="method", required=True, metavar="METHOD")
    ablate = sub.add_parser("ablate", help="ablation studies as Tune grids")
    asub = ablate.add_subparsers(dest="ablation", required=True, metavar="METHOD")
    for method in all_methods():
        if method.runner:
            s = ssub.add_parser(method.name, help=method.summary)
            add_config_args(s, method.quickstart)
            add_ray_args(s, "per-Evaluator resources, e.g. gpu=0.125,cpu=1" if method.shape == "population"
                         else "per-trial resources, e.g. gpu=0.5,cpu=2")
            _add_flags(s, _flags(method, "search"))
            if method.shape == "differentiable":
                s.add_argument("--seeds", type=positive_int, default=1,
                               help="independent searches as parallel trials; the best is kept (default 1)")
            s.add_argument("--resume", metavar="RUN_DIR", help="resume a killed search from its checkpoints")
            s.set_defaults(func=commands.cmd_search)
        if method.ablation_cell or method.ablation_runner:
            a = asub.add_parser(method.name, help=f"{method.name}: Tune grid over config keys, seeds as replicates")
            add_config_args(a, method.quickstart)
            add_ray_args(a)
            _add_flags(a, _flags(method, "ablate"))
            a.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                           help="grid axis, repeatable (default: " + " ".join(method.default_grid) + ")")
            a.add_argument("--seeds", type=positive_int, default=1, help="seeds per grid point (train.seed, +1, ...)")
            a.add_argument("--max-concurrent", type=positive_int, help="cap on concurrent cells")
            a.add_argument("--scheduler", choices=("fifo", "asha"),
                           help="asha: Tune's ASHA stops weak cells early by --metric (stopped cells stay in the "
                                "table, stopped=True); default fifo: every cell runs to the end")
            a.add_argument("--metric", help="what --scheduler asha compares: fid, is, accuracy (= val_acc), or any "
                                            "reported key")
            a.add_argument("--grace-period", type=positive_int, default=1,
                           help="--scheduler asha: epochs every cell runs before it may be stopped (default 1)")
            a.add_argument("--resume", metavar="RUN_DIR", help="resume a killed ablation from its checkpoints")
            a.set_defaults(func=commands.cmd_ablate, method=method.name)
        for extra in method.ablations:
            e = asub.add_parser(extra.name, help=extra.help)
            add_config_args(e, method.quickstart)
            add_ray_args(e)
            _add_flags(e, _flags(method, extra.name, extra.flags))
            e.add_argument("--max-concurrent", type=positive_int, help="cap on concurrent trials")
            e.add_argument("--resume", metavar="RUN_DIR", help="resume a killed ablation")
            e.set_defaults(func=commands.cmd_extra_ablation, method=method.name)
