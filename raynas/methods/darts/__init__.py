"""DARTS (Liu, Simonyan, Yang, ICLR 2019): differentiable cell search for classifiers, first or second
order, as Ray Tune trials; the baseline SWD-NAS and DARTS-GAL are measured against.

The search network (``raynas.nn.darts_search``: 8 cells, C=16, softmax-mixed ops, two 14×8 α tensors)
trains its weights on the first ``data.train_portion`` of the training set and its α on the rest
(``searchers.architect``: first order, or DARTS' unrolled second order). ``--seeds N`` runs N searches and
keeps the cell that a short retrain on the validation split scores best. ``train.*``/``model.*`` are the
retrain (the evaluation network: 20 cells, C=36, 600 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass

from raynas.config import MAX_EPOCHS, _f
from raynas.methods.spec import Method, register


@dataclass(frozen=True)
class DartsConfig:
    order: int = _f(2, choices=(1, 2), doc="1 = first-order α gradient; 2 = DARTS' unrolled second order")
    layers: int = _f(8, lo=3, doc="cells of the search network")
    channels: int = _f(16, lo=1, doc="C of the search network")
    steps: int = _f(4, lo=1, doc="intermediate nodes per cell")
    multiplier: int = _f(4, lo=1, doc="nodes concatenated into a cell's output")
    epochs: int = _f(50, lo=1, hi=MAX_EPOCHS)
    batch_size: int = _f(64, lo=1)
    lr: float = _f(0.025, lo=0.0, hi=10.0, lo_open=True)
    lr_min: float = _f(0.001, lo=0.0, hi=10.0)
    momentum: float = _f(0.9, lo=0.0, hi=1.0)
    weight_decay: float = _f(3e-4, lo=0.0, hi=1.0)
    grad_clip: float = _f(5.0, lo=0.0, doc="global norm of the weight gradients; 0 = off")
    arch_lr: float = _f(3e-4, lo=0.0, hi=1.0)
    arch_weight_decay: float = _f(1e-3, lo=0.0, hi=1.0)
    select_epochs: int = _f(100, lo=1, doc="--seeds N: epochs of the retrain on the validation split that picks "
                                           "the best of the N cells")


DARTS = register(Method(
    name="darts", section="darts", task="classify", config=DartsConfig, shape="differentiable",
    summary="DARTS cell search for classifiers (first or second order), one Tune trial per seed",
    spaces=("darts",),
    default_grid=("order=1,2",),
    search="raynas.methods.darts.search:DartsSearch",
    check="raynas.methods.darts.search:check_search",
    outputs=("best.json", "alpha.json"),
    smoke="raynas.methods.darts.search:smoke",
    smoke_overrides=("darts.order=1", "darts.layers=3", "darts.channels=4", "darts.steps=2", "darts.multiplier=2",
                     "darts.epochs=1", "darts.batch_size=8", "data.limit=32", "model.layers=3", "model.channels=4"),
))
