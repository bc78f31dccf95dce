"""Throughput of the fixed-GAN training step and of the metric extractors.

    python benchmarks/bench_gan.py --device cpu  --preset quickstart
    python benchmarks/bench_gan.py --device cuda --preset sngan-cifar10 --synthetic

Prints a Markdown table (and appends JSON lines to --out when given). Training throughput counts
real images seen by D per second (one D step = dis_batch_size real + as many fake images); metric
throughput counts generated images pushed through generator + extractor per second.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from raynas.config import load_config
from raynas.device import Precision, resolve_device, training_setup


class SyntheticSource:
    """Random images already on the device: measures compute, not data loading."""

    def __init__(self, channels: int, resolution: int, device: torch.device):
        self.x = torch.rand(4096, channels, resolution, resolution, device=device) * 2 - 1

    def sample(self, n: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.x), (n,), device=self.x.device)
        return self.x[idx]

    def __len__(self) -> int:
        return len(self.x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_training(cfg, device: torch.device, precision: Precision, steps: int, synthetic: bool) -> dict:
    from raynas.build import build_discriminator, build_generator
    from raynas.data import load_images, make_batch_source
    from raynas.gan.recipe import recipe_from
    from raynas.gan.step import StepConfig, gan_train_step, make_optimizers

    d, t = cfg.data, cfg.train
    G = precision.prepare(build_generator(cfg.model, d))
    D = precision.prepare(build_discriminator(cfg.model, d))
    if synthetic:
        real = SyntheticSource(d.channels, d.resolution, device)
    else:
        images = load_images(d.name, d.split, root=d.root, resolution=d.resolution, channels=d.channels)
        real = make_batch_source(images, device, mode=d.loader, batch_size=t.dis_batch_size, seed=0,
                                 channels_last=precision.channels_last)
    opt_g, opt_d = make_optimizers(G.parameters(), D.parameters(), t.lr_g, t.lr_d, betas=(t.beta1, t.beta2))
    sc = StepConfig(gen_batch_size=t.gen_batch_size, dis_batch_size=t.dis_batch_size, n_critic=t.n_critic,
                    latent_dim=cfg.model.latent_dim, recipe=recipe_from(t))
    warmup = max(3, steps // 10)
    for i in range(warmup):
        gan_train_step(G, D, opt_g, opt_d, real, sc, step=i, precision=precision)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for i in range(steps):
        gan_train_step(G, D, opt_g, opt_d, real, sc, step=i, precision=precision)
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"what": "train G+D", "images_per_s": steps * t.dis_batch_size / seconds,
            "steps_per_s": steps / seconds, "peak_mib": peak}


def bench_metrics(cfg, device: torch.device, precision: Precision, n: int, extractor: str,
                  inception_weights: str | None) -> dict:
    from raynas.build import build_generator
    from raynas.metrics import DatasetSource, evaluate_generator

    d = cfg.data
    G = precision.prepare(build_generator(cfg.model, d)).eval()
    real = DatasetSource(d.name, "test" if d.name != "stl10" else "train", root=d.root, resolution=d.resolution,
                         channels=d.channels)
    kw = {"metrics": ("is", "fid", "kid"), "num_samples": n, "extractor": extractor,
          "inception_weights": inception_weights, "device": device, "batch_size": cfg.eval.batch_size,
          "precision": precision}
    evaluate_generator(G, cfg.model.latent_dim, real, **kw)  # fills the real-statistics cache
    _sync(device)
    start = time.perf_counter()
    evaluate_generator(G, cfg.model.latent_dim, real, **kw)
    _sync(device)
    seconds = time.perf_counter() - start
    return {"what": f"metrics ({extractor})", "images_per_s": n / seconds, "steps_per_s": None, "peak_mib": None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quickstart")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--metric-samples", type=int, default=2000)
    p.add_argument("--extractor", default=None, help="default: the preset's eval.extractor")
    p.add_argument("--inception-weights")
    p.add_argument("--synthetic", action="store_true", help="random on-device images instead of the dataset")
    p.add_argument("--amp", choices=("auto", "true", "false"), default="auto", help="bf16 autocast")
    p.add_argument("--channels-last", choices=("auto", "true", "false"), default="auto")
    p.add_argument("--skip-metrics", action="store_true")
    p.add_argument("--out", help="append JSON lines here")
    args = p.parse_args()
    overrides = [*args.overrides, f"train.amp={args.amp}", f"train.channels_last={args.channels_last}"]
    cfg = load_config(args.preset, overrides)
    device = resolve_device(args.device)
    precision = training_setup(cfg.train, device).precision
    torch.backends.cudnn.benchmark = True
    rows = [bench_training(cfg, device, precision, args.steps, args.synthetic)]
    if not args.skip_metrics:
        rows.append(bench_metrics(cfg, device, precision, args.metric_samples,
                                  args.extractor or cfg.eval.extractor, args.inception_weights))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    t = cfg.train
    print("\n| preset | device | bf16 | channels_last | D/G batch | what | images/s | peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] else "-"
        print(f"| {cfg.preset} | {name} | {precision.amp} | {precision.channels_last} | "
              f"{t.dis_batch_size}/{t.gen_batch_size} | {r['what']} | {r['images_per_s']:.1f} | {peak} |")
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps({"preset": cfg.preset, "device": name, "amp": precision.amp,
                                     "channels_last": precision.channels_last, "dis_batch": t.dis_batch_size,
                                     "gen_batch": t.gen_batch_size, "torch": torch.__version__, **r}) + "\n")


if __name__ == "__main__":
    main()
