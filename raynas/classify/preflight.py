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


def preflight_search(cfg: RaynasConfig, build_supernet) -> None:
    """A classifier search: the dataset (train and test splits), a validation part, the search network (built
    on the meta device: a bad depth or width fails here), and the retrain network's settings."""
    from raynas.data import resolve_root
    from raynas.data.specs import get_spec
    from raynas.errors import ConfigError

    spec = get_spec(cfg.data.name)
    resolve_root(spec.name, cfg.data.root, split=spec.train_split)
    if not 0 < cfg.data.train_portion < 1:
        raise ConfigError(f"data.train_portion={cfg.data.train_portion}: a search trains its weights on that "
                          "portion of the training split and its architecture on the rest; use e.g. 0.5")
    with torch.device("meta"):
        build_supernet()
