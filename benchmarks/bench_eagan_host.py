"""EAGAN stage-1 training through the SupernetHost actor against the same trainer in-process, on the same cores.

    python benchmarks/bench_eagan_host.py --repeats 5 --iters 20

Ray caps an actor's threads at its CPU reservation (``eagan.host_cpu``, default 1), so the host trained on one
thread while the Evaluators' cores sat idle. The host now trains on ``host_cpu + workers × evaluator_cpu``
threads (the search's whole reservation, capped at the node's cores); ``--old`` measures the one-thread path
too. Calls are interleaved (in-process, actor, actor-old, ...) and each reports ms per D step (the median of
``--repeats`` epochs of ``--iters`` steps). Prints one JSON line per measurement and a summary.

The actor picks its thread count per round from the cores the machine has idle (``raynas.device.threads_for``);
the in-process trainer keeps ``--cores`` threads throughout, as the host did before, so under ``--load`` the two
paths compare the fixed and the adaptive thread count.

``--load N`` runs the same measurement on a busy machine: the benchmark starts N busy-looping processes of its
own (each stops after ``--load-seconds`` at the latest, and all are stopped when it ends). Threads that wait
for work by spinning (OpenMP's active wait) collapsed there; raynas sets ``OMP_WAIT_POLICY=PASSIVE`` (see
``raynas/__init__.py``), and ``OMP_WAIT_POLICY=ACTIVE python benchmarks/bench_eagan_host.py --load 2`` measures
the spinning policy for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import time

import raynas  # noqa: F401  (before torch: sets OMP_WAIT_POLICY unless the caller chose one)


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@contextlib.contextmanager
def background_load(n: int, seconds: float):
    """``n`` busy processes for at most ``seconds``, stopped on exit: a bounded, self-cleaning load."""
    procs = [mp.get_context("spawn").Process(target=_spin, args=(seconds,), daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join(5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart")
    p.add_argument("--gf", type=int, default=32)
    p.add_argument("--gen-batch", type=int, default=32)
    p.add_argument("--dis-batch", type=int, default=16)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cores", type=int, default=2, help="the embedded Ray's CPUs = the in-process threads")
    p.add_argument("--old", action="store_true", help="also time the one-thread host (before the fix)")
    p.add_argument("--load", type=int, default=0, help="busy processes to run beside the measurement")
    p.add_argument("--load-seconds", type=float, default=900, help="upper bound on the background load's life")
    args = p.parse_args()

    import ray
    import torch

    from raynas.config import load_config
    from raynas.gan.setup import gan_setup
    from raynas.methods.eagan.setup import build_search_discriminator, build_search_generator, search_step_config
    from raynas.methods.eagan.training import ManyToOneTrainer
    from raynas.spaces import get_space
    from trainables.eagan.actors import SupernetHost

    overrides = [f"eagan.search_gf_dim={args.gf}", f"eagan.gen_batch_size={args.gen_batch}",
                 f"eagan.dis_batch_size={args.dis_batch}", f"eagan.iters_per_epoch={args.iters}",
                 "eagan.host_cpu=1", "eagan.workers=2", "eagan.evaluator_cpu=0.5", "train.device=cpu"]
    cfg = load_config(args.preset, overrides, method="eagan")
    import random

    population = [get_space("eagan-g").sample(random.Random(i)).to_json() for i in range(4)]

    torch.set_num_threads(args.cores)
    setup = gan_setup(cfg, dis_batch_size=args.dis_batch, iters_per_epoch=args.iters)
    e = cfg.eagan
    local = ManyToOneTrainer(build_search_generator(cfg), build_search_discriminator(cfg), setup.real,
                             search_step_config(cfg, "g"), setup.precision, lr_g=e.lr_g, lr_d=e.lr_d,
                             betas=(cfg.train.beta1, cfg.train.beta2), iters_per_epoch=args.iters, seed=0)
    from raynas.spaces import Genotype

    genotypes = [Genotype.from_json(g) for g in population]

    ray.init(num_cpus=args.cores, include_dashboard=False, logging_level="ERROR")
    threads = round(e.host_cpu + e.workers * e.evaluator_cpu)
    hosts = {"actor": SupernetHost.options(num_cpus=e.host_cpu).remote(cfg.to_dict(), "g", None,
                                                                       train_threads=threads)}
    if args.old:
        hosts["actor (1 thread, before)"] = SupernetHost.options(num_cpus=e.host_cpu).remote(
            cfg.to_dict(), "g", None, train_threads=1)
    ray.get([h.ready.remote() for h in hosts.values()])
    times: dict[str, list[float]] = {"in-process": [], **{k: [] for k in hosts}}
    with background_load(args.load, args.load_seconds):
        for _ in range(args.repeats + 1):  # the first round warms every path up
            t = time.perf_counter()
            local.train(genotypes, 1)
            times["in-process"].append(time.perf_counter() - t)
            for name, host in hosts.items():
                t = time.perf_counter()
                ray.get(host.train.remote(population, 1))
                times[name].append(time.perf_counter() - t)
    summary = {}
    for name, values in times.items():
        ms = statistics.median(values[1:]) / args.iters * 1000
        summary[name] = ms
        print(json.dumps({"path": name, "ms_per_step": ms, "threads": threads if name == "actor" else
                          (1 if "before" in name else args.cores), "gf": args.gf, "batches": [args.gen_batch,
                          args.dis_batch], "iters": args.iters, "repeats": args.repeats,
                          "load": args.load, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}))
    print(f"actor / in-process: {summary['actor'] / summary['in-process']:.3f}"
          + (f"; one-thread actor / in-process: {summary['actor (1 thread, before)'] / summary['in-process']:.3f}"
             if args.old else ""))
    ray.shutdown()


if __name__ == "__main__":
    main()
