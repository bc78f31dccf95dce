"""Training throughput of one fixed network with 1 and N data-parallel workers (``--num-workers``), through the
real route: the run's Tune trial, and for N > 1 Ray Train's TorchTrainer (gloo on CPUs, NCCL on GPUs).

    python benchmarks/bench_data_parallel.py --preset quickstart-classify --workers 1 2 --epochs 4
    python benchmarks/bench_data_parallel.py --preset quickstart --workers 1 2 --epochs 4 --set eval.every=0

Prints a Markdown table: global images/s per epoch (rank 0's clock over the epoch's training steps, scoring
excluded), the median over the epochs after the first (which pays for start-up), and the scaling efficiency
against one worker. Each worker gets ``--cpu`` CPUs (``--gpu`` GPUs) of the embedded Ray.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(preset: str, sets: list[str], workers: int, epochs: int, cpu: float, gpu: float) -> list[float]:
    """images/s of every epoch of one run with ``workers`` workers."""
    from raynas.config import FIXED, load_config
    from raynas.results import RunDir
    from trainables.data_parallel import TRIAL_RESOURCES, WORKER_RESOURCES
    from trainables.fixed_trial import train_fixed
    from trainables.launch import run_trainable

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(preset, [*sets, f"train.epochs={epochs}", f"resources.workers={workers}",
                                   f"run.output_dir={tmp}", "run.max_failures=0"], method=FIXED)
        run = RunDir.create(tmp, f"bench-{workers}", config=cfg.to_dict(), seed=cfg.train.seed, preset=preset,
                            device="cpu" if gpu == 0 else "cuda")
        per_worker = {"cpu": cpu, "gpu": gpu}
        if workers > 1:
            results = run_trainable(train_fixed, cfg, run, resources=TRIAL_RESOURCES,
                                    param_space={WORKER_RESOURCES: per_worker})
        else:
            results = run_trainable(train_fixed, cfg, run, resources=per_worker)
        (result,) = list(results)
        return result.metrics_dataframe.sort_values("epoch")["images_per_s"].tolist()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart-classify")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--cpu", type=float, default=1.0, help="CPUs per worker")
    p.add_argument("--gpu", type=float, default=0.0, help="GPUs per worker")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded Ray (default: all)")
    args = p.parse_args(argv)

    from trainables.launch import init_ray

    init_ray(num_cpus=args.num_cpus)
    rows = []
    for n in args.workers:
        speeds = measure(args.preset, args.sets, n, args.epochs, args.cpu, args.gpu)
        rows.append((n, speeds, statistics.median(speeds[1:] or speeds)))
    base = rows[0][2] if rows and rows[0][0] == 1 else None
    print(f"\npreset {args.preset} {' '.join(args.sets)}; {args.cpu:g} CPU, {args.gpu:g} GPU per worker\n")
    print("| workers | images/s per epoch | median (epochs 2+) | efficiency (speed-up / N) |")
    print("|---|---|---|---|")
    for n, speeds, median in rows:
        eff = f"{median / base / n:.2f}" if base else "-"
        print(f"| {n} | {', '.join(f'{s:.0f}' for s in speeds)} | {median:.0f} | {eff} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
