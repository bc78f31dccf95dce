"""A toy differentiable classifier search, registered from outside raynas: the proof that a method brings its own
config section, genotype space, supernet and derived network, figure and result columns without any edit to
raynas (``tests/methods/test_toy_method.py`` imports it and runs it through the CLI).

What each module registers when imported:

* this one: the ``toy`` config section and method (``register(Method(...))``; shape defaults fill in the
  differentiable trainables, the classifier preset and grid metrics);
* ``space``: the ``toy`` genotype space (two edges choosing among three ops) and its drawer; torch-free, and it
  names ``network`` as the module with its networks (imported on their first lookup);
* ``network``: the supernet, the derived network and its ``arch show`` summary (torch);
* ``search``: the search a Tune trial runs; its rows carry the toy's own result column ``toy_score``, which
  its outcome table shows (``register_columns``) and its run figure draws (``figures``).
"""

from __future__ import annotations

from dataclasses import dataclass

from raynas.config import setting
from raynas.methods.spec import Method, register
from raynas.results.schema import register_columns

from . import figures, space  # noqa: F401  (register the toy's run figure, its space and its drawer)


@dataclass(frozen=True)
class ToyConfig:
    epochs: int = setting(1, lo=1, doc="search epochs")
    batch_size: int = setting(16, lo=1)
    channels: int = setting(4, lo=1, doc="C of the supernet and of the derived network")
    lr: float = setting(0.01, lo=0.0, hi=10.0, lo_open=True, doc="Adam lr of the weights and α")


TOY = register(Method(
    name="toy", section="toy", task="classify", config=ToyConfig, shape="differentiable",
    summary="a toy differentiable search registered from tests/toy_method",
    spaces=(space.SPACE_NAME,),
    search=f"{__name__}.search:ToySearch",
    outputs=("best.json", "alpha.json"),
))
register_columns("toy", ("seed", "epoch", "val_acc", "toy_score", "params"))  # its outcome table
