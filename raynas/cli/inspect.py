"""Commands that read rather than run: presets, config, arch show, results, report, metrics."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from raynas.cli.common import (
    add_config_args,
    add_skip_damaged_arg,
    check_writable,
    config_from_args,
    non_negative_int,
    positive_int,
    say,
    writing,
)
from raynas.config import FIXED
from raynas.errors import ConfigError, RunDirError


def cmd_presets(args: argparse.Namespace) -> int:
    """The presets as a table: name, the method and task a run of it gets by default, its whole description."""
    import shutil
    import textwrap

    from raynas.config import PRESET_DIR, list_presets, load_preset_dict, method_task, upgrade_saved_config
    from raynas.spaces.genotype import builtin_genotypes

    rows = []
    for name in list_presets():
        data = upgrade_saved_config(load_preset_dict(name))
        method = str(data.get("method") or FIXED)
        task = method_task(method) or str(data.get("task") or "gan")
        rows.append((name, method, task, preset_description(PRESET_DIR / f"{name}.yaml")))
    head = ("preset", "method", "task")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    indent = sum(widths) + 2 * len(widths)
    room = max(40, shutil.get_terminal_size((120, 24)).columns - indent - 1)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)) + "  description")
    for row in rows:
        lines = textwrap.wrap(row[3], room) or [""]
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)) + "  " + lines[0])
        for more in lines[1:]:
            print(" " * indent + more)
    print(f"\n(method: what `raynas search` and `raynas train` run by default; `{FIXED}` is a fixed network)")
    print("\nshipped genotypes (use the name wherever a genotype file is asked for):")
    for name, path in builtin_genotypes().items():
        print(f"{name:24s} {path}")
    return 0


def preset_description(path: Path, max_lines: int = 6) -> str:
    """A preset file's opening comment up to the end of its first sentence (a line ending in a full stop), so a
    description that runs over several comment lines is not cut at the first."""
    parts = []
    for line in path.read_text().splitlines()[:max_lines]:
        if not line.startswith("#"):
            break
        parts.append(line.lstrip("#").strip())
        if parts[-1].endswith("."):
            break
    return " ".join(p for p in parts if p)


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from raynas.config import describe_keys

    if args.action == "keys":
        print("\n".join(describe_keys()))
        return 0
    cfg = config_from_args(args, args.method or None)  # None: the preset's own method
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0


def cmd_arch_show(args: argparse.Namespace) -> int:
    from raynas.nn.profile import FAMILY_DEFAULTS, describe, format_any

    if args.genotype in FAMILY_DEFAULTS:
        return _family_show(args)
    family_only = [flag for flag, value in (("--resolution", args.resolution), ("--latent", args.latent),
                                            ("--channel-multiplier", args.channel_multiplier),
                                            ("--mapping-layers", args.mapping_layers)) if value]
    if family_only:
        raise ConfigError(f"{', '.join(family_only)} apply to `arch show stylegan2|progan` only; a genotype's "
                          "sizes come from --dataset, --width, --layers and --channels (or --from-run, --preset)")
    from raynas.spaces import Genotype

    sized = _sizes_config(args)  # (config, what it is) of --from-run / --preset, else None
    genotype = Genotype.load(args.genotype)
    if args.png:
        check_writable(args.png, "--png")
    options = {"dataset": args.dataset or "cifar10", "width": args.width, "layers": args.layers,
               "channels": args.channels}
    from raynas.spaces.genotype import space_role

    if space_role(genotype.space) == "pair":  # a coupled-search pair: describe each half
        from raynas.spaces import get_space

        halves = dict(zip("GD", get_space(genotype.space).split(genotype)))
    else:
        halves = {"": genotype}
    summaries = {k: describe(g, **options) if sized is None else _describe_as_built(g, *sized)
                 for k, g in halves.items()}
    if args.json:
        out = summaries[""] if "" in summaries else {
            "space": genotype.space, "params": sum(x["params"] for x in summaries.values()),
            "flops": sum(x["flops"] for x in summaries.values()), **summaries}
        print(json.dumps(out, indent=2))
    else:
        print("\n\n".join(format_any(x) for x in summaries.values()))
    if args.png:
        from raynas.spaces.draw import draw_genotype

        for k, g in halves.items():
            png = Path(args.png) if not k else Path(args.png).with_name(f"{Path(args.png).stem}_{k}.png")
            with writing(png, "--png"):
                draw_genotype(g, png)
            if not args.json:
                say(f"diagram {png}")
    return 0


def _sizes_config(args: argparse.Namespace):
    """``--from-run RUN`` (its saved config.yaml) or ``--preset NAME`` as (config, how to name it); None without
    either. The sizes then come from that config alone, so the size flags are refused beside it."""
    source = [flag for flag, value in (("--from-run", args.from_run), ("--preset", args.preset)) if value]
    if not source:
        return None
    given = [flag for flag, value in (("--dataset", args.dataset), ("--width", args.width), ("--layers", args.layers),
                                      ("--channels", args.channels)) if value]
    if len(source) > 1 or given:
        raise ConfigError(f"{' and '.join(source + given)}: {source[0]} gives every size (the dataset's images, "
                          "widths, latent, cells); pass it alone, or give the sizes without it")
    if args.from_run:
        from raynas.cli.common import saved_config
        from raynas.results import RunDir

        run = RunDir.open(args.from_run)
        return saved_config(run.path), f"run {run.location}"
    from raynas.config import load_config

    return load_config(args.preset), f"preset {args.preset}"


def _describe_as_built(genotype, cfg, source: str) -> dict:
    """The summary of exactly the network a run of ``cfg`` builds for ``genotype`` (``raynas.build``)."""
    from raynas.build import run_network_sizes
    from raynas.nn.profile import describe, summarize

    sizes, which = run_network_sizes(cfg, genotype, _searched_sizes(cfg, genotype))
    summary = describe(genotype, **sizes) if "dataset" in sizes else summarize(genotype, **sizes)
    summary["sizes_from"] = f"sizes: {which}, from the {source}"
    return summary


def _searched_sizes(cfg, genotype):
    """The run's method's own sizes (``Method.network_sizes``) when it searches ``genotype``'s space, else None."""
    from raynas.config import FIXED
    from raynas.methods import get_method, load_object

    if cfg.method == FIXED:
        return None
    method = get_method(cfg.method)
    return load_object(method.network_sizes) if method.network_sizes and genotype.space in method.spaces else None


def _family_show(args: argparse.Namespace) -> int:
    """``raynas arch show stylegan2|progan``: G and D sizes of a fixed family (the Re-GAN authors' by default)."""
    from raynas.nn.profile import FAMILY_DEFAULTS, format_family, summarize_family

    given = {"resolution": args.resolution, "channel_multiplier": args.channel_multiplier, "latent": args.latent,
             "mapping_layers": args.mapping_layers, "channels": args.channels}
    sizes = {k: v for k, v in given.items() if v is not None}
    wrong = [f"--{k.replace('_', '-')}" for k in sizes if k not in FAMILY_DEFAULTS[args.genotype]]
    wrong += [flag for flag, value in (("--width", args.width), ("--layers", args.layers), ("--png", args.png),
                                       ("--dataset", args.dataset), ("--from-run", args.from_run),
                                       ("--preset", args.preset)) if value]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)} does not apply to {args.genotype}; its settings are "
                          + ", ".join(f"--{k.replace('_', '-')}" for k in FAMILY_DEFAULTS[args.genotype]
                                      if k != "image_channels"))
    try:
        summary = summarize_family(args.genotype, **sizes)
    except ValueError as exc:
        raise ConfigError(f"arch show {args.genotype}: {exc}") from None
    print(json.dumps(summary, indent=2) if args.json else format_family(summary))
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from raynas.results import RunDir, export_csv, format_table

    if args.csv:
        check_writable(args.csv, "--csv")
    _not_a_folder_of_runs(args.run_dir)
    run = RunDir.open(args.run_dir)
    df = run.read()
    if df.empty:
        raise RunDirError(f"{run.location} has no results yet; they appear after the first epoch or round")
    objectives: list[tuple[str, str]] = []
    if args.pareto:
        for item in args.pareto.split(","):
            name, _, direction = item.partition(":")
            if name not in df.columns or direction not in ("min", "max"):
                raise RunDirError(f"--pareto {args.pareto!r}: use COLUMN:min|max with columns from: "
                                  f"{', '.join(df.columns)}")
            objectives.append((name, direction))
        df = pareto_fronts(df, objectives, every_round=args.all_rounds)
    from raynas.plots import run_stages, stage_order
    from raynas.results.table import in_run_order, readable_columns

    df = in_run_order(df, stage_order(df, run_stages(run)))
    every = [c for c in df.columns if df[c].notna().any()]
    columns = None if args.all else list(dict.fromkeys([*readable_columns(df), *(o for o, _ in objectives)]))
    methods = ", ".join(str(m) for m in df["method"].dropna().unique()) if "method" in df else ""
    what = f"{len(df)} row{'s' * (len(df) != 1)}" + (f", method {methods}" if methods else "")
    if columns is not None and len(columns) < len(every):
        what += f"; {len(columns)} of {len(every)} columns, --all shows every one"
    say(f"results of {run.location} ({what})")
    print(format_table(df, columns=columns, max_rows=args.max_rows))
    from raynas.results.compare import print_comparison

    print_comparison(run.path)  # a `raynas compare` run: its table, summary per method and paired tests
    if args.csv:
        with writing(args.csv, "--csv"):
            export_csv(df, args.csv)
        say(f"wrote {args.csv}")
    return 0


def _not_a_folder_of_runs(spec: str) -> None:
    """``raynas results STORAGE`` given the folder the runs are stored in: point to ``raynas runs``."""
    from raynas.results.runs import holds_runs
    from raynas.results.storage import Location, is_uri

    try:
        loc = Location.parse(spec)
        if loc.child("run.json").is_file() or (not is_uri(spec) and not loc.is_dir()):
            return
    except (OSError, RunDirError):
        return
    if holds_runs(spec):
        raise RunDirError(f"{spec} holds runs but is not one itself; list them with `raynas runs {spec}` and pass "
                          "one run to `raynas results`")


def pareto_fronts(df, objectives, every_round: bool = False):
    """One front per (stage, last round) of a search's rows (G and D candidates are different networks,
    and earlier rounds trained on other weights); ``every_round``: one front over every row given."""
    import pandas as pd

    from raynas.results import pareto_front

    if every_round or "stage" not in df or "round" not in df or df["round"].isna().all():
        return pareto_front(df, objectives)
    fronts = []
    for _, rows in df.groupby("stage", sort=False):
        rounds = pd.to_numeric(rows["round"], errors="coerce")
        fronts.append(pareto_front(rows[rounds == rounds.max()], objectives))
    return pd.concat(fronts) if fronts else df.iloc[0:0]


def cmd_report(args: argparse.Namespace) -> int:
    from raynas.plots import draw_comparison, draw_run_plots
    from raynas.results import RunDir

    if args.out and not args.compare:
        raise ConfigError("--out names the comparison plot; pass the runs to compare with --compare RUN_DIR ...")
    if args.out:
        check_writable(args.out, "--out")
    from raynas.results.storage import user_location

    run = RunDir.open(args.run_dir)
    with writing(run.path / "plots", "the run's plots folder"):
        plots = draw_run_plots(run)
    run.sync()  # a run stored at a URI gets its plots there (nothing for a folder)
    for p in plots:
        say(f"plot {user_location(p)}")
    if args.compare:
        out = Path(args.out) if args.out else run.path / "plots" / "compare.png"
        with writing(out, "--out" if args.out else "the comparison plot"):
            out.parent.mkdir(parents=True, exist_ok=True)
            draw_comparison(run, [RunDir.open(other) for other in args.compare], out)
        run.sync()
        say(f"plot {user_location(out)}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from raynas.device import resolve_device
    from raynas.export.api import load_generator
    from raynas.metrics import compute_metrics, parse_source
    from raynas.progress import interactive

    device = resolve_device(args.device)
    kw = {"root": args.data_root, "resolution": args.resolution, "channels": args.channels}
    fake = parse_source(args.source1, checkpoint_loader=load_generator, device=device, **kw)
    real = parse_source(args.source2, checkpoint_loader=load_generator, device=device, **kw)
    result = compute_metrics(fake, real, metrics=tuple(args.metrics.split(",")), protocol=args.protocol,
                             num_samples=args.num_samples, extractor=args.extractor,
                             inception_weights=args.inception_weights, device=device,
                             progress=interactive())  # torch-fidelity's bars: a terminal only, never a log
    for key, value in result.as_row().items():
        print(f"{key:12s} {value}")
    return 0


def register(sub: argparse._SubParsersAction, commands) -> None:
    p = sub.add_parser("metrics", help="IS/FID/KID between two sources (real-vs-real baselines too)")
    p.add_argument("source1", help="dataset:NAME:SPLIT | folder:PATH | checkpoint:PATH (scored as fake)")
    p.add_argument("source2", help="dataset:NAME:SPLIT | folder:PATH | checkpoint:PATH (reference)")
    p.add_argument("--metrics", default="is,fid,kid")
    p.add_argument("--protocol", default="search", choices=("quick", "search", "paper"))
    p.add_argument("--num-samples", type=positive_int)
    p.add_argument("--extractor", default="inception-v3-compat")
    p.add_argument("--inception-weights")
    p.add_argument("--data-root")
    p.add_argument("--resolution", type=positive_int,
                   help="resize dataset and folder images to this size (default: the dataset's)")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--device", default="auto")
    p.set_defaults(func=commands.cmd_metrics)

    p = sub.add_parser("results", help="print a run's results table (optionally Pareto-filtered, CSV)")
    p.add_argument("run_dir")
    p.add_argument("--csv", help="also export the table to this CSV file")
    p.add_argument("--pareto", help="keep non-dominated rows, e.g. is_mean:max,fid:min,params:min; one front per "
                                    "(stage, last round) of a search")
    p.add_argument("--all-rounds", action="store_true", help="with --pareto: one front over every row")
    p.add_argument("--all", action="store_true",
                   help="show every column (default: which row it is, the method's key metrics and the usual "
                        "scores)")
    p.add_argument("--max-rows", type=non_negative_int, default=50, help="rows printed (default 50; 0 = all)")
    add_skip_damaged_arg(p)
    p.set_defaults(func=commands.cmd_results)

    p = sub.add_parser("report", help="draw a run's plots into RUN_DIR/plots")
    p.add_argument("run_dir")
    p.add_argument("--compare", nargs="+", metavar="RUN_DIR",
                   help="also draw these runs beside RUN_DIR on the score they share, against epochs or rounds: "
                        "IS/FID (GAN runs; EAGAN searches per round, Figs. 6 and 7), test or validation accuracy "
                        "(classifier runs); runs that share no score are refused")
    p.add_argument("--out", help="comparison plot path (default RUN_DIR/plots/compare.png)")
    add_skip_damaged_arg(p)
    p.set_defaults(func=commands.cmd_report)

    p = sub.add_parser("presets", help="list the presets and the shipped genotypes")
    p.set_defaults(func=commands.cmd_presets)

    p = sub.add_parser("config", help="show the resolved config of a preset, or every key")
    p.add_argument("action", choices=("show", "keys"))
    add_config_args(p)
    p.add_argument("--method", help=f"resolve for this method (default: the preset's; {FIXED} = a fixed network)")
    p.set_defaults(func=commands.cmd_config)

    p = sub.add_parser("arch", help="inspect a genotype: parameters, FLOPs, per-cell summary, diagram")
    asub = p.add_subparsers(dest="arch_command", required=True)
    s = asub.add_parser("show", help="summarise the derived network of a genotype JSON file, or the stylegan2 / "
                                     "progan G and D")
    s.add_argument("genotype", help="genotype JSON file, or a shipped one by name (raynas presets lists them), or "
                                    "stylegan2 or progan")
    s.add_argument("--dataset", help="sets resolution, channels and classes (default cifar10)")
    s.add_argument("--from-run", metavar="RUN",
                   help="describe the network that run built for this genotype: every size (images, widths, latent, "
                        "cells) from its config.yaml, a search's own widths for the genotypes it searched")
    s.add_argument("--preset", help="the same, with the sizes a run of this preset builds")
    s.add_argument("--width", type=positive_int,
                   help="GAN genotypes: channel width (default: the paper's retrain width)")
    s.add_argument("--channels", type=positive_int,
                   help="classifier genotypes: initial channels C (default 36, ImageNet 48); progan: channels of "
                        "every stage (default 512)")
    s.add_argument("--resolution", type=positive_int, help="stylegan2 (default 256) / progan (default 32): image size")
    s.add_argument("--channel-multiplier", type=positive_int, help="stylegan2: channel multiplier (default 2)")
    s.add_argument("--latent", type=positive_int, help="stylegan2 / progan: latent size (default 512)")
    s.add_argument("--mapping-layers", type=positive_int, help="stylegan2: mapping layers (default 8)")
    s.add_argument("--layers", type=positive_int, help="classifier genotypes: cells (default 20, ImageNet 14)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON (keys include params, flops)")
    s.add_argument("--png", help="also draw the genotype diagram to this PNG")
    s.set_defaults(func=commands.cmd_arch_show)
