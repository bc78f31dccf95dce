"""EAGAN's evolutionary operators (Sec. 4.3) over integer-encoded genotypes, each a pymoo component.

A genotype is a vector of integers, one per edge (``vector[k]`` indexes the candidates of edge ``k``);
these operators never see op names or networks.

* ``RandomGenotypeSampling``: uniform choice per edge; the caller's ``repair`` makes it valid.
* ``EdgeSwapCrossover`` (probability 0.3): two parents exchange the op of ONE edge. The edge is
  drawn among the positions where the parents differ, so a crossover never produces two clones.
* ``SingleEdgeMutation`` (probability 0.5): ONE edge takes a different op, uniformly among the others.
* ``CallableRepair``: wraps ``repair(vector, rng) -> vector`` (e.g. ``SearchSpace.repair``).
* ``GenotypeDuplicateElimination``: offspring equal to each other or to a parent are dropped.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import ElementwiseDuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling

from raynas.errors import GenotypeError

__all__ = [
    "CallableRepair",
    "EdgeSwapCrossover",
    "GenotypeDuplicateElimination",
    "GenotypeProblem",
    "RandomGenotypeSampling",
    "RepairFn",
    "SingleEdgeMutation",
]

RepairFn = Callable[[list[int], random.Random], Sequence[int]]


class GenotypeProblem(Problem):
    """Bounds only: ``vector[k]`` in ``[0, n_choices[k])``. Never evaluated here (ask/tell)."""

    def __init__(self, n_choices: Sequence[int], n_obj: int) -> None:
        n = np.asarray(n_choices, dtype=int)
        super().__init__(n_var=len(n), n_obj=n_obj, xl=np.zeros(len(n), dtype=int), xu=n - 1, vtype=int)

    def _evaluate(self, x: Any, out: dict, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("genotypes are evaluated by the caller: use NSGA2Searcher.ask()/tell()")


def _n_choices(problem: Problem) -> np.ndarray:
    return np.asarray(problem.xu, dtype=int) + 1


class RandomGenotypeSampling(Sampling):
    """Each edge picks one of its candidates uniformly (repair runs afterwards)."""

    def _do(self, problem: Problem, n_samples: int, *args: Any, random_state: Any = None, **kwargs: Any):
        n = _n_choices(problem)
        return np.column_stack([random_state.integers(0, c, size=n_samples) for c in n]).astype(int)


class EdgeSwapCrossover(Crossover):
    """EAGAN crossover: two parents exchange the op on one edge (among the edges where they differ)."""

    def __init__(self, prob: float = 0.3, **kwargs: Any) -> None:
        super().__init__(n_parents=2, n_offsprings=2, prob=prob, **kwargs)

    def _do(self, problem: Problem, X: np.ndarray, *args: Any, random_state: Any = None, **kwargs: Any):
        _, n_matings, n_var = X.shape
        Y = X.copy()
        for k in range(n_matings):
            a, b = X[0, k], X[1, k]
            diff = np.flatnonzero(a != b)
            pool = diff if diff.size else np.arange(n_var)
            e = int(pool[random_state.integers(pool.size)])
            Y[0, k, e], Y[1, k, e] = b[e], a[e]
        return Y


class SingleEdgeMutation(Mutation):
    """EAGAN mutation: one edge (with >1 candidate) switches to a different op, uniformly."""

    def __init__(self, prob: float = 0.5, **kwargs: Any) -> None:
        super().__init__(prob=prob, **kwargs)

    def _do(self, problem: Problem, X: np.ndarray, *args: Any, random_state: Any = None, **kwargs: Any):
        n = _n_choices(problem)
        mutable = np.flatnonzero(n > 1)
        Y = np.array(X, copy=True)
        if mutable.size == 0:
            return Y
        for i in range(len(Y)):
            e = int(mutable[random_state.integers(mutable.size)])
            shift = int(random_state.integers(1, n[e]))
            Y[i, e] = (int(Y[i, e]) + shift) % n[e]
        return Y


class CallableRepair(Repair):
    """Applies ``fn(vector, rng)`` row by row and checks that the result is still a genotype vector."""

    def __init__(self, fn: RepairFn, rng: random.Random) -> None:
        super().__init__()
        self.fn = fn
        self.rng = rng

    def _do(self, problem: Problem, X: np.ndarray, **kwargs: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.size == 0:
            return X
        n = _n_choices(problem)
        out = np.empty((len(X), len(n)), dtype=int)
        for i, row in enumerate(X):
            v = [int(x) for x in self.fn([int(x) for x in row], self.rng)]
            if len(v) != len(n) or any(not 0 <= x < c for x, c in zip(v, n)):
                raise GenotypeError(f"repair returned {v}, which is not a genotype vector with choices "
                                    f"{n.tolist()}; the repair callable must return one index per edge")
            out[i] = v
        return out


class GenotypeDuplicateElimination(ElementwiseDuplicateElimination):
    """Two individuals are duplicates when their canonical vectors are equal (``canonical`` masks edges
    that cannot change the network; without it, the raw integer vectors are compared)."""

    def __init__(self, canonical: Callable[[Sequence[int]], Sequence[int]] | None = None) -> None:
        super().__init__()
        self.canonical = canonical

    def is_equal(self, a: Any, b: Any) -> bool:
        if self.canonical is None:
            return bool(np.array_equal(a.X, b.X))
        return tuple(self.canonical(a.X.tolist())) == tuple(self.canonical(b.X.tolist()))
