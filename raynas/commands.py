"""Method sub-commands (search, retrain, arch, ablate) registered onto the CLI parser."""

from __future__ import annotations

import argparse
import json

from raynas.cli import EXTRA_COMMANDS

DATASET_SHAPES = {"cifar10": (32, 3), "stl10": (48, 3), "fashion-mnist": (32, 1), "embedded": (32, 1)}


def cmd_arch_show(args: argparse.Namespace) -> int:
    from raynas.errors import ConfigError
    from raynas.nn.profile import format_summary, summarize
    from raynas.spaces import Genotype

    if args.dataset not in DATASET_SHAPES:
        raise ConfigError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(DATASET_SHAPES)}")
    resolution, channels = DATASET_SHAPES[args.dataset]
    genotype = Genotype.load(args.genotype)
    if genotype.space == "eagan-gd":  # a coupled-search pair: describe each half
        from raynas.spaces import get_space

        halves = dict(zip("GD", get_space("eagan-gd").split(genotype)))
    else:
        halves = {"": genotype}
    summaries = {k: summarize(g, resolution=resolution, channels=channels, width=args.width)
                 for k, g in halves.items()}
    if args.json:
        out = summaries[""] if "" in summaries else {
            "space": genotype.space, "params": sum(x["params"] for x in summaries.values()),
            "flops": sum(x["flops"] for x in summaries.values()), **summaries}
        print(json.dumps(out, indent=2))
    else:
        print("\n\n".join(format_summary(x) for x in summaries.values()))
    if args.png:
        from pathlib import Path

        from raynas.spaces.draw import draw_genotype

        for k, g in halves.items():
            png = Path(args.png) if not k else Path(args.png).with_name(f"{Path(args.png).stem}_{k}.png")
            draw_genotype(g, png)
            if not args.json:
                print(f"raynas: diagram {png}")
    return 0


def register_arch(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("arch", help="inspect a genotype: parameters, FLOPs, per-cell summary, diagram")
    asub = p.add_subparsers(dest="arch_command", required=True)
    s = asub.add_parser("show", help="summarise the derived network of a genotype JSON file")
    s.add_argument("genotype", help="genotype JSON file, or a shipped one by name (raynas presets lists them)")
    s.add_argument("--dataset", default="cifar10", help="sets resolution and channels (default cifar10)")
    s.add_argument("--width", type=int, help="channel width C (default: the paper's retrain width)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON (keys include params, flops)")
    s.add_argument("--png", help="also draw the genotype diagram to this PNG")
    s.set_defaults(func=cmd_arch_show)


EXTRA_COMMANDS.append(register_arch)


# ----------------------------------------------------------------------------- search / retrain
def cmd_search_eagan(args: argparse.Namespace) -> int:
    from raynas.cli import start_or_resume
    from raynas.plots import draw_run_plots
    from raynas.preflight import preflight_eagan
    from trainables.launch import init_ray, parse_resources

    run, cfg = start_or_resume(args, "eagan", preflight_eagan)
    if args.resources:
        res = parse_resources(args.resources, {"cpu": cfg.eagan.evaluator_cpu, "gpu": cfg.eagan.evaluator_gpu})
        cfg = _replace_eagan(cfg, evaluator_cpu=res["cpu"], evaluator_gpu=res["gpu"])
    print(f"raynas: run directory {run.path}")
    init_ray(args.address, args.num_cpus)
    from trainables.eagan import EaganSearch

    outputs = EaganSearch(cfg, run, workers=args.workers).run_search()
    plots = draw_run_plots(run)
    print(f"\nraynas: EAGAN search finished: {run.path}")
    for key in ("best_G.json", "best_D.json"):
        if key in outputs:
            print(f"raynas: genotype {outputs[key]}")
    for p in plots:
        print(f"raynas: plot     {p}")
    print(f"raynas: results  raynas results {run.path} --pareto is_mean:max,fid:min,params:min")
    print(f"raynas: TensorBoard: tensorboard --logdir {run.path / 'tensorboard'}")
    if "best_G.json" in outputs:
        d = f" {outputs['best_D.json']}" if "best_D.json" in outputs else ""
        print(f"raynas: retrain  raynas retrain {outputs['best_G.json']}{d} --preset {cfg.preset}")
    return 0


def _replace_eagan(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, eagan=dataclasses.replace(cfg.eagan, **changes))


def cmd_retrain(args: argparse.Namespace) -> int:
    from raynas.cli import cmd_train

    args.overrides = ["model.generator=genotype", f"model.g_genotype={args.g_genotype}",
                      *(["model.discriminator=genotype", f"model.d_genotype={args.d_genotype}"]
                        if args.d_genotype else []),
                      f"eval.protocol={args.protocol}", *args.overrides]
    args.resume = None
    return cmd_train(args)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register_search(sub: argparse._SubParsersAction) -> None:
    from raynas.cli import _add_config_args, _add_ray_args

    p = sub.add_parser("search", help="run an architecture search")
    ssub = p.add_subparsers(dest="method", required=True)
    s = ssub.add_parser("eagan", help="EAGAN two-stage evolutionary GAN search (G, then D)")
    _add_config_args(s)
    _add_ray_args(s)
    s.add_argument("--workers", type=_positive_int, help="parallel Evaluator actors (default: eagan.workers)")
    s.add_argument("--resume", metavar="RUN_DIR", help="resume a killed search from its last completed round")
    s.set_defaults(func=cmd_search_eagan)
    for register in SEARCH_METHODS:
        register(ssub)

    r = sub.add_parser("retrain", help="fully train a found GAN (genotype JSON files) with EMA and the paper protocol")
    r.add_argument("g_genotype", help="generator genotype JSON (e.g. RUN_DIR/best_G.json) or a shipped name "
                                      "such as eagan-cifar10-G")
    r.add_argument("d_genotype", nargs="?", help="discriminator genotype JSON (default: the preset's D)")
    _add_config_args(r, default_preset="eagan-cifar10")
    _add_ray_args(r)
    r.add_argument("--protocol", default="paper", choices=("quick", "search", "paper"),
                   help="evaluation protocol for the retrained GAN (default: paper, 50k samples)")
    r.set_defaults(func=cmd_retrain)


# Other methods add `raynas search METHOD` parsers here.
SEARCH_METHODS: list = []

EXTRA_COMMANDS.append(register_search)
