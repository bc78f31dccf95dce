"""Time DARTS' real search step: an architecture step on a validation batch (first order, or the unrolled
second order) followed by a weight step on a training batch, exactly as ``raynas search darts`` runs it.

    python benchmarks/bench_darts.py --order 1 --layers 8 --channels 16 --batch 64 --steps 10 --device cpu --json
    python benchmarks/bench_darts.py --order 2 --layers 8 --channels 16 --batch 64 --steps 20 --device cuda --json
    python benchmarks/bench_darts.py --eval --layers 20 --channels 36 --batch 96 --steps 10 --device cuda --json

``--eval`` times a training step of the evaluation network of ``--genotype`` (default darts-v2; auxiliary
head and drop path as in the retrain) instead. Images are random tensors on the device (compute only; data
loading is measured separately by the trainers). bf16 autocast + channels_last follow ``--amp`` (default:
on for CUDA, as the trainers do). Prints one JSON line (``images_per_s``, ``step_s``, sizes, device) with
``--json``, else a sentence.
"""

from __future__ import annotations

import argparse
import json
import platform
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--order", type=int, choices=(1, 2), default=1)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--amp", choices=("auto", "true", "false"), default="auto")
    p.add_argument("--eval", action="store_true", help="time the evaluation network's training step instead")
    p.add_argument("--genotype", default="darts-v2")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import torch

    from raynas.classify.step import classify_train_step
    from raynas.device import Precision

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    amp = args.amp if args.amp == "auto" else args.amp == "true"
    precision = Precision.for_device(device, amp, amp)
    shape = (args.batch, args.in_channels, args.resolution, args.resolution)

    def batch():
        x = precision.images(torch.randn(*shape, device=device))
        return x, torch.randint(0, args.classes, (args.batch,), device=device)

    if args.eval:
        from raynas.nn.registry import build_network
        from raynas.spaces import Genotype

        model = precision.prepare(build_network(Genotype.load(args.genotype), resolution=args.resolution,
                                                channels=args.in_channels, width=args.channels, layers=args.layers,
                                                num_classes=args.classes, auxiliary=True))
        model.drop_path_prob = 0.2
        opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)

        def step():
            x, y = batch()
            classify_train_step(model, opt, x, y, precision=precision, aux_weight=0.4, grad_clip=5.0)
    else:
        from raynas.nn.darts_search import DartsSupernet
        from searchers.architect import Architect

        model = precision.prepare(DartsSupernet(args.channels, args.classes, args.layers,
                                                in_channels=args.in_channels))
        architect = Architect(model, order=args.order)
        for a in model.arch_parameters():
            a.requires_grad_(False)
        opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)

        def step():
            x, y = batch()
            architect.step(batch(), (x, y), w_optimizer=opt)
            classify_train_step(model, opt, x, y, precision=precision, grad_clip=5.0)

    model.train()
    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / args.steps
    out = {"bench": "darts-eval" if args.eval else f"darts-search-order{args.order}", "layers": args.layers,
           "channels": args.channels, "batch": args.batch, "steps": args.steps, "step_s": seconds,
           "images_per_s": args.batch / seconds, "device": str(device), "amp": precision.amp,
           "channels_last": precision.channels_last, "threads": torch.get_num_threads(),
           "torch": torch.__version__, "host": platform.node()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['bench']}: {seconds:.3f} s/step, {out['images_per_s']:.1f} images/s "
              f"(L={args.layers}, C={args.channels}, batch {args.batch}, {device})")


if __name__ == "__main__":
    main()
