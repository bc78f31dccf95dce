"""DAMGAN supernet training throughput and peak memory for k' = 1, 2, 4, 8, 16.

    python benchmarks/bench_damgan.py --device cpu  --preset quickstart --steps 20
    python benchmarks/bench_damgan.py --device cuda --preset damgan-cifar10 --synthetic --out bench.jsonl

Each k' runs in a fresh child process (so CPU peak RSS is that k' alone) through the real search loop
(:class:`raynas.methods.damgan.generator_search.DamganSearch`: D step + G step with the attention supernet, α
recording included). Throughput counts real images seen by D per second. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA and the child's peak resident set size on CPU. bf16
autocast + channels_last follow ``--amp`` (default: on for CUDA). Prints a Markdown table and appends
JSON lines to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time


class SyntheticSource:
    """Random images already on the device: measures compute, not data loading."""

    def __init__(self, channels: int, resolution: int, device):
        import torch

        self.x = torch.rand(2048, channels, resolution, resolution, device=device) * 2 - 1

    def sample(self, n: int):
        import torch

        idx = torch.randint(0, len(self.x), (n,), device=self.x.device)
        return self.x[idx]

    def __len__(self) -> int:
        return len(self.x)


def _rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def bench_one(args: dict) -> dict:
    """Child process: build the search for one k', warm up, time ``steps`` D steps."""
    import torch

    from raynas.config import load_config
    from raynas.device import resolve_device
    from raynas.methods.damgan.generator_search import DamganSearch

    if args["threads"]:
        torch.set_num_threads(args["threads"])
    overrides = [*args["overrides"], f"damgan.kprime={args['kprime']}", f"damgan.iters_per_epoch={args['warmup']}"]
    if args["amp"] is not None:
        overrides += [f"train.amp={args['amp']}", f"train.channels_last={args['amp']}"]
    if args["selector"]:
        overrides.append(f"damgan.selector={args['selector']}")
    cfg = load_config(args["preset"], overrides)
    device = resolve_device(args["device"])
    torch.backends.cudnn.benchmark = True
    search = DamganSearch(cfg, device=device)
    if args["synthetic"]:
        search.real = SyntheticSource(cfg.data.channels, cfg.data.resolution, device)
    search.train_epoch()  # warm-up (allocator, cuDNN autotune, oneDNN primitives)
    rss_before = _rss_mib()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    search.iters_per_epoch = args["steps"]
    start = time.perf_counter()
    stats = search.train_epoch()  # synchronises CUDA before it stops its clock
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        name = torch.cuda.get_device_name(device)
    else:
        peak = _rss_mib()
        name = platform.processor() or platform.machine() or "cpu"
    params = sum(p.numel() for p in search.G.parameters())
    return {"preset": cfg.preset, "device": name, "amp": search.precision.amp, "selector": cfg.damgan.selector,
            "C": cfg.damgan.search_gf_dim, "kprime": args["kprime"], "k": cfg.damgan.search_gf_dim // args["kprime"],
            "batch_d": search.step_cfg.dis_batch_size, "batch_g": search.step_cfg.gen_batch_size,
            "steps": args["steps"], "images_per_s": args["steps"] * search.step_cfg.dis_batch_size / seconds,
            "steps_per_s": args["steps"] / seconds, "peak_mib": peak, "rss_before_mib": rss_before,
            "supernet_params": params, "d_loss": stats["d_loss"], "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="config override, e.g. damgan.gen_batch_size=64 (the search reads damgan.*)")
    p.add_argument("--device", default="auto")
    p.add_argument("--kprimes", default="1,2,4,8,16")
    p.add_argument("--steps", type=int, default=20, help="timed D steps per k'")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--selector", choices=("da", "darts"))
    p.add_argument("--amp", choices=("true", "false"), default=None, help="bf16 autocast + channels_last")
    p.add_argument("--synthetic", action="store_true", help="random on-device images instead of the dataset")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--out", help="append JSON lines here")
    args = p.parse_args()

    kprimes = [int(k) for k in args.kprimes.split(",") if k.strip()]
    ctx = mp.get_context("spawn")
    rows = []
    for k in kprimes:
        job = {"preset": args.preset, "overrides": args.overrides, "kprime": k, "device": args.device,
               "steps": args.steps, "warmup": args.warmup, "selector": args.selector, "amp": args.amp,
               "synthetic": args.synthetic, "threads": args.threads}
        with ctx.Pool(1) as pool:
            row = pool.apply(bench_one, (job,))
        rows.append(row)
        print(f"k'={k}: {row['images_per_s']:.1f} images/s, peak {row['peak_mib']:.0f} MiB", file=sys.stderr)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    print("\n| preset | device | bf16+CL | selector | C | k' | k=C/k' | D batch | images/s "
          "| peak MiB (CUDA alloc / CPU RSS) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['device']} | {r['amp']} | {r['selector']} | {r['C']} | {r['kprime']} | {r['k']} "
              f"| {r['batch_d']} | {r['images_per_s']:.1f} | {r['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
