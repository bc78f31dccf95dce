"""``raynas compare``: several methods (one of them the random baseline) × seeds at one budget, in one run (a
Tune experiment; EAGAN's entries as grid cells after it); prints the table, the summary per method and the paired
tests against random search (in a GAN comparison, each method against the random search over its own space)."""

from __future__ import annotations

import argparse
import json

from raynas.cli.common import (
    add_config_args,
    add_ray_args,
    add_skip_damaged_arg,
    config_from_args,
    new_run_or_resume,
    positive_int,
)
from raynas.cli.search import report_outcome
from raynas.errors import ConfigError
from raynas.methods import get_method, load_object
from raynas.methods.spec import SearchRequest
from raynas.results.compare import COMPARE_SPEC

#: Compared entries that are a method run another way: EAGAN's own loop with the random searcher (the same
#: SupernetHost, Evaluators and rounds as NSGA-II), EAGAN's random baseline.
#: (eagan itself is NSGA-II even in a preset whose eagan section is the random baseline's: compare-eagan-cifar10)
ARMS: dict[str, tuple[str, tuple[str, ...]]] = {"eagan": ("eagan", ("eagan.searcher=nsga2",)),
                                                "eagan-random": ("eagan", ("eagan.searcher=random",))}
#: What ``random`` stands for beside each GAN method: the random search over that method's own space.
RANDOM_OF = {"eagan": "eagan-random", "damgan": "random-gan"}


def method_of(label: str):
    """The registered method a compared entry runs (``eagan-random`` runs eagan)."""
    return get_method(ARMS[label][0] if label in ARMS else label)


def is_baseline(label: str) -> bool:
    return label == "eagan-random" or method_of(label).baseline


def comparable(name: str):
    """A method ``raynas compare`` can run: a search on the differentiable loop (darts, swd-nas, random;
    damgan, random-gan) or EAGAN's rounds (eagan, eagan-random), one grid cell per seed."""
    method = method_of(name)
    if not (method.shape == "differentiable" and method.search) and method.name != "eagan":
        raise ConfigError(f"--methods: {name} cannot be compared yet; raynas compare runs darts, swd-nas, random "
                          "(classifiers) and eagan, damgan, random (GANs)")
    return method


def baseline_of(task: str) -> str:
    """The random baseline of a task's spaces (what ``random`` names in a comparison of that task)."""
    from raynas.methods import all_methods

    return next(m.name for m in all_methods() if m.baseline and m.task == task and m.shape == "differentiable")


def parse_methods(text: str) -> list[str]:
    """The compared entries, one task. ``random`` names the task's baseline: beside GAN methods, the random
    search over each one's space (eagan -> eagan-random, damgan -> random-gan)."""
    names = [m.strip() for m in str(text or "").split(",") if m.strip()]
    tasks = {comparable(n).task for n in names if n != "random"}
    if len(tasks) > 1:
        raise ConfigError(f"--methods {text!r}: mixes classifier and GAN searches; compare methods of one task")
    task = tasks.pop() if tasks else "classify"
    if "random" in names:
        own = [RANDOM_OF[n] for n in names if n in RANDOM_OF] if task == "gan" else []
        at = names.index("random")
        names[at:at + 1] = own or [baseline_of(task)]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"--methods {text!r}: name two or more different methods, e.g. --methods darts,random")
    return names


def pairs_of(names: list[str]) -> dict[str, str]:
    """Which baseline each method's paired tests are against: the random search over its own space where the
    comparison has it, else the comparison's first baseline."""
    baselines = [n for n in names if is_baseline(n)]
    if not baselines:
        return {}
    return {n: RANDOM_OF[n] if RANDOM_OF.get(n) in names else baselines[0] for n in names if not is_baseline(n)}


def method_overrides(args: argparse.Namespace, methods: list[str], budget: dict[str, float]) -> dict[str, list]:
    """Each entry's ``--set`` overrides (a compared method's section goes to that method's entries only) plus
    the budget's epochs in its section (EAGAN's: set by ``eagan_budget`` once its config is known)."""
    from raynas.config.registry import section_named

    own: dict[str, list[str]] = {m: list(ARMS[m][1]) if m in ARMS else [] for m in methods}
    sections: dict[str, list[str]] = {}
    for m in methods:
        sections.setdefault(method_of(m).section, []).append(m)
    for item in args.overrides:
        name = item.split("=", 1)[0].split(".", 1)[0].strip()
        s = section_named(name)
        if s is None or s.modifier:
            for m in methods:
                own[m].append(item)
        elif name in sections:
            for m in sections[name]:
                own[m].append(item)
        else:
            raise ConfigError(f"--set {item.split('=', 1)[0]}: {s.method} is not among --methods "
                              f"({', '.join(methods)})")
    if budget.get("epochs"):
        for m in methods:
            if method_of(m).shape == "differentiable":
                own[m].append(f"{method_of(m).section}.epochs={int(budget['epochs'])}")
    return own


def eagan_budget(cfg, epochs: int) -> list[str]:
    """EAGAN's rounds within ``epochs`` supernet-training epochs in all (warm-up and rounds of every stage):
    ``eagan.rounds`` = what fits each stage's share, refused when not even one round does."""
    e = cfg.eagan
    rounds = (epochs // len(e.stages) - e.warmup_epochs) // e.epochs_per_round
    if rounds < 1:
        raise ConfigError(f"--budget epochs={epochs}: EAGAN needs {e.warmup_epochs} warm-up + "
                          f"{e.epochs_per_round} epochs (one round) per stage, {len(e.stages)} stage(s); raise the "
                          "budget or lower eagan.warmup_epochs / eagan.epochs_per_round")
    return [f"eagan.rounds={min(rounds, e.rounds)}"]


def cmd_compare(args: argparse.Namespace) -> int:
    from raynas.cli.common import trial_resources
    from trainables.compare import comparison_spec, parse_budget, run_compare

    resume = bool(args.resume)
    configs: dict[str, dict] = {}
    if resume:
        if args.methods or args.budget or args.then_retrain or args.retrain_epochs:
            raise ConfigError(f"--resume continues {args.resume} as it was started; drop --methods, --budget, "
                              "--then-retrain and --retrain-epochs")
        from pathlib import Path

        if Path(args.resume).is_dir() and not (Path(args.resume) / COMPARE_SPEC).is_file():
            raise ConfigError(f"{args.resume} is not a `raynas compare` run (it has no {COMPARE_SPEC}); resume it "
                              "with the command that started it")
    else:
        if not args.methods or not args.budget:
            raise ConfigError("raynas compare needs --methods (e.g. darts,swd-nas,random) and --budget "
                              "(epochs=E or device-hours=H)")
        methods, budget = parse_methods(args.methods), parse_budget(args.budget)
        if args.preset is None:
            args.preset = method_of(methods[0]).quickstart
        overrides = method_overrides(args, methods, budget)
        plain = argparse.Namespace(**{**vars(args), "overrides": []})
        for name in methods:  # every method's config, checked before any run directory exists
            method = method_of(name)
            cfg = config_from_args(plain, method.name, overrides[name])
            if method.name == "eagan" and budget.get("epochs"):
                cfg = config_from_args(plain, method.name, overrides[name] + eagan_budget(cfg, budget["epochs"]))
            if method.check:
                load_object(method.check)(cfg)
            configs[name] = cfg

    def created(run) -> None:  # what the trials compare, before Ray starts: a run stopped that early resumes too
        first = configs[methods[0]].train.seed
        spec = comparison_spec(methods, [first + i for i in range(args.seeds)], budget, bool(args.then_retrain),
                               args.retrain_epochs, configs[methods[0]], pairs_of(methods))
        spec["configs"] = {m: c.to_dict() for m, c in configs.items()}
        spec["arms"] = {m: method_of(m).name for m in methods}
        (run.path / COMPARE_SPEC).write_text(json.dumps(spec, indent=2, default=str) + "\n")

    with new_run_or_resume(args, "compare", lambda: configs[methods[0]], start=lambda cfg: trial_resources(
            args, cfg, "each trial"), created=created) as (run, cfg, resources):
        outcome = run_compare(SearchRequest(cfg=cfg, run=run, resources=resources, resume=resume))
    report_outcome("comparison", run, outcome)
    return 0


def register(sub: argparse._SubParsersAction, commands) -> None:
    p = sub.add_parser("compare", help="compare methods against random search at one budget (methods x seeds)")
    add_config_args(p, None)
    for action in p._actions:  # its default follows the methods' task
        if action.dest == "preset":
            action.help = ("preset name or YAML path (default: the methods' quickstart: quickstart-classify or "
                           "quickstart; see `raynas presets`)")
    add_ray_args(p)
    p.add_argument("--methods", help="comma-separated methods, e.g. darts,swd-nas,random or eagan,damgan,random "
                                     "(random: the baseline of the paired tests; beside GAN methods, the random "
                                     "search over each one's space: eagan-random, random-gan)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per method: train.seed, +1, ... (default 3)")
    p.add_argument("--budget", help="every trial's budget: epochs=E (search epochs), device-hours=H (search "
                                    "device time), or both")
    p.add_argument("--then-retrain", action="store_true",
                   help="retrain each found network (train.*, model.*) and compare test accuracy (GANs: "
                        "IS/FID)")
    p.add_argument("--retrain-epochs", type=positive_int, help="epochs of each retrain (default: train.epochs)")
    p.add_argument("--resume", metavar="RUN_DIR", help="resume a killed comparison")
    add_skip_damaged_arg(p)
    p.set_defaults(func=commands.cmd_compare)
