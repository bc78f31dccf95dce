"""Classify-task checks run on the driver before any Ray worker starts: the dataset is there, the genotype
loads and its network builds for this dataset's images (so a bad genotype or depth fails in a second)."""

from __future__ import annotations

import torch

from raynas.config import RaynasConfig


def preflight(cfg: RaynasConfig) -> None:
    from raynas.build import build_classifier
    from raynas.data import resolve_root
    from raynas.data.specs import get_spec

    spec = get_spec(cfg.data.name)
    resolve_root(spec.name, cfg.data.root, split=spec.train_split)
    resolve_root(spec.name, cfg.data.root, split=spec.test_split)
    with torch.device("meta"):
        build_classifier(cfg)
