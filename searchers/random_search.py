"""Random search: uniform sampling over a search space, and a searcher with NSGA-II's ask/tell interface.

Plain Python (no Ray, no torch). Uniform means uniform over the genotypes *as each space defines them*:

* a cell-group space (``eagan-g``, ``eagan-d``, ``damgan-g``: one candidate per edge, plus constraints) is
  sampled by rejection over the whole integer vector: draw every edge uniformly, keep the vector only if the
  space accepts it. Every valid vector then has the same probability, whatever the constraints look like
  (``SearchSpace.sample`` re-draws only the offending edges, which is uniform only while constraints do not
  overlap; this sampler never relies on that).
* a DARTS cell (``darts``; each of SWD-NAS's five cells) is what DARTS derives from its supernet: node ``i``
  takes two *distinct* inputs among its ``i + 2`` predecessors and one op other than ``none`` on each; the
  two (op, input) pairs of a node are unordered (their outputs are summed), so a node has
  ``C(i + 2, 2) · n_ops²`` genotypes and every one is equally likely. The pairs are stored sorted by input
  (the canonical form), and the cell outputs its last ``multiplier`` nodes, as DARTS' supernet does.
  This is Li & Talwalkar's (2019) sampler for the DARTS space.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from raynas.errors import GenotypeError

MAX_REJECTIONS = 100_000


def darts_ops() -> tuple[str, ...]:
    """The ops a DARTS cell samples: DARTS' primitives other than ``none`` (derivation never picks ``none``)."""
    from raynas.spaces.darts import PRIMITIVES

    return tuple(op for op in PRIMITIVES if op != "none")


def sample_darts_cell(rng: random.Random, steps: int = 4, multiplier: int = 4,
                      ops: Sequence[str] | None = None):
    """One DARTS cell, uniform over the cells DARTS' supernet can derive (see the module docstring)."""
    from raynas.spaces.darts import CellGenotype

    ops = tuple(ops or darts_ops())
    if not 1 <= multiplier <= steps:
        raise GenotypeError(f"a cell of {steps} nodes cannot concatenate {multiplier} of them")
    pairs: list[tuple[str, int]] = []
    for node in range(steps):
        inputs = sorted(rng.sample(range(node + 2), 2))
        pairs.extend((rng.choice(ops), j) for j in inputs)
    return CellGenotype(tuple(pairs), tuple(range(2 + steps - multiplier, 2 + steps))).validate()


def darts_cell_count(steps: int, n_ops: int) -> int:
    """How many distinct cells ``sample_darts_cell`` draws from (each with probability 1/count)."""
    return math.prod(math.comb(node + 2, 2) * n_ops ** 2 for node in range(steps))


def uniform_vector(space: Any, rng: random.Random) -> list[int]:
    """A valid integer vector of a cell-group space, uniform over all valid vectors (rejection sampling)."""
    choices = space.n_choices()
    for _ in range(MAX_REJECTIONS):
        v = [rng.randrange(n) for n in choices]
        if space.is_valid(v):
            return v
    raise GenotypeError(f"{space.name}: no valid genotype in {MAX_REJECTIONS} uniform draws; the space's "
                        "constraints leave (almost) nothing to sample")


def sample_genotype(space: str, rng: random.Random, *, steps: int = 4, multiplier: int = 4):
    """A uniformly random genotype of ``space`` (``darts``, ``swd-nas`` or a registered cell-group space),
    already validated. ``steps``/``multiplier`` size DARTS-style cells (the search network's)."""
    if space == "darts":
        from raynas.spaces.darts import DartsGenotype

        return DartsGenotype(sample_darts_cell(rng, steps, multiplier),
                             sample_darts_cell(rng, steps, multiplier)).validate()
    if space == "swd-nas":
        from raynas.spaces.swd import CELL_TYPES, SwdGenotype

        return SwdGenotype(tuple(sample_darts_cell(rng, steps, multiplier) for _ in CELL_TYPES)).validate()
    from raynas.spaces import get_space

    s = get_space(space)
    g = s.decode(uniform_vector(s, rng))
    s.validate(g)
    return g


class RandomSearcher:
    """Random search with ``NSGA2Searcher``'s interface (``ask`` / ``tell`` / ``ranks`` / state), so a
    population search can swap its searcher and keep everything else (host, evaluators, round budget).

    ``ask`` returns ``pop_size`` fresh uniform vectors (no duplicates within the history, while the space has
    unseen ones); ``tell`` records their objectives; ``ranks`` is each told vector's non-dominated rank in the
    last round, so the driver's best pick works unchanged. Reproducible per ``seed`` and across a resume."""

    def __init__(self, space: Any, objectives: Sequence[tuple[str, str]], pop_size: int, seed: int = 0):
        self.space, self.objectives, self.pop_size = space, list(objectives), int(pop_size)
        self.rng = random.Random(seed)
        self.seen: set[tuple[int, ...]] = set()
        self.last: list[tuple[list[int], dict[str, float]]] = []
        self.history: list[tuple[list[int], dict[str, float]]] = []
        self.pending: list[list[int]] | None = None

    @classmethod
    def for_space(cls, space: Any, **kwargs: Any) -> RandomSearcher:
        keep = {k: kwargs[k] for k in ("objectives", "pop_size", "seed") if k in kwargs}
        return cls(space, **keep)

    def objective_names(self) -> list[str]:
        return [name for name, _ in self.objectives]

    def ask(self) -> list[list[int]]:
        """This round's ``pop_size`` samples (asking again before ``tell`` returns the same, as NSGA-II's)."""
        if self.pending is not None:
            return [list(v) for v in self.pending]
        out: list[list[int]] = []
        for _ in range(self.pop_size):
            v = uniform_vector(self.space, self.rng)
            for _ in range(100):  # prefer an unseen genotype; a tiny space may have none left
                if tuple(self.space.canonical(v)) not in self.seen:
                    break
                v = uniform_vector(self.space, self.rng)
            self.seen.add(tuple(self.space.canonical(v)))
            out.append(v)
        self.pending = out
        return [list(v) for v in out]

    def tell(self, vectors: Sequence[Sequence[int]], results: Sequence[Mapping[str, float]]) -> None:
        self.last = [([int(x) for x in v], {k: float(r[k]) for k in self.objective_names()})
                     for v, r in zip(vectors, results)]
        self.history.extend(self.last)
        self.pending = None

    def _minimised(self, res: Mapping[str, float]) -> list[float]:
        return [res[name] if direction == "min" else -res[name] for name, direction in self.objectives]

    def ranks(self) -> list[int]:
        """Non-dominated rank (0 = first front) of each vector of the last ``tell``, in its order."""
        from raynas.results.pareto import pareto_ranks

        points = [[math.inf if v != v else v for v in self._minimised(r)] for _, r in self.last]  # NaN: worst
        return [int(r) for r in pareto_ranks(points)] if points else []

    def last_front(self) -> list[tuple[list[int], dict[str, float]]]:
        return [c for c, rank in zip(self.last, self.ranks()) if rank == 0]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "seen": sorted(self.seen), "last": self.last, "history": self.history,
                "pending": self.pending, "pop_size": self.pop_size, "objectives": self.objectives}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        state = d["rng"]
        self.rng.setstate((state[0], tuple(state[1]), state[2]))
        self.seen = {tuple(v) for v in d["seen"]}
        self.last = [(list(v), dict(r)) for v, r in d["last"]]
        self.history = [(list(v), dict(r)) for v, r in d["history"]]
        self.pending = [list(v) for v in d["pending"]] if d.get("pending") is not None else None
