"""NSGA2Searcher (pymoo NSGA-II + EAGAN operators) and its Tune adapter, without starting Ray."""

from __future__ import annotations

import itertools
import json
import math
import pickle
import random
import re

import numpy as np
import pytest

from raynas.errors import CheckpointError, ConfigError, GenotypeError
from raynas.results.pareto import hypervolume, pareto_ranks
from raynas.spaces.genotype import Cell, EdgeGroup, Genotype, SearchSpace
from searchers.genotype_operators import EdgeSwapCrossover, GenotypeProblem, SingleEdgeMutation
from searchers.nsga2 import NSGA2Searcher


# ------------------------------------------------------------------------------------------ test problem
class ToySpace(SearchSpace):
    """5 edges with 3/4/3/4/3 candidates; edges e0 and e1 may not both be 'none' (index 0)."""

    name = "toy-nsga2"
    layout = ((EdgeGroup("e0", 1, ("none", "a", "b")), EdgeGroup("e1", 1, ("none", "c", "d", "e")),
               EdgeGroup("e2", 1, ("none", "f", "g")), EdgeGroup("e3", 1, ("none", "h", "i", "j")),
               EdgeGroup("e4", 1, ("none", "k", "l"))),)

    def check_cell(self, index: int, cell: Cell) -> None:
        if cell["e0"][0] == "none" and cell["e1"][0] == "none":
            raise GenotypeError(f"cell {index}: e0 and e1 are both 'none'")

    def violating_edges(self, vector):
        return [0, 1] if vector[0] == 0 and vector[1] == 0 else []


SPACE = ToySpace()
N_CHOICES = SPACE.n_choices()
_rs = np.random.default_rng(2)
QUALITY = [np.r_[0.0, _rs.random(c - 1)] for c in N_CHOICES]        # 'none' adds nothing
COST = [np.r_[0, _rs.integers(1, 4, c - 1)] for c in N_CHOICES]     # and costs nothing


def toy_eval(v) -> dict[str, float]:
    """IS grows with quality, params with cost (conflicting); FID falls with quality, rises with cost."""
    q = float(sum(QUALITY[k][x] for k, x in enumerate(v)))
    p = float(sum(COST[k][x] for k, x in enumerate(v)))
    return {"is": q, "fid": 100.0 / (1.0 + q) + 0.1 * p, "params": p}


def min_F(vectors) -> np.ndarray:
    return np.array([[-r["is"], r["fid"], r["params"]] for r in map(toy_eval, vectors)])


ALL = [list(v) for v in itertools.product(*[range(c) for c in N_CHOICES])]
VALID = [v for v in ALL if SPACE.is_valid(v)]
TRUE_FRONT = {tuple(v) for v, r in zip(VALID, pareto_ranks(min_F(VALID))) if r == 0}


# ------------------------------------------------------------------------------------------ references
def brute_ranks(F: np.ndarray) -> np.ndarray:
    """Peel non-dominated layers by checking every pair."""
    n = len(F)
    rank = np.full(n, -1)
    left, r = set(range(n)), 0
    while left:
        layer = {i for i in left
                 if not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in left if j != i)}
        for i in layer:
            rank[i] = r
        left -= layer
        r += 1
    return rank


def brute_crowding(F: np.ndarray) -> np.ndarray:
    """Deb's crowding distance: boundary points infinite, else normalised neighbour gaps summed."""
    n, m = F.shape
    d = np.zeros(n)
    for k in range(m):
        order = np.argsort(F[:, k], kind="stable")
        span = F[order[-1], k] - F[order[0], k]
        d[order[0]] = d[order[-1]] = np.inf
        for a in range(1, n - 1):
            if span > 0:
                d[order[a]] += (F[order[a + 1], k] - F[order[a - 1], k]) / span
    return d


def assert_rank_then_crowding(F: np.ndarray, kept: np.ndarray, n: int) -> None:
    """``kept`` selects n rows: whole fronts in rank order, the split front cut by largest crowding."""
    rank = brute_ranks(F)
    assert kept.sum() == n
    split = rank[kept].max()
    assert kept[rank < split].all() and not kept[rank > split].any()
    front = np.flatnonzero(rank == split)
    if not kept[front].all():
        cd = brute_crowding(F[front])
        assert cd[kept[front]].min() >= cd[~kept[front]].max()


def run(searcher: NSGA2Searcher, rounds: int, evaluate=toy_eval) -> list[list[list[int]]]:
    asks = []
    for _ in range(rounds):
        vs = searcher.ask()
        asks.append(vs)
        searcher.tell(vs, [evaluate(v) for v in vs])
    return asks


# ------------------------------------------------------------------------------------------ helpers
def test_pareto_ranks_match_brute_force():
    rs = np.random.default_rng(0)
    for n_obj in (2, 3):
        F = rs.integers(0, 6, size=(40, n_obj)).astype(float)   # small ints: many ties and duplicates
        assert np.array_equal(pareto_ranks(F), brute_ranks(F))
    assert pareto_ranks(np.zeros((0, 2))).shape == (0,)
    with pytest.raises(ValueError, match="^pareto_ranks got NaN objective values; replace them by a worst value "
                                         "first$"):
        pareto_ranks(np.array([[np.nan, 1.0]]))


def test_hypervolume_by_hand():
    pts = [[1, 3], [2, 2], [3, 1], [5, 0]]       # the last one does not beat the reference on x
    assert hypervolume(pts, [4, 4], ["min", "min"]) == pytest.approx(6.0)   # staircase 1 + 2 + 3
    # maximising the first objective: negate it in the data and the reference, same volume
    assert hypervolume([[-1, 3], [-2, 2], [-3, 1]], [-4, 4], ["max", "min"]) == pytest.approx(6.0)
    assert hypervolume([[9, 9]], [4, 4], ["min", "min"]) == 0.0
    assert hypervolume([[1, 1, 1]], [2, 3, 4], ["min", "min", "min"]) == pytest.approx(6.0)


# ------------------------------------------------------------------------------------------ operators
def test_crossover_swaps_exactly_one_differing_edge():
    problem = GenotypeProblem(N_CHOICES, 2)
    rng = np.random.default_rng(0)
    X = np.stack([np.array([rng.integers(0, c, size=300) for c in N_CHOICES]).T for _ in range(2)])
    Y = EdgeSwapCrossover(prob=1.0)._do(problem, X, random_state=rng)
    for k in range(X.shape[1]):
        a, b, ca, cb = X[0, k], X[1, k], Y[0, k], Y[1, k]
        changed = np.flatnonzero(ca != a)
        if np.array_equal(a, b):
            assert np.array_equal(ca, a) and np.array_equal(cb, b)
            continue
        assert len(changed) == 1
        e = changed[0]
        assert ca[e] == b[e] and cb[e] == a[e]
        assert np.array_equal(np.flatnonzero(cb != b), changed)


def test_crossover_and_mutation_fire_with_their_probabilities():
    problem = GenotypeProblem(N_CHOICES, 2)
    from pymoo.core.population import Population

    rng = np.random.default_rng(1)
    n = 4000
    parents = Population.new("X", np.array([rng.integers(0, c, size=2 * n) for c in N_CHOICES]).T)
    pairs = np.arange(2 * n).reshape(n, 2)
    off = EdgeSwapCrossover(prob=0.3).do(problem, parents, pairs, random_state=rng)
    X, Xo = parents.get("X"), off.get("X").reshape(2, n, -1)   # pymoo stacks offspring by parent slot
    crossed = np.mean([not np.array_equal(Xo[0, k], X[pairs[k, 0]]) for k in range(n)
                       if not np.array_equal(X[pairs[k, 0]], X[pairs[k, 1]])])
    assert 0.27 < crossed < 0.33
    pop = Population.new("X", X.copy())
    mutated = SingleEdgeMutation(prob=0.5).do(problem, pop, inplace=False, random_state=rng).get("X")
    assert 0.47 < np.mean(np.any(mutated != X, axis=1)) < 0.53


def test_mutation_changes_exactly_one_edge_to_another_choice():
    n_choices = [3, 1, 4, 2, 1]                    # single-choice edges can never mutate
    problem = GenotypeProblem(n_choices, 2)
    rng = np.random.default_rng(0)
    X = np.array([rng.integers(0, c, size=500) for c in n_choices]).T
    Y = SingleEdgeMutation(prob=1.0)._do(problem, X, random_state=rng)
    diff = Y != X
    assert np.all(diff.sum(axis=1) == 1)
    assert not diff[:, [1, 4]].any()
    upper = np.array(n_choices)
    assert (Y >= 0).all() and (upper - Y > 0).all()
    # every other choice of an edge is reachable
    moved = diff[:, 2] & (X[:, 2] == 0)
    assert set(Y[moved, 2].tolist()) == {1, 2, 3}


# ------------------------------------------------------------------------------------------ rounds
def test_eagan_rounds_keep_survivors_and_breed_half_by_the_operators():
    P = 12
    s = NSGA2Searcher.for_space(SPACE, pop_size=P, seed=3)
    assert s.round == 0 and s.survivors() == []
    for r in range(8):
        survivors = [v for v, _ in s.survivors()]
        vs = s.ask()
        assert s.ask() == vs                                   # idempotent until tell
        assert len(vs) == P and len({tuple(v) for v in vs}) == P
        assert all(SPACE.is_valid(v) for v in vs)
        if r > 0:
            assert len(survivors) == P // 2 and vs[: P // 2] == survivors
            for child in vs[P // 2:]:
                # one crossover swap plus one mutation move a child at most 2 edges from a parent
                assert min(sum(a != b for a, b in zip(child, p)) for p in survivors) in (1, 2)
        s.tell(vs[::-1], [toy_eval(v) for v in vs[::-1]])     # any order is accepted
        assert s.round == r + 1
        assert len(s.ranks()) == P


def test_eagan_survivors_are_rescored_every_round():
    """Stale scores must not protect a survivor: its fresh (worse) values decide whether it stays."""
    s = NSGA2Searcher([4, 4, 4, 4], objectives=[("is", "max"), ("fid", "min")], pop_size=8, seed=2)
    vs = s.ask()
    s.tell(vs, [{"is": 10.0 + i, "fid": 10.0 - i} for i in range(8)])   # all good, all rank 0
    vs = s.ask()
    old, new = vs[:4], vs[4:]
    # this round the weights moved: the old survivors now score far worse than the newcomers
    results = [{"is": float(i), "fid": 100.0 - i} for i in range(4)] + \
              [{"is": 50.0 + i, "fid": 5.0 + i} for i in range(4)]
    s.tell(vs, results)
    assert s.ranks() == [4, 3, 2, 1, 0, 0, 0, 0]
    assert sorted(v for v, _ in s.survivors()) == sorted(new)
    assert not {tuple(v) for v in old} & {tuple(v) for v in s.ask()[:4]}
    assert dict(zip(map(tuple, vs), results))[tuple(s.survivors()[0][0])] == s.survivors()[0][1]


def test_classic_rounds_ask_offspring_only():
    P = 10
    s = NSGA2Searcher.for_space(SPACE, pop_size=P, seed=4, reevaluate_survivors=False)
    for _ in range(6):
        before = {tuple(v) for v, _ in s.survivors()}
        vs = s.ask()
        assert len(vs) == P and len({tuple(v) for v in vs}) == P
        assert all(SPACE.is_valid(v) for v in vs)
        assert not before & {tuple(v) for v in vs}             # offspring are new individuals
        s.tell(vs, [toy_eval(v) for v in vs])
        assert len(s.survivors()) == P
        # survivors are the best P of parents + offspring (not re-evaluated: same deterministic values)
        pool = list(before) + [tuple(v) for v in vs]
        kept = {tuple(v) for v, _ in s.survivors()}
        assert_rank_then_crowding(min_F(pool), np.array([p in kept for p in pool]), P)


def test_survivors_are_best_half_by_rank_then_crowding_hand_built():
    s = NSGA2Searcher([4, 4, 4], objectives=[("is", "max"), ("params", "min")], pop_size=8, seed=0)
    vs = s.ask()
    # (min-convention f1 = -IS, f2 = params): rank 0 = {(0,0)}, rank 1 = five trade-offs, rank 2 = two
    F = np.array([[0, 0], [1, 9], [2, 6], [4, 5], [5, 3], [9, 1], [10, 8], [8, 10]], dtype=float)
    results = [{"is": -f1, "params": f2} for f1, f2 in F]
    s.tell(vs, results)
    assert s.ranks() == [0, 1, 1, 1, 1, 1, 2, 2] == brute_ranks(F).tolist()
    # rank-1 crowding by hand: ends infinite; (2,6): 3/8+4/8, (4,5): 3/8+3/8, (5,3): 5/8+4/8 -> keep (5,3)
    cd = brute_crowding(F[1:6])
    assert np.isinf(cd[[0, 4]]).all() and cd[1:4] == pytest.approx([7 / 8, 6 / 8, 9 / 8])
    expected = {tuple(vs[i]) for i in (0, 1, 5, 4)}
    assert {tuple(v) for v, _ in s.survivors()} == expected
    assert {tuple(v) for v in s.ask()[:4]} == expected
    assert [v for v, _ in s.last_front()] == [vs[0]]
    assert s.last_front()[0][1] == {"is": 0.0, "params": 0.0}


def test_survival_obeys_rank_then_crowding_on_random_rounds():
    s = NSGA2Searcher([5, 5, 5, 5], pop_size=16, seed=7)
    rs = np.random.default_rng(0)
    for _ in range(5):
        vs = s.ask()
        F = rs.random((16, 3))
        s.tell(vs, [{"is": -a, "fid": b, "params": c} for a, b, c in F])
        kept = np.array([tuple(v) in {tuple(u) for u, _ in s.survivors()} for v in vs])
        assert s.ranks() == brute_ranks(F).tolist()
        assert_rank_then_crowding(F, kept, 8)


@pytest.mark.parametrize("reevaluate,P,rounds", [(True, 24, 40), (False, 16, 40)])
def test_finds_the_true_pareto_front(reevaluate, P, rounds):
    # the constraint bites: unrepaired vectors would sit on the front of the unconstrained problem
    unconstrained = [tuple(v) for v, r in zip(ALL, pareto_ranks(min_F(ALL))) if r == 0]
    assert any(not SPACE.is_valid(v) for v in unconstrained)
    assert 5 <= len(TRUE_FRONT) <= 12
    s = NSGA2Searcher.for_space(SPACE, pop_size=P, seed=0, reevaluate_survivors=reevaluate)
    asks = run(s, rounds)
    assert all(SPACE.is_valid(v) for vs in asks for v in vs)
    front = {tuple(v) for v, _ in s.last_front()}
    assert front == TRUE_FRONT
    for v, res in s.last_front():
        assert res == pytest.approx(toy_eval(v))
    ref = {"is": 0.0, "fid": 120.0, "params": 20.0}
    best = hypervolume(min_F(list(TRUE_FRONT)) * [-1, 1, 1], [ref[k] for k in ("is", "fid", "params")],
                       ["max", "min", "min"])
    assert s.hypervolume(ref) == pytest.approx(best)


def test_same_seed_same_asks_and_different_seed_differs():
    a = run(NSGA2Searcher.for_space(SPACE, pop_size=8, seed=5), 6)
    b = run(NSGA2Searcher.for_space(SPACE, pop_size=8, seed=5), 6)
    c = run(NSGA2Searcher.for_space(SPACE, pop_size=8, seed=6), 6)
    assert a == b and a != c


@pytest.mark.parametrize("reevaluate,selection", [(True, None), (True, "tournament"), (False, None)])
def test_state_dict_resume_reproduces_the_uninterrupted_run(reevaluate, selection):
    def make():
        return NSGA2Searcher.for_space(SPACE, pop_size=8, seed=11, reevaluate_survivors=reevaluate,
                                       parent_selection=selection)

    full = make()
    reference = run(full, 10)

    s = make()
    first = run(s, 4)
    state = json.loads(json.dumps(s.state_dict()))       # plain data: survives JSON (and pickle)
    resumed = make()
    resumed.load_state_dict(state)
    assert resumed.round == 4
    assert first + run(resumed, 6) == reference
    assert resumed.ranks() == full.ranks() and resumed.last_front() == full.last_front()

    # interrupted between ask and tell: the pending ask comes back unchanged
    s = make()
    run(s, 3)
    pending = s.ask()
    state = pickle.loads(pickle.dumps(s.state_dict()))
    resumed = make()
    resumed.load_state_dict(state)
    assert resumed.ask() == pending == reference[3]
    resumed.tell(pending, [toy_eval(v) for v in pending])
    assert run(resumed, 6) == reference[4:]


def test_nan_results_rank_last_and_never_make_the_front():
    s = NSGA2Searcher([4, 4, 4], objectives=[("is", "max"), ("params", "min")], pop_size=8, seed=1)
    vs = s.ask()
    results = [{"is": float(i), "params": float(i)} for i in range(8)]   # a chain of trade-offs: all rank 0
    results[3] = {"is": math.nan, "params": math.inf}
    s.tell(vs, results)
    r = s.ranks()
    assert r[3] == max(r) >= 1 and all(x == 0 for i, x in enumerate(r) if i != 3)
    assert vs[3] not in [v for v, _ in s.last_front()]


def test_bad_use_raises_clear_errors():
    with pytest.raises(ConfigError, match="even"):
        NSGA2Searcher([3, 3], pop_size=7)
    with pytest.raises(ConfigError, match="'min' or 'max'"):
        NSGA2Searcher([3, 3], objectives=[("is", "up")], pop_size=4)
    with pytest.raises(ConfigError, match="distinct"):
        NSGA2Searcher([3, 3], objectives=[("is", "max"), ("is", "min")], pop_size=4)
    with pytest.raises(ConfigError, match="probability"):
        NSGA2Searcher([3, 3], pop_size=4, crossover_prob=1.5)
    with pytest.raises(ConfigError, match="too small"):
        NSGA2Searcher([2, 2], pop_size=6).ask()               # only 4 genotypes exist

    s = NSGA2Searcher([3, 3, 3], objectives=[("is", "max")], pop_size=4)
    with pytest.raises(RuntimeError, match="ask"):
        s.tell([[0, 0, 0]], [{"is": 1.0}])
    vs = s.ask()
    with pytest.raises(ValueError, match="not asked"):
        s.tell([[9, 9, 9]] + vs[1:], [{"is": 1.0}] * 4)
    with pytest.raises(ValueError, match="missing"):
        s.tell(vs[:3], [{"is": 1.0}] * 3)
    with pytest.raises(ConfigError, match="lacks objective"):
        s.tell(vs, [{"fid": 1.0}] * 4)

    other = NSGA2Searcher([3, 3, 3], objectives=[("is", "max")], pop_size=6)
    with pytest.raises(CheckpointError, match="pop_size"):
        other.load_state_dict(s.state_dict())
    with pytest.raises(CheckpointError, match="^not an NSGA2Searcher state"):
        other.load_state_dict({"foo": 1})

    broken = NSGA2Searcher([3, 3, 3], pop_size=4, repair=lambda v, rng: v[:2])
    with pytest.raises(GenotypeError, match="repair returned"):
        broken.ask()


# ------------------------------------------------------------------------------------------ Tune adapter
def _tune_searcher(**kw):
    from searchers.tune_adapter import NSGA2TuneSearcher

    kw.setdefault("metric", ["is", "params"])
    kw.setdefault("mode", ["max", "min"])
    kw.setdefault("pop_size", 6)
    return NSGA2TuneSearcher(SPACE, max_generations=3, seed=2, **kw)


def _vector(config) -> list[int]:
    return SPACE.encode(Genotype.from_json(config["genotype"]))


def _drive(searcher, start: int = 0, stop_after: int | None = None, order_seed: int = 0):
    """Play Tune: ask until the searcher waits, finish the running trials in shuffled order, repeat.
    Returns the configs handed out, in order, and whether FINISHED was seen."""
    from ray.tune.search import Searcher

    rng = random.Random(order_seed)
    handed, running, t = [], {}, start
    while True:
        while True:
            cfg = searcher.suggest(f"t{t}")
            if cfg == Searcher.FINISHED:
                return handed, running, True
            if cfg is None:
                break
            handed.append(cfg)
            running[f"t{t}"] = cfg
            t += 1
            if stop_after is not None and len(handed) >= stop_after:
                return handed, running, False
        assert running, "searcher waits although no trial is running"
        ids = list(running)
        rng.shuffle(ids)
        for tid in ids:
            cfg = running.pop(tid)
            searcher.on_trial_complete(tid, result=toy_eval(_vector(cfg)) | {"loss": 1.0})


def test_tune_adapter_runs_generations_synchronously_until_finished():
    s = _tune_searcher()
    assert s.suggest("x0") != s.suggest("x1")          # fresh ids get different genotypes
    s = _tune_searcher()
    configs = [s.suggest(f"t{i}") for i in range(6)]
    assert s.suggest("t6") is None                       # generation 0 is out, none finished yet
    vectors = [_vector(c) for c in configs]
    assert len({tuple(v) for v in vectors}) == 6 and all(SPACE.is_valid(v) for v in vectors)
    for i in range(5):
        s.on_trial_complete(f"t{i}", result=toy_eval(vectors[i]))
        assert s.suggest(f"w{i}") is None
    s.on_trial_complete("t5", error=True)              # errored trial: ranked worst, generation completes
    assert s.nsga.round == 1 and s.nsga.ranks()[5] == max(s.nsga.ranks())
    handed, _, finished = _drive(s, start=100)
    assert finished and len(handed) == 12 and s.nsga.round == 3
    assert s.suggest("late") == "FINISHED"


def test_tune_adapter_save_restore_mid_generation(tmp_path):
    reference, _, finished = _drive(_tune_searcher())
    assert finished and len(reference) == 18

    s = _tune_searcher()
    first, running, _ = _drive(s, stop_after=8)          # generation 1 partly handed out
    path = tmp_path / "searcher.pkl"
    s.save(str(path))
    restored = _tune_searcher()
    restored.restore(str(path))
    assert restored.nsga.round == 1
    for tid in sorted(running):                          # trials running at save time report later
        restored.on_trial_complete(tid, result=toy_eval(_vector(running[tid])))
    rest, _, finished = _drive(restored, start=8)
    assert finished and first + rest == reference

    missing = tmp_path / "missing.pkl"
    with pytest.raises(CheckpointError, match=re.escape(f"searcher checkpoint {missing} does not exist")):
        restored.restore(str(tmp_path / "missing.pkl"))


def test_tune_adapter_search_properties_and_bad_results():
    from ray import tune

    s = _tune_searcher(metric=None, mode=None)
    with pytest.raises(ConfigError, match="metric"):
        s.suggest("t0")
    assert s.set_search_properties(None, None, {"lr": 1e-3}) is True
    assert s.set_search_properties(["is", "params"], ["max", "min"], {"lr": 1e-3}) is True
    assert s.nsga.objectives == [("is", "max"), ("params", "min")]
    assert s.set_search_properties(["fid"], ["min"], {}) is False          # contradicts ours
    assert s.set_search_properties(None, None, {"lr": tune.uniform(0, 1)}) is False
    cfg = s.suggest("t0")
    with pytest.raises(ConfigError, match="lacks metric"):
        s.on_trial_complete("t0", result={"loss": 0.1})
    assert _vector(cfg) == s.nsga.ask()[0]
    with pytest.raises(ConfigError, match="same length"):
        _tune_searcher(metric=["is", "params"], mode=["max"])
    with pytest.raises(ConfigError, match="'min' and 'max'"):
        _tune_searcher(metric=["is"], mode=["obs"])


@pytest.mark.slow
def test_tune_adapter_under_a_real_tuner_matches_the_driven_reference(ray_session, tmp_path):
    """Classic mode end to end: Tune calls suggest/on_trial_complete itself, trials run in workers."""
    import sys

    import ray
    from ray import tune

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this module
    # four per generation (six elsewhere): every real trial costs Tune seconds on two busy cores
    reference, _, finished = _drive(_tune_searcher(pop_size=4))
    assert finished and len(reference) == 12
    edges = SPACE.edges()

    def trainable(config):
        cells = json.loads(config["genotype"])["cells"]
        return toy_eval([cands.index(cells[ci][grp][j]) for ci, grp, j, cands in edges])

    searcher = _tune_searcher(pop_size=4)
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="classic", verbose=0))
    results = tuner.fit()
    assert not results.errors
    assert searcher.nsga.round == 3 and len(results) == 12
    assert sorted(r.config["genotype"] for r in results) == sorted(c["genotype"] for c in reference)
    assert all(r.metrics["is"] == pytest.approx(toy_eval(_vector(r.config))["is"]) for r in results)


def _operator_probs(searcher: NSGA2Searcher) -> tuple[float, float]:
    """(crossover, mutation) probabilities of the pymoo operators that breed the searcher's offspring."""
    from pymoo.core.variable import get

    mating = searcher._algo.mating
    return get(mating.crossover.prob), get(mating.mutation.prob)


def test_every_searcher_a_search_builds_breeds_with_the_configured_probabilities():
    """The EAGAN driver's searcher (fresh, and rebuilt by a resume or a host restart) and the Tune adapter's hand
    pymoo the crossover and mutation probabilities in that order: distinct values, so a swap anywhere shows."""
    from raynas.config import load_config
    from trainables.eagan.driver import make_searcher

    cfg = load_config("quickstart", ["eagan.crossover_prob=0.2", "eagan.mutation_prob=0.7"], method="eagan")
    for stage in ("g", "d"):
        fresh = make_searcher(cfg, stage)
        assert _operator_probs(fresh) == (0.2, 0.7), stage
        fresh.ask()
        resumed = make_searcher(cfg, stage)
        resumed.load_state_dict(fresh.state_dict())
        assert _operator_probs(resumed) == (0.2, 0.7), stage
        assert (fresh.state_dict()["config"]["crossover_prob"], fresh.state_dict()["config"]["mutation_prob"]) \
            == (0.2, 0.7)
    tune = _tune_searcher(crossover_prob=0.2, mutation_prob=0.7)
    assert _operator_probs(tune.nsga) == (0.2, 0.7)
    tune.suggest("t0")
    assert _operator_probs(tune.nsga) == (0.2, 0.7)
