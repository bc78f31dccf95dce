"""Training one fixed network, for either task: the trainer a config calls for, and how a searched
genotype becomes the network a retrain trains (plain PyTorch, no Ray).

Every fixed trainer offers the same surface to the trainables: ``epoch``, ``epochs``, ``train_epoch()``,
``eval_due()``, ``score()`` (the result row's metrics), ``row(stats)`` (the epoch row's training columns),
``headline_params()``, ``sample_grid()`` (None for classifiers), ``state_dict()``/``load_state_dict()``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from raynas.config import FIXED, RaynasConfig, from_dict
from raynas.distributed import Replicas


def fixed_trainer(cfg: RaynasConfig, device: torch.device | None = None, replicas: Replicas | None = None) -> Any:
    """The trainer of ``cfg``'s task (a GAN pair, or a classifier); ``replicas``: this process's place in a
    data-parallel run (:mod:`raynas.distributed`)."""
    if cfg.task == "gan":
        from raynas.gan.trainer import GANTrainer

        return GANTrainer(cfg, device, replicas=replicas)
    from raynas.classify.trainer import ClassifierTrainer

    return ClassifierTrainer.for_config(cfg, device, replicas=replicas)


def genotype_overrides(task: str, path: str | Path) -> dict[str, dict[str, Any]]:
    """The config changes that make a run train ``path``'s genotype."""
    if task == "gan":
        return {"model": {"generator": "genotype", "g_genotype": str(path)}}
    return {"model": {"genotype": str(path)}}


def with_final_protocol(cfg: RaynasConfig) -> RaynasConfig:
    """A finished GAN network is scored as the paper scores it (``eval.final_protocol``)."""
    if cfg.task != "gan":
        return cfg
    return dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, protocol=cfg.eval.final_protocol))


def retrain_config(cfg: RaynasConfig, genotype_path: str | Path, epochs: int | None = None) -> RaynasConfig:
    """``cfg`` as a fixed run that trains the genotype's network (``epochs`` overrides ``train.epochs``)."""
    data = cfg.to_dict()
    data["method"] = FIXED
    for section, values in genotype_overrides(cfg.task, genotype_path).items():
        data[section].update(values)
    if epochs:
        data["train"]["epochs"] = int(epochs)
    return with_final_protocol(from_dict(RaynasConfig, data))


def check_fixed(cfg: RaynasConfig) -> None:
    """Everything `raynas train` / `retrain` can check before a run directory exists."""
    if cfg.resources.workers > 1:
        check_workers(cfg)
    if cfg.task == "gan":
        from raynas.gan.preflight import preflight

        preflight(cfg)
        return
    from raynas.classify.preflight import preflight as classify_preflight

    classify_preflight(cfg)


def check_workers(cfg: RaynasConfig) -> None:
    """A data-parallel run (``resources.workers`` > 1) needs global batches its workers share equally."""
    replicas = Replicas(0, cfg.resources.workers)
    if cfg.task == "gan":
        from raynas.gan.trainer import check_parallel

        check_parallel(cfg, replicas)
        return
    replicas.check_batch(cfg.train.batch_size, "train.batch_size")
