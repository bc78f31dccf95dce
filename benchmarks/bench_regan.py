"""Training-time overhead of Re-GAN's masking, measured in one run of the fixed GAN trainer.

    python benchmarks/bench_regan.py --device cpu --preset quickstart --epochs 12 --iters 40
    python benchmarks/bench_regan.py --device cpu --preset quickstart --unit iter
    python benchmarks/bench_regan.py --device cuda --preset regan-sngan-cifar10 --set data.fraction=1.0 --iters 200

One ``GANTrainer`` with ``regan.warmup=0, regan.interval=1`` alternates sparse and dense epochs (S D S D ...), so
both kinds run interleaved on the same weights, data and machine state. A sparse epoch does everything a
dense one does plus the masking (masks recomputed at the unit start, gradients masked before and weights
after every G step, the EMA copy after every EMA update); the dense one trains at lr/10, which costs the same.
The first pair is discarded as warm-up; the overhead is the median over pairs of sparse / dense - 1 of the
epochs' training seconds (adjacent epochs, so a busy machine's drift cancels). Timers around the Re-GAN calls
the trainer makes (``begin_unit`` and the three step hooks) also give the masking work's share of the
training time directly, which a busy machine cannot blur. With ``--unit iter`` the masks are recomputed
before every sparse G update (the StyleGAN2 setting) and G updates alternate sparse / dense, so the reference
is a second trainer with Re-GAN off, its epochs interleaved with the Re-GAN trainer's.
Prints a Markdown table (and appends a JSON line to --out when given).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from raynas.config import load_config
from raynas.gan.trainer import GANTrainer


def _time_masking(trainer: GANTrainer) -> dict[str, float]:
    """Wrap the Re-GAN calls the trainer makes (``begin_unit``, the three step hooks) with timers: the masking
    work measured directly inside the run, immune to a busy machine's drift between epochs."""
    regan, device = trainer.regan, trainer.device
    spent = {"seconds": 0.0}

    def timed(fn):
        def call(*args, **kwargs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            spent["seconds"] += time.perf_counter() - start
            return out
        return call

    for name in ("begin_unit", "before_g_step", "after_g_step", "after_ema_update"):
        setattr(regan, name, timed(getattr(regan, name)))  # instance attributes shadow the methods
    return spent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart")
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=12, help="even; the first two are warm-up")
    p.add_argument("--iters", type=int, default=40, help="D steps per epoch")
    p.add_argument("--unit", default="epoch", choices=("epoch", "iter"))
    p.add_argument("--sparsity", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU")
    p.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True) (CPU)")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    epochs = max(4, args.epochs + args.epochs % 2)
    cfg = load_config(args.preset, [f"train.device={args.device}", f"train.epochs={epochs}",
                                    f"train.iters_per_epoch={args.iters}", "regan.enabled=true", "regan.warmup=0",
                                    "regan.interval=1", f"regan.unit={args.unit}", f"regan.sparsity={args.sparsity}",
                                    *args.overrides], method="train")
    trainer = GANTrainer(cfg)
    masking = _time_masking(trainer)
    pairs = []  # (seconds of an epoch with masking, of the reference epoch run right after it)
    measured = {"masking_s": 0.0, "epochs_s": 0.0}
    if args.unit == "epoch":  # warmup 0, g 1: even epochs are sparse, odd ones dense
        reference = "the dense epochs of the same run (interleaved S D S D ...)"
        off = trainer
    else:  # every other G update is sparse, so compare with Re-GAN off, epoch by epoch
        reference = "the same trainer with Re-GAN off (epochs interleaved); half the G updates are sparse"
        off = GANTrainer(load_config(args.preset, [f"train.device={args.device}", f"train.epochs={epochs}",
                                                   f"train.iters_per_epoch={args.iters}", *args.overrides],
                                     method="train"))
    for e in range(epochs // 2):
        before = masking["seconds"]
        on = trainer.train_epoch()["train_seconds"]
        ref = off.train_epoch()["train_seconds"]
        if e:  # the first pair warms up
            pairs.append((on, ref))
            measured["masking_s"] += masking["seconds"] - before
            measured["epochs_s"] += on
    masked = statistics.median(a for a, _ in pairs)
    ref = statistics.median(b for _, b in pairs)
    row = {"bench": "regan_masking_overhead", "preset": args.preset, "device": str(trainer.device),
           "unit": args.unit, "sparsity": args.sparsity, "iters_per_epoch": args.iters,
           "n_critic": cfg.train.n_critic, "pairs": len(pairs), "masked_epoch_s": masked, "reference_epoch_s": ref,
           "overhead": statistics.median(a / b for a, b in pairs) - 1.0, "reference": reference,
           # the Re-GAN calls' own time (in sparse and dense epochs) over the sparse epochs' training time
           "masking_share": measured["masking_s"] / measured["epochs_s"],
           "params_g": sum(p.numel() for p in trainer.G.parameters()),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor(),
           "flush_denormal": args.flush_denormal}
    print(f"reference: {reference}; medians of {len(pairs)} pairs")
    print("| preset | device | unit | s | D steps/epoch | masked epoch (s) | reference epoch (s) | epoch ratio - 1 "
          "| Re-GAN calls / masked epochs' time |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.preset} | {row['device']} | {args.unit} | {args.sparsity} | {args.iters} | "
          f"{masked:.3f} | {ref:.3f} | {100 * row['overhead']:+.1f}% | {100 * row['masking_share']:.2f}% |")
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
