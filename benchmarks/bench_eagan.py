"""One EAGAN round split into training and evaluation, and evaluation scaling with 1, 2, 4 Evaluators.

    python benchmarks/bench_eagan.py --preset quickstart                       # CPU
    python benchmarks/bench_eagan.py --preset eagan-cifar10 --set data.name=embedded \\
        --set eagan.iters_per_epoch=50 --inception-weights W.pth                     # one GPU

On a GPU the host takes ``eagan.host_gpu`` (0.5) and every Evaluator ``eagan.evaluator_gpu`` (0.125), so
the host and four Evaluators share one GPU. ``--logical-gpus 1`` on a CPU machine declares one GPU to Ray
(the actors still compute on the CPU): it checks that this placement schedules every actor at once.
Prints a Markdown table; --out appends JSON lines.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time

import ray

from raynas.config import load_config
from raynas.results import RunDir
from raynas.spaces import get_space
from trainables.eagan.driver import EaganSearch
from trainables.launch import init_ray


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--inception-weights")
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--out")
    p.add_argument("--logical-gpus", type=float, help="GPUs an embedded Ray declares (placement check on CPU)")
    args = p.parse_args()
    overrides = [*args.overrides, f"eagan.population={args.population}", "eagan.epochs_per_round=1"]
    if args.inception_weights:
        overrides.append(f"eval.inception_weights={args.inception_weights}")
    cfg = load_config(args.preset, overrides)
    counts = [int(w) for w in args.workers.split(",")]
    init_ray(num_gpus=args.logical_gpus)
    gpus = ray.cluster_resources().get("GPU", 0)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir.create(tmp, "bench", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="auto")
        search = EaganSearch(cfg, run, workers=max(counts), progress=False)
        start = time.perf_counter()
        host, evaluators = search._start_actors("g", None)
        ray.get([a.ready.remote() for a in [host, *evaluators]], timeout=300)  # all placed at once
        placed_s = time.perf_counter() - start
        placement = ray.get([a.placement.remote() for a in [host, *evaluators]])
        device = ray.get(host.device_name.remote())
        space = get_space("eagan-g")
        rng = random.Random(0)
        population = [space.sample(rng).to_json() for _ in range(cfg.eagan.population)]
        ray.get(host.train.remote(population, 1))  # warm-up: allocations, cudnn autotuning
        start = time.perf_counter()
        stats = ray.get(host.train.remote(population, 1))
        train_s = time.perf_counter() - start
        weights = host.weights.remote()
        jobs = list(enumerate(population))
        ray.get([ev.score.remote(weights, jobs[:1]) for ev in evaluators])  # fills real-stat caches
        rows = []
        for w in counts:
            chunks = [jobs[i::w] for i in range(w)]
            start = time.perf_counter()
            ray.get([ev.score.remote(weights, chunk) for ev, chunk in zip(evaluators[:w], chunks)])
            eval_s = time.perf_counter() - start
            n_images = len(population) * (cfg.eval.num_samples or 1000)
            rows.append({"workers": w, "train_s": train_s, "train_img_s": stats["images_per_s"],
                         "eval_s": eval_s, "eval_img_s": n_images / eval_s, "candidates_per_s": len(jobs) / eval_s})
        for a in [host, *evaluators]:
            ray.kill(a)
    print(f"\nEAGAN round, preset {cfg.preset}, P={cfg.eagan.population}, host on {device}, GPUs in Ray: {gpus:g}")
    print(f"host + {max(counts)} Evaluators all running after {placed_s:.1f} s; "
          f"(GPU ids, torch device) per actor: {placement}")
    print("| evaluators | train epoch s | train img/s | eval s (P candidates) | eval img/s | candidates/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['train_s']:.1f} | {r['train_img_s']:.0f} | {r['eval_s']:.1f} | "
              f"{r['eval_img_s']:.0f} | {r['candidates_per_s']:.2f} |")
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps({"bench": "eagan_round", "preset": cfg.preset, "device": device, **r}) + "\n")


if __name__ == "__main__":
    main()
