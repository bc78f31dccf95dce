"""Random search, the baseline every NAS method must beat (Li & Talwalkar, UAI 2019; Lindauer & Hutter's
checklist, JMLR 2020): uniform samples of a classifier cell space (``random.space``: the DARTS cell space or
SWD-NAS's five-cell space), ranked in one of two ways (``random.mode``):

* ``weight-sharing`` (random search with weight sharing, Li & Talwalkar): the space's supernet (DARTS' search
  network, at ``random.*``'s sizes, trained with the same SGD settings as DARTS) trains its weights with one
  uniformly sampled architecture per step (one-hot mixing weights); then ``random.candidates`` samples are
  scored by the trained supernet's validation accuracy along their path and the best is kept.
* ``scratch``: each candidate's own network (``random.layers``/``random.channels``) trains from scratch for
  ``random.scratch_epochs`` on the search's training part and is scored on its validation part.

Sampling is uniform over the space's genotypes and reproducible per ``train.seed``
(``searchers.random_search``). ``raynas compare`` runs it beside the other methods at one budget.

GAN spaces: ``random-gan`` (a method of its own, as a method has one task) is random search with weight sharing
over DAMGAN's ``damgan-g`` (``raynas.methods.random.gan``); EAGAN's baseline is its own loop with
``eagan.searcher=random`` (``eagan-random`` in ``raynas compare``).
"""

from __future__ import annotations

from dataclasses import dataclass

from raynas.config import SearchTraining, search_section, setting
from raynas.methods.damgan import DamganConfig
from raynas.methods.spec import Method, register
from raynas.results.schema import register_columns

MODES = ("weight-sharing", "scratch")
SPACES = ("darts", "swd-nas")


@search_section(lead=("mode", "space"))
class RandomConfig(SearchTraining):
    mode: str = setting("weight-sharing", choices=MODES,
                        doc="weight-sharing = rank samples with a supernet trained on uniformly sampled paths "
                            "(Li & Talwalkar); scratch = train every sample briefly from scratch")
    space: str = setting("darts", choices=SPACES, doc="the cell space sampled (weight-sharing: darts only)")
    candidates: int = setting(100, lo=1, doc="architectures sampled and ranked (scratch: at most epochs // "
                                             "scratch_epochs of them, so that the training epochs stay within "
                                             "random.epochs)")
    scratch_epochs: int = setting(1, lo=1, doc="scratch: epochs each candidate trains before it is scored")


RANDOM = register(Method(
    name="random", section="random", task="classify", config=RandomConfig, shape="differentiable",
    summary="random search baseline (uniform samples ranked by a weight-sharing supernet or a short training "
            "from scratch), one Tune trial per seed",
    spaces=SPACES,
    default_grid=("mode=weight-sharing,scratch",),
    baseline=True,
    search="raynas.methods.random.search:random_search",
    check="raynas.methods.random.search:check_search",
    outputs=("best.json", "alpha.json"),  # alpha.json: the pick as a one-hot α table
    smoke="raynas.methods.random.search:smoke",
    smoke_overrides=("random.layers=3", "random.channels=4", "random.steps=2", "random.multiplier=2",
                     "random.epochs=1", "random.batch_size=8", "random.candidates=2", "data.limit=32",
                     "model.layers=3", "model.channels=4"),
))
register_columns("random", ("seed", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "params",
                            "wall_seconds"))



@dataclass(frozen=True)
class RandomGanConfig(DamganConfig):
    """DAMGAN's search settings (the same supernet, trained the same way) plus the candidates ranked."""

    candidates: int = setting(20, lo=1, doc="uniform samples of damgan-g scored (IS/FID) on the trained supernet "
                                            "after the last epoch; the best by FID is the result")


# A method has one task: the GAN spaces' random baseline is a method of its own (same package, same sampler).
RANDOM_GAN = register(Method(
    name="random-gan", section="random_gan", task="gan", config=RandomGanConfig, shape="differentiable",
    summary="random search baseline over DAMGAN's generator space (damgan-g): its supernet trained on uniformly "
            "sampled paths, samples ranked by IS/FID on it; one Tune trial per seed",
    spaces=("damgan-g",),
    default_grid=("kprime=2,4",),
    grid_aliases={"kprime": "random_gan.kprime"},
    baseline=True,
    search="raynas.methods.random.gan:RandomGanSearch",
    check="raynas.methods.random.gan:check_search",
    outputs=("best_G.json", "alpha.json"),
    network_sizes="raynas.methods.damgan.generator_search:network_sizes",  # DAMGAN's count (derived_params)
    smoke="raynas.methods.random.gan:smoke",
    smoke_overrides=("random_gan.search_gf_dim=8", "random_gan.kprime=2", "random_gan.reduction=4",
                     "random_gan.iters_per_epoch=1", "random_gan.gen_batch_size=4", "random_gan.dis_batch_size=4",
                     "random_gan.epochs=1", "random_gan.candidates=2", "model.latent_dim=16", "model.gf_dim=8",
                     "model.df_dim=8", "data.limit=64", "eval.num_samples=16", "eval.batch_size=16",
                     "train.epochs=1", "train.iters_per_epoch=1", "train.gen_batch_size=4",
                     "train.dis_batch_size=4"),
))
register_columns("random-gan", ("seed", "epoch", "d_loss", "g_loss", "is_mean", "fid", "params", "wall_seconds"))

from raynas.methods.random import figures as _figures  # noqa: E402,F401  (registers the comparison figure)
