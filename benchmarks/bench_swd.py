"""SWD-NAS search network: inference time against the DARTS supernet (the paper's Table V) and search-step throughput
per k, plus what one full search would cost at that throughput.

    python benchmarks/bench_swd.py --device cpu
    python benchmarks/bench_swd.py --device cuda --json > bench_swd.json

Table V (paper: "50 inferences for each model ... initial channel 16, 10 output classes, input (1, 3, 32, 32)"):
the DARTS search supernet (8 cells, softmax mixture of the 8 ops, ``raynas.nn.darts_search``) against the SWD-NAS
search network at depth 5 and 8 (``raynas.nn.swd_search``, k=4, the paper's settings), each in eval mode without
gradients. The three models run round robin (one forward of each per round, after ``--warmup`` rounds) so load
on a shared machine hits them alike; mean and median milliseconds per forward and the ratios to DARTS are
reported (paper: DARTS 107.823 ms, SWD depth 5 114.481 ms = 1.06×, depth 8 167.655 ms = 1.55×).

Search-step throughput: for every k, one single-level training step of the depth-5 search network (forward,
backward, SGD with clip 5, attention statistics not recorded) on random images of ``--batch`` already on the
device, and the eval-mode forward throughput of the validation pass that accumulates the attention statistics
(``swd.stats=val``). ``search_hours`` is one full CIFAR search at that speed: 30 epochs × (25,000 training
images at the measured step rate + 25,000 validation images at the measured forward rate), data loading and
the per-epoch derivation excluded (paper: 0.13 GPU-days = 3.1 h on an RTX 3090).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

PAPER_MS = {"darts (8 cells)": 107.823, "swd depth 5": 114.481, "swd depth 8": 167.655}
CIFAR_HALF = 25_000
EPOCHS = 30


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_table(device, runs: int, warmup: int) -> list[dict]:
    import torch

    from raynas.nn.darts_search import DartsSupernet
    from raynas.nn.swd_search import SwdSupernet

    torch.manual_seed(0)
    models = {"darts (8 cells)": DartsSupernet(16, 10, 8), "swd depth 5": SwdSupernet(16, 10, 5, k=4),
              "swd depth 8": SwdSupernet(16, 10, 8, k=4)}
    x = torch.randn(1, 3, 32, 32, device=device)
    times: dict[str, list[float]] = {name: [] for name in models}
    for m in models.values():
        m.to(device).eval()
    with torch.no_grad():
        for r in range(warmup + runs):
            for name, m in models.items():
                _sync(device)
                start = time.perf_counter()
                m(x)
                _sync(device)
                if r >= warmup:
                    times[name].append((time.perf_counter() - start) * 1e3)
            if (r + 1) % 10 == 0:
                print(f"inference round {r + 1}/{warmup + runs}", file=sys.stderr, flush=True)
    base_mean = statistics.fmean(times["darts (8 cells)"])
    base_median = statistics.median(times["darts (8 cells)"])
    return [{"model": name, "runs": runs, "mean_ms": statistics.fmean(t), "median_ms": statistics.median(t),
             "ratio_mean": statistics.fmean(t) / base_mean, "ratio_median": statistics.median(t) / base_median,
             "paper_ms": PAPER_MS[name], "paper_ratio": PAPER_MS[name] / PAPER_MS["darts (8 cells)"],
             "params": sum(p.numel() for p in models[name].parameters())} for name, t in times.items()]


def throughput_table(device, ks: list[int], batch: int, steps: int, warmup: int, channels: int) -> list[dict]:
    import torch

    from raynas.classify.step import classify_train_step
    from raynas.nn.swd_search import SwdSupernet

    rows = []
    for k in ks:
        torch.manual_seed(0)
        net = SwdSupernet(channels, 10, 5, k=k).to(device)
        opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        x = torch.randn(batch, 3, 32, 32, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        net.train()
        for _ in range(warmup):
            classify_train_step(net, opt, x, y, grad_clip=5.0)
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            classify_train_step(net, opt, x, y, grad_clip=5.0)
        _sync(device)
        step_s = (time.perf_counter() - start) / steps
        net.eval()
        net.set_recording(True)
        with torch.no_grad():
            net(x)
            _sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                net(x)
            _sync(device)
        fwd_s = (time.perf_counter() - start) / steps
        hours = EPOCHS * (CIFAR_HALF / batch * step_s + CIFAR_HALF / batch * fwd_s) / 3600
        rows.append({"k": k, "C": channels, "C_over_k": channels // k, "batch": batch, "steps": steps,
                     "step_s": step_s, "train_images_per_s": batch / step_s, "val_images_per_s": batch / fwd_s,
                     "search_hours": hours, "search_days": hours / 24,
                     "params": sum(p.numel() for p in net.parameters())})
        print(f"k={k}: {batch / step_s:.1f} train images/s, {batch / fwd_s:.1f} val images/s", file=sys.stderr)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--runs", type=int, default=50, help="timed forwards per model (paper: 50)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--ks", default="2,4,8,16")
    p.add_argument("--channels", type=int, default=16, help="C of the search network (paper: 16)")
    p.add_argument("--batch", type=int, default=0, help="search batch (default: 64 on cuda, 16 on cpu)")
    p.add_argument("--steps", type=int, default=0, help="timed steps per k (default: 20 on cuda, 3 on cpu)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default: 1 on cpu, since several intra-op threads on a shared, busy "
                        "machine spin against each other and make tiny forwards 20x slower; 0 = torch default)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown tables")
    args = p.parse_args()

    import torch

    device = torch.device(args.device)
    threads = args.threads if args.threads or device.type == "cuda" else 1
    if threads:
        torch.set_num_threads(threads)
    cuda = device.type == "cuda"
    batch = args.batch or (64 if cuda else 16)
    steps = args.steps or (20 if cuda else 3)
    name = torch.cuda.get_device_name(device) if cuda else (platform.processor() or platform.machine() or "cpu")
    inference = inference_table(device, args.runs, args.warmup)
    throughput = throughput_table(device, [int(k) for k in args.ks.split(",") if k.strip()], batch, steps,
                                  1 if not cuda else 3, args.channels)
    out = {"device": name, "torch": torch.__version__, "threads": torch.get_num_threads(), "inference": inference,
           "throughput": throughput}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"\nTable V on {name} (torch {torch.__version__}, {torch.get_num_threads()} thread(s)), batch 1, "
          f"{args.runs} runs:\n")
    print("| model | params | mean ms | median ms | × DARTS (mean) | × DARTS (median) | paper ms | paper × |")
    print("|---|---|---|---|---|---|---|---|")
    for r in inference:
        print(f"| {r['model']} | {r['params']:,} | {r['mean_ms']:.1f} | {r['median_ms']:.1f} | {r['ratio_mean']:.2f} "
              f"| {r['ratio_median']:.2f} | {r['paper_ms']:.1f} | {r['paper_ratio']:.2f} |")
    print(f"\nSearch step (depth 5, C={args.channels}, batch {batch}, {steps} timed steps):\n")
    print("| k | C/k | params | train images/s | val images/s | one search (30 epochs, CIFAR halves) |")
    print("|---|---|---|---|---|---|")
    for r in throughput:
        print(f"| {r['k']} | {r['C_over_k']} | {r['params']:,} | {r['train_images_per_s']:.1f} "
              f"| {r['val_images_per_s']:.1f} | {r['search_hours']:.1f} h = {r['search_days']:.2f} days |")


if __name__ == "__main__":
    main()
