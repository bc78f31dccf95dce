"""SWD-NAS (Xue, Han, Wang, IEEE TII 2024): classifier cell search whose architecture weights are dual-attention
statistics (UA picks each edge's top C/k channels, LA weighs every op's output), normalised per edge (AWN), with
five distinct cells (N, R, N, R, N), single level, as Ray Tune trials.

Science: ``search`` (the search on the classifier search base), ``ablation`` (best-of-seeds plots of the
paper's Fig. 4 / Tables III–IV / Fig. 8 grids); the search network is ``raynas/nn/swd_search.py``, the evaluation
networks ``raynas/nn/swd_net.py``, the space ``raynas/spaces/swd.py``. ``train.*``/``model.*`` are the retrain
(20 cells, C=36, the five cells stacked 6×c0, c1, 6×c2, c3, 6×c4).
"""

from __future__ import annotations

from raynas.config import SearchTraining, search_section, setting
from raynas.errors import ConfigError
from raynas.methods.spec import Method, register
from raynas.results.schema import register_columns
from raynas.spaces.swd import POOLINGS


@search_section(lead=("k",))
class SwdConfig(SearchTraining):
    k: int = setting(4, lo=1, doc="each edge's ops see the top C/k channels by upper attention; must divide C "
                                  "(paper: 4; the authors' code hard-codes 16)")
    layers: int = setting(5, lo=5, doc="cells of the search network (N, R, N, R, N at 5; Fig. 8 compares 8)")
    epochs: int = setting(30, lo=1)
    grad_clip: float = setting(5.0, lo=0.0, doc="global norm of the gradients; 0 = off")
    ua: bool = setting(True, doc="upper attention; false = every channel goes to the ops (Table IV's 'UA off')")
    ua_pool: str = setting("gap+gmp", choices=POOLINGS, doc="UA pooling (Table III; paper's best: gap+gmp)")
    la_pool: str = setting("gap", choices=POOLINGS, doc="LA pooling (Table III; paper's best: gap)")
    ua_reduction: int = setting(2, lo=1, doc="UA MLP bottleneck ratio (paper silent; authors' code: 2)")
    la_reduction: int = setting(8, lo=1, doc="LA MLP bottleneck ratio (paper silent; authors' code: 8)")
    attention_bias: bool = setting(True, doc="biases in the attention MLPs (paper eq. 5: yes; authors' code: no)")
    awn: bool = setting(True, doc="architectural weight normalisation (eq. 11); false = softmax (the authors' "
                                  "parser)")
    residual: bool = setting(True, doc="the authors' code-only residual auxiliary_op on every edge (identity / "
                                       "FactorizedReduce); the paper does not describe it")
    stats: str = setting("val", choices=("val", "train"),
                         doc="where each epoch's attention statistics are accumulated: val = a pass over the "
                             "validation split after the epoch (the authors' code), train = the training steps "
                             "themselves")

    def __post_init__(self) -> None:
        if self.multiplier > self.steps:
            raise ConfigError(f"swd.multiplier={self.multiplier} concatenates more nodes than a cell has "
                              f"(swd.steps={self.steps})")
        if self.ua and self.channels % self.k:
            # every cell has C, 2C or 4C channels, so k divides them all exactly when it divides C
            valid = [d for d in range(1, self.channels + 1) if self.channels % d == 0]
            raise ConfigError(f"swd.k={self.k} does not divide every cell's channel count (swd.channels="
                              f"{self.channels}: cells of {self.channels}, {2 * self.channels} and "
                              f"{4 * self.channels}); each edge keeps C/k channels. Valid k: "
                              f"{', '.join(map(str, valid))}")


SWD = register(Method(
    name="swd-nas", section="swd", task="classify", config=SwdConfig, shape="differentiable",
    summary="SWD-NAS: dual-attention (UA + LA) classifier search with AWN, five distinct cells, one Tune trial "
            "per seed",
    spaces=("swd-nas",),
    ablation_plots="raynas.methods.swdnas.ablation:ablation_plots",
    default_grid=("k=2,4,8,16",),
    search="raynas.methods.swdnas.attention_search:SwdSearch",
    check="raynas.methods.swdnas.attention_search:check_search",
    outputs=("best.json", "alpha.json"),
    smoke="raynas.methods.swdnas.attention_search:smoke",
    smoke_overrides=("swd.channels=4", "swd.k=2", "swd.steps=2", "swd.multiplier=2", "swd.epochs=1",
                     "swd.batch_size=8", "data.limit=32", "model.layers=5", "model.channels=4"),
))
register_columns("swd-nas", ("seed", "epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                              "alpha_entropy_mean", "alpha_margin_mean", "params", "wall_seconds"))

from raynas.methods.swdnas import figures as _figures  # noqa: E402,F401  (registers its figures)
