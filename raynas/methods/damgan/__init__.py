"""DAMGAN: differentiable GAN generator search with up-attention (top-k feature maps) and down-attention
(op scores), single level, as Ray Tune trials.

Science: ``search`` (the search on the generic differentiable loop), ``edges`` (the per-edge ablation of
the paper's Figs. 9–10); networks in ``raynas/nn/damgan_g.py`` and ``raynas/nn/attention.py``, the space in
``raynas/spaces/damgan.py``. Orchestration: ``trainables/search_trial.py``, ``grid_cell.py``,
``edge_ablation.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from raynas.config import MAX_EPOCHS, gan_training, setting
from raynas.methods.spec import RETRAIN_EPOCHS, THEN_RETRAIN, Ablation, Flag, Method, register
from raynas.results.schema import register_columns


@dataclass(frozen=True)
class DamganConfig(gan_training()):
    kprime: int = setting(4, lo=1, doc="k' : each edge's ops see the top C/k' maps by up-attention")
    search_gf_dim: int = setting(256, lo=4, doc="C: supernet node width while searching")
    selector: str = setting("da", choices=("da", "darts"), doc="da = down-attention; darts = softmax arch params")
    bilevel: bool = setting(False, doc="darts selector only: alternate arch-param steps on held-out batches")
    arch_lr: float = setting(3e-4, lo=0.0, hi=1.0)
    reduction: int = setting(16, lo=1, doc="attention MLP bottleneck ratio")
    epochs: int = setting(100, lo=1, hi=MAX_EPOCHS, doc="supernet search epochs (retrain uses train.*)")
    n_critic: int = setting(1, lo=1, hi=100, doc="n_D: D steps per G step while searching")
    eval_every: int = setting(10, lo=0, doc="IS/FID of the derived subnet every N search epochs (0 = last only)")


_SELECTOR = Flag("--selector", "da = down-attention (the paper); darts = softmax architecture parameters "
                 "(baseline; see damgan.bilevel, damgan.arch_lr). Default: damgan.selector",
                 sets="damgan.selector", choices=("da", "darts"), commands=("search", "ablate", "damgan-edge"))
_RETRAIN_EPOCHS = dataclasses.replace(RETRAIN_EPOCHS, commands=("search", "ablate", "damgan-edge"))

DAMGAN = register(Method(
    name="damgan", section="damgan", task="gan", config=DamganConfig, shape="differentiable",
    summary="DAMGAN differentiable G search with up/down attention (one Tune trial per seed)",
    spaces=("damgan-g",),
    default_grid=("kprime=1,2,4,8,16",),
    grid_aliases={"kprime": "damgan.kprime", "selector": "damgan.selector"},
    check="raynas.methods.damgan.generator_search:check_search",
    search="raynas.methods.damgan.generator_search:DamganSearch",
    outputs=("best_G.json", "alpha.json"),
    network_sizes="raynas.methods.damgan.generator_search:network_sizes",
    flags=(_SELECTOR, _RETRAIN_EPOCHS, THEN_RETRAIN),
    ablations=(Ablation(
        "damgan-edge", "retrain each op of one edge; correlate its α weights with IS (Figs. 9-10)",
        runner="trainables.edge_ablation:run_edge_ablation",
        check="raynas.methods.damgan.edges:prepare_edge_ablation",
        flags=(Flag("--edge", "cellI:S->D (default cell0:1->3, the paper's example) or an edge name like "
                    "cell1.skip[0]", default="cell0:1->3", commands=("damgan-edge",)),
               Flag("--ops", "comma-separated subset of the edge's candidate ops (default: all)",
                    commands=("damgan-edge",)),
               Flag("--search-run", "reuse a finished `raynas search damgan` run (its best_G.json and alpha.json)",
                    kind="path", commands=("damgan-edge",)))),),
    smoke="raynas.methods.damgan.generator_search:smoke",
    smoke_overrides=("damgan.search_gf_dim=8", "damgan.kprime=2", "damgan.reduction=4", "damgan.iters_per_epoch=1",
                     "damgan.gen_batch_size=4", "damgan.dis_batch_size=4", "damgan.epochs=1", "model.latent_dim=16",
                     "model.gf_dim=8", "model.df_dim=8", "data.limit=64", "eval.num_samples=16",
                     "eval.batch_size=16", "train.epochs=1", "train.iters_per_epoch=1", "train.gen_batch_size=4",
                     "train.dis_batch_size=4"),
))
register_columns("damgan", ("seed", "epoch", "d_loss", "g_loss", "alpha_entropy_mean", "alpha_margin_mean",
                             "is_mean", "fid", "params", "wall_seconds"))
register_columns("damgan-edge", ("op", "alpha_weight", "is_mean", "fid", "params"))

from raynas.methods.damgan import figures as _figures  # noqa: E402,F401  (registers its figures)
