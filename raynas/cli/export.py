"""``raynas export`` and ``raynas sample``: take a network away from raynas (see ``raynas.export``)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from raynas.cli.common import check_writable, non_negative_int, positive_int, say, writing
from raynas.errors import ConfigError
from raynas.export import FORMATS


def cmd_export(args: argparse.Namespace) -> int:
    from raynas.export.api import resolve
    from raynas.export.card import CARD_JSON, CARD_MD, build_card, write_card
    from raynas.export.formats import export_network

    if args.format not in FORMATS:  # argparse checks choices; kept for callers that build args themselves
        raise ConfigError(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    out = check_writable(args.out, "--out")
    net = resolve(args.source, part=args.part, dataset=args.dataset, layers=args.layers, channels=args.channels,
                  width=args.width, latent_dim=args.latent_dim)
    with writing(out, "--out"):
        check = export_network(net, args.format, out)
    weights = f"weights {net.weights}" if net.weights else "untrained weights"
    if net.note:
        weights += f": the run {net.note}"
    elif net.run is None:
        weights += " initialised from seed 0; export a trained run for trained ones"
    say(f"wrote {out} ({args.format}: the {net.family} {net.kind}, input {list(net.input_shape)} per example, "
        f"{weights})")
    say(check.message())
    card = build_card(net, command="raynas export " + " ".join(shlex.quote(a) for a in _argv(args)),
                      export={"format": args.format, "file": str(out), "check": check.message(),
                              "max_abs_diff": check.max_abs_diff, "rtol": check.rtol, "atol": check.atol})
    card_json = out.with_name(f"{out.stem}.{CARD_JSON}")
    card_md = out.with_name(f"{out.stem}.{CARD_MD}")
    with writing(card_json, "the model card"):
        write_card(card, card_json, card_md)
    say(f"model card {card_json} and {card_md}")
    if args.format == "pt2":
        say(f"load it without raynas: torch.export.load({str(out)!r}).module()(x)")
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    """The command line of this export (what the model card says reproduces it)."""
    argv = [args.source, "--format", args.format, "--out", args.out]
    for flag in ("part", "dataset", "layers", "channels", "width", "latent_dim"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    return argv


def cmd_sample(args: argparse.Namespace) -> int:
    from raynas.export.sample import run_generator, sample_images, save_folder, save_grid

    if args.out and args.folder:
        raise ConfigError("--out writes one grid and --folder one PNG per image; pass one of them")
    if args.folder:
        folder = Path(args.folder).expanduser()
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--folder {args.folder} is a file; give a folder path")
        with writing(folder, "--folder"):
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / ".raynas-write-test"
            probe.touch()
            probe.unlink()
    else:
        out = check_writable(args.out or "samples.png", "--out")
    net = run_generator(args.run)
    images = sample_images(net, args.n, args.seed)
    if args.folder:
        with writing(folder, "--folder"):
            paths = save_folder(images, folder)
        say(f"wrote {len(paths)} images to {folder} (seed {args.seed}; weights {net.weights})")
    else:
        with writing(out, "--out"):
            save_grid(images, out)
        say(f"wrote a grid of {args.n} images to {out} (seed {args.seed}; weights {net.weights})")
    return 0


def register(sub: argparse._SubParsersAction, commands) -> None:
    p = sub.add_parser("export", help="write a network as a torch.export program, an ONNX file or a state dict "
                                      "(checked against the network, with a model card)")
    p.add_argument("source", help="a run directory (its trained network), a genotype JSON file, a shipped "
                                  "genotype (darts-v2, ...) or a baseline (sngan, autogan)")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="pt2: torch.export.save (loads in plain PyTorch); onnx: torch's ONNX exporter (needs "
                        "pip install 'raynas[export]'); state_dict: torch.save of the weights")
    p.add_argument("--out", required=True, help="the file to write (the model card goes beside it)")
    p.add_argument("--part", choices=("generator", "discriminator", "classifier"),
                   help="a GAN run or an EAGAN G+D pair: which network (default: the generator)")
    p.add_argument("--dataset", help="genotypes and baselines: image size, channels and classes (default cifar10)")
    p.add_argument("--layers", type=positive_int, help="classifier genotypes: cells (default 20, ImageNet 14)")
    p.add_argument("--channels", type=positive_int,
                   help="classifier genotypes: initial channels C (default 36, ImageNet 48)")
    p.add_argument("--width", type=positive_int, help="GAN genotypes and baselines: channel width (gf_dim/df_dim)")
    p.add_argument("--latent-dim", type=positive_int, help="GAN generators: latent size")
    p.set_defaults(func=commands.cmd_export)

    s = sub.add_parser("sample", help="images from a GAN run's trained generator (EMA weights), seeded")
    s.add_argument("run", help="a GAN run directory (raynas train / retrain)")
    s.add_argument("--n", type=positive_int, default=64, help="number of images (default 64)")
    s.add_argument("--out", help="one PNG grid, 8 a row (default samples.png)")
    s.add_argument("--folder", help="one PNG per image in this folder instead of a grid")
    s.add_argument("--seed", type=non_negative_int, default=0, help="latent seed: the same seed, the same images")
    s.set_defaults(func=commands.cmd_sample)
