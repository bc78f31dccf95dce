"""Search strategies over genotype vectors.

``NSGA2Searcher`` (pymoo NSGA-II with EAGAN's operators) never imports Ray; ``NSGA2TuneSearcher``, its
``ray.tune`` Searcher adapter, is imported lazily so that ``import searchers`` stays Ray-free. Searchers sit
above the science core: they import ``raynas``, never the reverse (``pareto_ranks`` and ``hypervolume``
are the core's, re-exported here).
"""

from __future__ import annotations

from typing import Any

from raynas.results.pareto import hypervolume, pareto_ranks
from searchers.nsga2 import NSGA2Searcher

__all__ = ["NSGA2Searcher", "NSGA2TuneSearcher", "hypervolume", "pareto_ranks"]


def __getattr__(name: str) -> Any:
    if name == "NSGA2TuneSearcher":
        from searchers.tune_adapter import NSGA2TuneSearcher

        return NSGA2TuneSearcher
    raise AttributeError(f"module 'searchers' has no attribute {name!r}")
