"""``raynas train`` and ``raynas retrain``: one fixed network (either task) as a Ray Tune trial."""

from __future__ import annotations

import argparse

from raynas.cli.common import (
    add_config_args,
    add_ray_args,
    config_from_args,
    finish_run,
    new_run_or_resume,
    positive_int,
    trial_resources,
)
from raynas.config import FIXED


def cmd_train(args: argparse.Namespace) -> int:
    from raynas.fixed_training import check_fixed, with_final_protocol
    from trainables.launch import parse_resources

    workers = getattr(args, "num_workers", None)
    extra = [*getattr(args, "extra_overrides", ()), *([f"resources.workers={workers}"] if workers else [])]
    # --resources is saved with a new run, so --resume asks for what the run ran on, not the preset's request
    asked = parse_resources(getattr(args, "resources", None), {})
    extra += [f"resources.{kind}={value:g}" for kind, value in asked.items()]

    def make():
        cfg = config_from_args(args, FIXED, extra, task=getattr(args, "task", None))
        return with_final_protocol(cfg) if getattr(args, "retrain", False) else cfg  # a finished network

    start = lambda cfg: trial_resources(args, cfg)  # noqa: E731
    with new_run_or_resume(args, "train", make, check_fixed, start, method=FIXED) as (run, cfg, resources):
        from trainables.fixed_trial import train_fixed
        from trainables.launch import run_trainable

        space = None
        if cfg.resources.workers > 1:  # the trial waits while Ray Train's workers hold --resources each
            from trainables.data_parallel import TRIAL_RESOURCES, WORKER_RESOURCES
            from trainables.launch import check_fits

            check_fits(f"{cfg.resources.workers} workers", [resources] * cfg.resources.workers)
            resources, space = TRIAL_RESOURCES, {WORKER_RESOURCES: resources}
        resume = bool(args.resume)
        if resume and cfg.resources.workers <= 1:  # e.g. a full disk: continue the trial in a new experiment
            from trainables.common import restart_space, tune_state_unusable

            why = tune_state_unusable(run)
            if why is not None:
                space, resume = restart_space(run, why), False
        run_trainable(train_fixed, cfg, run, resources=resources, resume=resume, param_space=space,
                      iterations=cfg.train.epochs, desc="retrain" if getattr(args, "retrain", False) else "train")
    finish_run(run)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    """Train a found genotype from scratch: its space decides the task and the network."""
    from raynas.fixed_training import genotype_overrides
    from raynas.spaces import Genotype
    from raynas.spaces.genotype import space_role

    genotype = Genotype.load(args.genotype)
    task = "classify" if space_role(genotype.space) == "classifier" else "gan"
    extra = [f"{section}.{key}={value}" for section, values in genotype_overrides(task, args.genotype).items()
             for key, value in values.items()]
    if args.d_genotype:
        if task != "gan":
            from raynas.errors import ConfigError

            raise ConfigError("a second genotype (the discriminator) applies to GAN genotypes only")
        extra += ["model.discriminator=genotype", f"model.d_genotype={args.d_genotype}"]
    if task == "gan" and args.protocol:
        extra.append(f"eval.final_protocol={args.protocol}")
    args.retrain = True
    if args.preset is None:
        args.preset = RETRAIN_PRESETS[task]
    args.extra_overrides, args.task, args.resume = extra, task, None
    return cmd_train(args)


RETRAIN_PRESETS = {"gan": "eagan-cifar10", "classify": "darts-cifar10"}


def add_workers_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-workers", type=positive_int, metavar="N",
                   help="train the network data-parallel on N Ray Train workers (gloo on CPUs, NCCL on GPUs; "
                        "--resources is per worker; the global batch stays the preset's, each worker takes "
                        "batch/N); default 1 (resources.workers)")


def register(sub: argparse._SubParsersAction, commands) -> None:
    p = sub.add_parser("train", help="train (and evaluate) a fixed network (GAN or classifier) as a Ray Tune trial")
    add_config_args(p)
    add_ray_args(p)
    add_workers_arg(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="resume an interrupted run from its checkpoints")
    p.set_defaults(func=commands.cmd_train)

    r = sub.add_parser("retrain", help="fully train a found architecture (genotype JSON) with the paper protocol")
    r.add_argument("genotype", help="genotype JSON (e.g. RUN_DIR/best_G.json, RUN_DIR/best.json) or a shipped "
                                    "name such as eagan-cifar10-G or darts-v2")
    r.add_argument("d_genotype", nargs="?", help="GAN only: discriminator genotype JSON (default: the preset's D)")
    add_config_args(r, default_preset=None)
    add_ray_args(r)
    add_workers_arg(r)
    r.add_argument("--protocol", choices=("quick", "search", "paper"),
                   help="GAN only: evaluation protocol of the retrained generator (default: the preset's "
                        "eval.final_protocol: paper, 50k samples, for paper presets; quick for quickstart)")
    r.set_defaults(func=commands.cmd_retrain)
