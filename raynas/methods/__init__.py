"""The method registry: one module per method, one import line each.

Adding a method: write ``raynas/methods/NAME.py`` (its config section and a ``register(Method(...))``),
add its import below, and ship a preset. Everything else (``raynas search NAME``, ``raynas ablate NAME``,
config checks, the contract test) comes from the spec.
"""

from raynas.methods import damgan, darts, dartsgal, eagan, regan, swdnas  # noqa: F401  (each registers itself)
from raynas.methods import random as _random  # noqa: F401  (the random-search baseline)
from raynas.methods.spec import (
    Ablation,
    Flag,
    Method,
    SearchOutcome,
    SearchRequest,
    all_methods,
    get_method,
    load_object,
    register,
)

__all__ = ["Ablation", "Flag", "Method", "SearchOutcome", "SearchRequest", "all_methods", "get_method",
           "load_object", "register"]

from raynas.methods import figures as _figures  # noqa: E402,F401  (every spec's ablation grid figure)
