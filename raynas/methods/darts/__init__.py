"""DARTS (Liu, Simonyan, Yang, ICLR 2019): differentiable cell search for classifiers, first or second
order, as Ray Tune trials; the baseline SWD-NAS and DARTS-GAL are measured against.

The search network (``raynas.nn.darts_search``: 8 cells, C=16, softmax-mixed ops, two 14×8 α tensors)
trains its weights on the first ``data.train_portion`` of the training set and its α on the rest
(``searchers.architect``: first order, or DARTS' unrolled second order). ``--seeds N`` runs N searches and
keeps the cell that a short retrain on the validation split scores best. ``train.*``/``model.*`` are the
retrain (the evaluation network: 20 cells, C=36, 600 epochs).
"""

from __future__ import annotations

from raynas.config import SearchTraining, search_section, setting
from raynas.methods.spec import Method, register
from raynas.results.schema import register_columns


@search_section(lead=("order",))
class DartsConfig(SearchTraining):
    order: int = setting(2, choices=(1, 2), doc="1 = first-order α gradient; 2 = DARTS' unrolled second order")
    arch_lr: float = setting(3e-4, lo=0.0, hi=1.0)
    arch_weight_decay: float = setting(1e-3, lo=0.0, hi=1.0)


DARTS = register(Method(
    name="darts", section="darts", task="classify", config=DartsConfig, shape="differentiable",
    summary="DARTS cell search for classifiers (first or second order), one Tune trial per seed",
    spaces=("darts",),
    default_grid=("order=1,2",),
    search="raynas.methods.darts.cell_search:DartsSearch",
    check="raynas.methods.darts.cell_search:check_search",
    outputs=("best.json", "alpha.json"),
    smoke="raynas.methods.darts.cell_search:smoke",
    smoke_overrides=("darts.order=1", "darts.layers=3", "darts.channels=4", "darts.steps=2", "darts.multiplier=2",
                     "darts.epochs=1", "darts.batch_size=8", "data.limit=32", "model.layers=3", "model.channels=4"),
))
register_columns("darts", ("seed", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "alpha_entropy_mean",
                            "alpha_margin_mean", "params", "wall_seconds"))

from raynas.methods.darts import figures as _figures  # noqa: E402,F401  (registers its figures)
