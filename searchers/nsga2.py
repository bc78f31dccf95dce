"""NSGA-II over integer-encoded genotypes, with EAGAN's operators, driven by pymoo's ask/tell loop.

A genotype is a vector of integers, one per edge (``vector[k]`` indexes the candidates of edge ``k``);
the searcher never sees op names or networks, and never imports Ray. The caller evaluates what
``ask()`` returns and hands the objective values back with ``tell()``.

EAGAN's operators (sampling, edge-swap crossover, single-edge mutation, repair, duplicate elimination) are
pymoo components in ``searchers.genotype_operators``; the Pareto math (``pareto_ranks``, ``hypervolume``) is
the core's, ``raynas.results.pareto``.

pymoo's ``Mating`` repeats selection -> crossover(p=0.3) -> mutation(p=0.5) -> repair -> duplicate
elimination until enough new, valid, distinct children exist; that is exactly EAGAN's "repeatedly
perform crossover and mutation ... until we generate P/2 new individuals". Survival is pymoo's
``RankAndCrowding`` (non-dominated rank, then crowding distance).

Two round semantics:

``reevaluate_survivors=True`` (EAGAN, default). The supernet's weights move every round, so a survivor's
old scores are stale. We run ``NSGA2(pop_size=P/2, n_offsprings=P/2)`` whose first generation holds P
random individuals and is cut to P/2 by survival. Each later round ``ask()`` returns the P/2 survivors
plus P/2 offspring bred from them; ``tell()`` first overwrites the survivors' ``F`` with the fresh
values, then calls ``algorithm.tell(infills=offspring)``, whose survival ranks all P with the new
scores and keeps P/2. Parents are picked uniformly at random (the paper's "randomly choose two
parents"): the survivors are already the selected half.

``reevaluate_survivors=False`` (classic NSGA-II, for Tune where one evaluation is a full trial).
``NSGA2(pop_size=P, n_offsprings=P)``: round 0 asks P random individuals, every later round asks P
offspring (pymoo's binary tournament: dominance, then crowding), and survival keeps the best P of parents and
offspring without evaluating parents again.

Objectives are ``(name, "min"|"max")`` pairs; values travel as dicts keyed by name. Internally all are
minimised (max objectives are negated). A NaN or infinite value (a diverged candidate) counts as worse
than every finite value of that objective in the same pool.

``state_dict()`` holds plain data only (arrays, lists, RNG states), never the ``repair`` callable, so
a searcher rebuilt with the same arguments and given ``load_state_dict`` asks exactly what the
uninterrupted searcher would have asked.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2, binary_tournament
from pymoo.core.population import Population
from pymoo.core.termination import NoTermination
from pymoo.operators.selection.rnd import RandomSelection
from pymoo.operators.selection.tournament import TournamentSelection
from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

from raynas.errors import CheckpointError, ConfigError
from raynas.results.pareto import hypervolume, objective_signs, pareto_ranks
from searchers.genotype_operators import (
    CallableRepair,
    EdgeSwapCrossover,
    GenotypeDuplicateElimination,
    GenotypeProblem,
    RandomGenotypeSampling,
    RepairFn,
    SingleEdgeMutation,
)

__all__ = ["DEFAULT_OBJECTIVES", "NSGA2Searcher"]

DEFAULT_OBJECTIVES: tuple[tuple[str, str], ...] = (("is", "max"), ("fid", "min"), ("params", "min"))
_STATE_VERSION = 1


# ---------------------------------------------------------------------------------------------- helpers
def _sanitize(F: np.ndarray) -> np.ndarray:
    """Replace non-finite entries (min convention) by a value worse than every finite one."""
    F = np.array(F, dtype=float, copy=True)
    for j in range(F.shape[1]):
        col = F[:, j]
        bad = ~np.isfinite(col)
        if bad.any():
            finite = col[~bad]
            if finite.size:
                span = float(finite.max() - finite.min())
                col[bad] = float(finite.max()) + max(span, 1.0)
            else:
                col[bad] = 0.0
    return F


def _int_rows(a: Any) -> list[list[int]]:
    return [[int(x) for x in row] for row in np.asarray(a)]


def _float_rows(a: Any) -> list[list[float]]:
    return [[float(x) for x in row] for row in np.asarray(a, dtype=float)]


def _plain(obj: Any) -> Any:
    """numpy scalars/containers -> Python builtins (for RNG state dicts)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class _RoundNSGA2(NSGA2):
    """NSGA2 whose first generation holds ``n_initial`` distinct individuals, cut to ``pop_size`` by
    survival (EAGAN: P random, keep P/2). With ``n_initial == pop_size`` it is plain NSGA-II."""

    def __init__(self, n_initial: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_initial = n_initial
        self.termination = NoTermination()

    def _initialize_infill(self) -> Population:
        pop = Population.empty()
        for _ in range(200):
            need = self.n_initial - len(pop)
            if need <= 0:
                break
            new = self.initialization.do(self.problem, need, algorithm=self, random_state=self.random_state)
            pop = Population.merge(pop, self.eliminate_duplicates.do(new, pop))
        if len(pop) < self.n_initial:
            raise ConfigError(f"could not sample {self.n_initial} distinct valid genotypes (found {len(pop)}); "
                              "the search space is too small for this population: lower pop_size")
        return pop[: self.n_initial]

    def _initialize_advance(self, infills: Population | None = None, **kwargs: Any) -> None:
        self.pop = self.survival.do(self.problem, infills, n_survive=self.pop_size, algorithm=self,
                                    random_state=self.random_state, **kwargs)


# ---------------------------------------------------------------------------------------------- searcher
class NSGA2Searcher:
    """Ask/tell NSGA-II over genotype vectors (see the module docstring for the round semantics)."""

    def __init__(self, n_choices: Sequence[int],
                 objectives: Sequence[tuple[str, str]] = DEFAULT_OBJECTIVES,
                 pop_size: int = 32, *, repair: RepairFn | None = None, crossover_prob: float = 0.3,
                 mutation_prob: float = 0.5, reevaluate_survivors: bool = True,
                 parent_selection: str | None = None, canonical: Callable | None = None,
                 seed: int = 0) -> None:
        self.n_choices = [int(c) for c in n_choices]
        if not self.n_choices or any(c < 1 for c in self.n_choices):
            raise ConfigError(f"n_choices must be a non-empty list of positive candidate counts, got {list(n_choices)}")
        self.objectives = [(str(n), str(d)) for n, d in objectives]
        names = [n for n, _ in self.objectives]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"objectives must be non-empty with distinct names, got {names}")
        self._sign = objective_signs([d for _, d in self.objectives])
        self.pop_size = int(pop_size)
        self.reevaluate_survivors = bool(reevaluate_survivors)
        if self.reevaluate_survivors and (self.pop_size < 4 or self.pop_size % 2):
            raise ConfigError(f"pop_size={pop_size}: EAGAN rounds keep P/2 survivors and breed P/2 children, "
                              "so pop_size must be even and at least 4")
        if self.pop_size < 2:
            raise ConfigError(f"pop_size={pop_size}: NSGA-II needs at least 2 individuals")
        for name, p in (("crossover_prob", crossover_prob), ("mutation_prob", mutation_prob)):
            if not 0.0 <= float(p) <= 1.0:
                raise ConfigError(f"{name}={p} is not a probability; use a value in [0, 1]")
        if crossover_prob == 0 and mutation_prob == 0:
            raise ConfigError("crossover_prob and mutation_prob are both 0: no offspring could ever differ "
                              "from its parents; raise at least one of them")
        self.crossover_prob = float(crossover_prob)
        self.mutation_prob = float(mutation_prob)
        if parent_selection is None:
            parent_selection = "random" if self.reevaluate_survivors else "tournament"
        if parent_selection not in ("random", "tournament"):
            raise ConfigError(f"parent_selection={parent_selection!r}; use 'random' or 'tournament'")
        self.parent_selection = parent_selection
        self.seed = int(seed)
        self.repair_fn = repair
        self.canonical = canonical

        self.round = 0
        self._py_rng = random.Random(self.seed)
        self._problem = GenotypeProblem(self.n_choices, len(self.objectives))
        self._algo = self._build_algorithm()
        self._asked: Population | None = None      # offspring handed out by pymoo, not yet told
        self._asked_vectors: list[list[int]] | None = None
        self._pool: dict[str, np.ndarray] | None = None  # what the last survival saw: X, F, told index

    @classmethod
    def for_space(cls, space: Any, **kwargs: Any) -> NSGA2Searcher:
        """Searcher over a ``raynas.spaces`` SearchSpace: its candidate counts, repair and canonical form."""
        kwargs.setdefault("repair", lambda v, rng: space.normalize(space.repair(v, rng)))
        kwargs.setdefault("canonical", space.canonical)
        return cls(space.n_choices(), **kwargs)

    # ------------------------------------------------------------------ construction
    def _config(self) -> dict[str, Any]:
        return {"n_choices": list(self.n_choices), "objectives": [list(o) for o in self.objectives],
                "pop_size": self.pop_size, "crossover_prob": self.crossover_prob,
                "mutation_prob": self.mutation_prob, "reevaluate_survivors": self.reevaluate_survivors,
                "parent_selection": self.parent_selection}

    def _build_algorithm(self) -> _RoundNSGA2:
        half = self.pop_size // 2 if self.reevaluate_survivors else self.pop_size
        selection = (RandomSelection() if self.parent_selection == "random"
                     else TournamentSelection(func_comp=binary_tournament))
        repair = CallableRepair(self.repair_fn, self._py_rng) if self.repair_fn is not None else None
        algo = _RoundNSGA2(
            n_initial=self.pop_size, pop_size=half, n_offsprings=half,
            sampling=RandomGenotypeSampling(), selection=selection,
            crossover=EdgeSwapCrossover(prob=self.crossover_prob),
            mutation=SingleEdgeMutation(prob=self.mutation_prob),
            survival=RankAndCrowding(), repair=repair,
            eliminate_duplicates=GenotypeDuplicateElimination(self.canonical), output=None, seed=self.seed,
        )
        algo.setup(self._problem, verbose=False)
        return algo

    @property
    def objective_names(self) -> list[str]:
        return [n for n, _ in self.objectives]

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> list[list[int]]:
        """The individuals to evaluate this round (calling it again before ``tell`` returns the same)."""
        if self._asked_vectors is None:
            off = self._algo.ask()
            n_want = self._algo.n_initial if not self._algo.is_initialized else self._algo.n_offsprings
            off = self._top_up(off, n_want)
            self._asked = off
            vectors = [[int(x) for x in row] for row in off.get("X")]
            if self.reevaluate_survivors and self._algo.is_initialized:
                vectors = self._survivor_vectors() + vectors
            self._asked_vectors = vectors
        return [list(v) for v in self._asked_vectors]

    def _top_up(self, off: Population | None, n_want: int) -> Population:
        """Random valid newcomers when mating cannot breed enough distinct children (tiny spaces)."""
        off = off if off is not None else Population.empty()
        algo = self._algo
        algo.termination.force_termination = False   # pymoo sets it when mating bred nobody
        existing = algo.pop if algo.is_initialized else Population.empty()
        for _ in range(200):
            need = n_want - len(off)
            if need <= 0:
                break
            new = algo.initialization.do(self._problem, need, algorithm=algo, random_state=algo.random_state)
            off = Population.merge(off, algo.eliminate_duplicates.do(new, existing, off))
        if len(off) < n_want:
            raise ConfigError(f"could only find {len(off)} new distinct valid genotypes for {n_want} slots; "
                              "the search space is too small for this population: lower pop_size")
        return off[:n_want]

    def _survivor_vectors(self) -> list[list[int]]:
        return [[int(x) for x in row] for row in self._algo.pop.get("X")]

    def tell(self, vectors: Sequence[Sequence[int]], results: Sequence[Mapping[str, float]]) -> None:
        """Objective values for every individual of the last ``ask()`` (any order)."""
        if self._asked_vectors is None or self._asked is None:
            raise RuntimeError("tell() without a pending ask(): call ask() first and evaluate what it returns")
        if len(vectors) != len(results):
            raise ValueError(f"tell() got {len(vectors)} vectors but {len(results)} results")
        index = {tuple(v): i for i, v in enumerate(self._asked_vectors)}
        F_asked = np.full((len(index), len(self.objectives)), np.nan)
        seen: set[int] = set()
        told_idx: list[int] = []
        for v, res in zip(vectors, results):
            key = tuple(int(x) for x in v)
            if key not in index:
                raise ValueError(f"tell() got {list(key)}, which was not asked this round")
            i = index[key]
            if i in seen:
                raise ValueError(f"tell() got {list(key)} twice")
            seen.add(i)
            told_idx.append(i)
            F_asked[i] = self._to_min(res)
        if len(seen) != len(index):
            missing = [self._asked_vectors[i] for i in range(len(index)) if i not in seen]
            raise ValueError(f"tell() is missing results for {len(missing)} asked individuals, e.g. {missing[0]}")

        algo = self._algo
        if self.reevaluate_survivors and algo.is_initialized:
            n_surv = len(algo.pop)
            pool_X = np.asarray(self._asked_vectors, dtype=int)
            pool_F = _sanitize(F_asked)
            algo.pop.set("F", pool_F[:n_surv])
            self._asked.set("F", pool_F[n_surv:])
            pool_told = np.asarray(told_idx)
        else:
            if algo.is_initialized:   # classic: the pool is the current population plus the offspring
                old_X, old_F = algo.pop.get("X"), algo.pop.get("F")
            else:
                old_X = np.zeros((0, len(self.n_choices)), dtype=int)
                old_F = np.zeros((0, len(self.objectives)))
            pool_X = np.vstack([old_X, np.asarray(self._asked_vectors, dtype=int)])
            pool_F = _sanitize(np.vstack([old_F, F_asked]))
            if len(old_F):
                algo.pop.set("F", pool_F[: len(old_F)])
            self._asked.set("F", pool_F[len(old_F):])
            pool_told = len(old_F) + np.asarray(told_idx)
        algo.tell(infills=self._asked)
        self._pool = {"X": pool_X, "F": pool_F, "told": pool_told}
        self._asked = None
        self._asked_vectors = None
        self.round += 1

    def _to_min(self, res: Mapping[str, float]) -> np.ndarray:
        missing = [n for n in self.objective_names if n not in res]
        if missing:
            raise ConfigError(f"result {dict(res)} lacks objective(s) {missing}; the evaluator reports "
                              f"{sorted(res)}: choose objectives among those")
        vals = np.array([float(res[n]) if res[n] is not None else np.nan for n in self.objective_names])
        return vals * self._sign

    def _to_natural(self, F: np.ndarray) -> list[dict[str, float]]:
        return [{n: float(x) for n, x in zip(self.objective_names, row * self._sign)} for row in F]

    # ------------------------------------------------------------------ inspection
    def ranks(self) -> list[int]:
        """Non-dominated rank of each individual of the last ``tell``, in the order it was told; ranks are
        taken in the pool the last survival saw (the whole round in EAGAN mode, parents + offspring in
        classic mode)."""
        if self._pool is None:
            return []
        r = pareto_ranks(self._pool["F"])
        return [int(r[i]) for i in self._pool["told"]]

    def last_front(self) -> list[tuple[list[int], dict[str, float]]]:
        """Rank-0 individuals of the last survival pool with their (natural-unit) objective values."""
        if self._pool is None:
            return []
        X, F = self._pool["X"], self._pool["F"]
        front = np.flatnonzero(pareto_ranks(F) == 0)
        nat = self._to_natural(F[front])
        return [([int(x) for x in X[i]], nat[j]) for j, i in enumerate(front)]

    def survivors(self) -> list[tuple[list[int], dict[str, float]]]:
        """The population kept by the last survival (P/2 in EAGAN mode, P in classic mode)."""
        if not self._algo.is_initialized:
            return []
        X, F = self._algo.pop.get("X"), self._algo.pop.get("F")
        return list(zip([[int(x) for x in row] for row in X], self._to_natural(F)))

    def hypervolume(self, ref: Mapping[str, float] | Sequence[float]) -> float:
        """Hypervolume of ``last_front()`` w.r.t. ``ref`` (natural units, dict by name or in order)."""
        front = self.last_front()
        if isinstance(ref, Mapping):
            ref = [float(ref[n]) for n in self.objective_names]
        pts = [[d[n] for n in self.objective_names] for _, d in front]
        return hypervolume(np.array(pts, dtype=float).reshape(-1, len(self.objectives)), ref,
                           [d for _, d in self.objectives])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain data only (dicts, lists, ints, floats, str: no arrays, no callables), so it survives
        pickle, ``torch.load(weights_only=True)`` and JSON: config, round, both RNG states, the
        population with its scores, and a pending (asked, not yet told) round."""
        algo = self._algo
        pop = None
        if algo.is_initialized:
            pop = {"X": _int_rows(algo.pop.get("X")), "F": _float_rows(algo.pop.get("F")),
                   "rank": [int(r) for r in algo.pop.get("rank")],
                   "crowding": [float(c) for c in algo.pop.get("crowding")]}
        pending = None
        if self._asked_vectors is not None and self._asked is not None:
            pending = {"X": _int_rows(self._asked.get("X")), "vectors": [list(v) for v in self._asked_vectors]}
        version, internal, gauss = self._py_rng.getstate()
        return {
            "version": _STATE_VERSION,
            "config": self._config(),
            "seed": self.seed,
            "round": self.round,
            "np_rng": _plain(algo.random_state.bit_generator.state),
            "py_rng": [version, list(internal), gauss],
            "initialized": bool(algo.is_initialized),
            "n_iter": int(algo.n_iter) if algo.n_iter is not None else None,
            "pop": pop,
            "pending": pending,
            "pool": None if self._pool is None else {
                "X": _int_rows(self._pool["X"]), "F": _float_rows(self._pool["F"]),
                "told": [int(i) for i in self._pool["told"]]},
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Resume from ``state_dict()``; the searcher must be built with the same arguments."""
        if not isinstance(d, Mapping) or d.get("version") != _STATE_VERSION:
            raise CheckpointError("not an NSGA2Searcher state (or from an incompatible version); "
                                  "resume from a state written by NSGA2Searcher.state_dict()")
        mine, theirs = self._config(), d["config"]
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        if diff:
            detail = ", ".join(f"{k}: saved {theirs.get(k)!r} vs now {mine[k]!r}" for k in diff)
            raise CheckpointError(f"searcher state does not match this searcher ({detail}); "
                                  "resume with the settings the run was started with")
        self.seed = int(d["seed"])
        version, internal, gauss = d["py_rng"]
        self._py_rng.setstate((version, tuple(internal), gauss))
        algo = self._build_algorithm()       # shares self._py_rng through its repair operator
        algo.random_state.bit_generator.state = copy.deepcopy(dict(d["np_rng"]))
        algo._initialize()
        if d["initialized"]:
            p = d["pop"]
            pop = Population.new("X", np.asarray(p["X"], dtype=int))
            pop.set("F", np.asarray(p["F"], dtype=float))
            pop.set("rank", np.asarray(p["rank"], dtype=int))
            pop.set("crowding", np.asarray(p["crowding"], dtype=float))
            algo.pop = pop
            algo.is_initialized = True
            algo.n_iter = d["n_iter"]
            algo._set_optimum()
        self._algo = algo
        self.round = int(d["round"])
        if d["pending"] is not None:
            self._asked = Population.new("X", np.asarray(d["pending"]["X"], dtype=int))
            self._asked_vectors = [[int(x) for x in v] for v in d["pending"]["vectors"]]
        else:
            self._asked, self._asked_vectors = None, None
        self._pool = None if d["pool"] is None else {
            "X": np.asarray(d["pool"]["X"], dtype=int).reshape(-1, len(self.n_choices)),
            "F": np.asarray(d["pool"]["F"], dtype=float).reshape(-1, len(self.objectives)),
            "told": np.asarray(d["pool"]["told"], dtype=int)}
