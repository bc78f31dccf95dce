"""The sections every run holds, whatever its task and method: ``data``, ``run`` and ``resources``."""

from __future__ import annotations

from dataclasses import dataclass

from raynas.config.fields import setting
from raynas.errors import ConfigError

BASE_MAX_RESOLUTION = 256  # every network's largest data.resolution, unless its family declares more


@dataclass(frozen=True)
class DataConfig:
    name: str = setting("embedded", choices=("embedded", "fashion-mnist", "mnist", "cifar10", "cifar100", "stl10",
                                             "imagenet", "folder"),
                        doc="folder: your own images under data.root (classifiers: DIR/train/<class>, "
                            "DIR/test/<class>)")
    root: str | None = setting(None, doc="dataset folder; else RAYNAS_DATA, then system locations "
                                         "(data.name=folder: required, the folder of your images)")
    split: str = setting("train", doc="training split (stl10: train+unlabeled as the papers use)")
    resolution: int = setting(32, lo=8, hi=1024, doc="image side in pixels; above 256 only for a fixed GAN run "
                                                    "of a family built for it (stylegan2, progan: up to 1024)")
    channels: int = setting(3, choices=(1, 3))
    loader: str = setting("auto", choices=("auto", "device", "dataloader"),
                          doc="device: whole uint8 dataset on the training device; dataloader: torch DataLoader")
    num_workers: int = setting(2, lo=0, hi=64)
    limit: int = setting(0, lo=0, doc="use only the first N training images (0 = all)")
    fraction: float = setting(1.0, lo=0.0, hi=1.0, lo_open=True,
                              doc="train on a seeded random fraction of the training images (Re-GAN's data ratios)")
    train_portion: float = setting(0.5, lo=0.0, hi=1.0, lo_open=True, hi_open=True,
                                   doc="classifier searches: the first portion of the training split trains the "
                                       "weights, the rest is the validation split (DARTS: 0.5); fixed training uses "
                                       "all of it")
    test_limit: int = setting(0, lo=0, doc="classifiers: score only the first N test images (0 = all; quick runs)")


@dataclass(frozen=True)
class RunConfig:
    output_dir: str = setting("runs")
    name: str = setting("", doc="run directory name; empty = PRESET-METHOD-TIMESTAMP")
    max_failures: int = setting(2, lo=0, hi=100, doc="Tune retries of a trial that crashed (a lost node, a killed "
                                                     "worker), each from its last checkpoint; a user error is never "
                                                     "retried")
    checkpoints_to_keep: int = setting(2, lo=1, hi=1000, doc="checkpoints Tune keeps per trial (the latest)")
    experiment_name: str = setting("tune", doc="Tune's experiment folder inside the run directory (RUN_DIR/NAME)")

    def __post_init__(self) -> None:
        if not str(self.output_dir).strip():  # an empty value must not quietly mean the working directory
            raise ConfigError("run.output_dir is empty; give a folder or a URI such as s3://bucket/raynas")


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float = setting(1.0, lo=0.0)
    gpu: float = setting(0.0, lo=0.0)
    workers: int = setting(1, lo=1, hi=4096, doc="raynas train / retrain: data-parallel workers (Ray Train) that "
                                                  "train the one network; cpu and gpu are per worker")

