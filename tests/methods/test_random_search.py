"""The random baseline's sampling: uniform over each space as the space defines it, reproducible per seed, every
sample valid; the ask/tell searcher; both modes of the random method in-process."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest

from raynas.spaces import EdgeGroup, SearchSpace, get_space
from searchers.random_search import (
    RandomSearcher,
    darts_cell_count,
    sample_darts_cell,
    sample_genotype,
    uniform_vector,
)


def chi_square_p(observed: list[int]) -> float:
    """Upper tail of Pearson's chi-square of ``observed`` (every category, zeros included) against the uniform
    distribution (Wilson-Hilferty's normal approximation of the chi-square tail)."""
    draws, cells = sum(observed), len(observed)
    expected = draws / cells
    stat = sum((c - expected) ** 2 / expected for c in observed)
    df = cells - 1
    z = ((stat / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))


def test_darts_cell_sampler_is_uniform_over_the_cells_darts_derives():
    # steps=2 with two ops: node 0 picks both of its 2 inputs (1 way) and 2x2 ops; node 1 picks 2 of 3 inputs
    # (3 ways) and 2x2 ops: 4 * 12 = 48 cells, each drawn with probability 1/48
    ops = ("sep_conv_3x3", "skip_connect")
    assert darts_cell_count(2, 2) == 48
    assert darts_cell_count(4, 7) == math.prod(math.comb(i + 2, 2) * 49 for i in range(4))
    rng = random.Random(1)
    draws = 48 * 200
    counts = Counter(sample_darts_cell(rng, steps=2, multiplier=2, ops=ops) for _ in range(draws))
    assert len(counts) == 48  # every cell occurs, and nothing else
    for cell in counts:
        cell.validate()
        assert cell.concat == (2, 3)
        for node in range(cell.steps):  # two distinct inputs per node, canonical order, never `none`
            (_, a), (_, b) = cell.node_inputs(node)
            assert a < b
    assert chi_square_p(list(counts.values())) > 1e-3


class _Overlapping(SearchSpace):
    """Three edges, none|conv each; e0,e1 not both none and e1,e2 not both none (constraints that overlap):
    5 valid vectors."""

    name = "tiny-overlap"
    layout = ((EdgeGroup("e", 3, ("none", "conv")),),)

    def check_cell(self, index, cell):
        from raynas.errors import GenotypeError

        ops = cell["e"]
        if (ops[0] == ops[1] == "none") or (ops[1] == ops[2] == "none"):
            raise GenotypeError("two neighbours are none")


def test_uniform_vector_is_uniform_even_when_constraints_overlap():
    space = _Overlapping()
    valid = [v for v in itertools.product(range(2), repeat=3) if space.is_valid(list(v))]
    assert len(valid) == 5
    rng = random.Random(0)
    counts = Counter(tuple(uniform_vector(space, rng)) for _ in range(5000))
    assert set(counts) == set(valid)
    assert chi_square_p(list(counts.values())) > 1e-3


@pytest.mark.parametrize("space", ["darts", "swd-nas", "eagan-g", "eagan-d", "damgan-g"])
def test_samples_validate_and_are_reproducible_per_seed(space):
    def draw(seed: int) -> list:
        rng = random.Random(seed)
        return [sample_genotype(space, rng) for _ in range(20)]

    first = draw(7)
    assert [g.to_json() for g in draw(7)] == [g.to_json() for g in first]
    assert [g.to_json() for g in draw(8)] != [g.to_json() for g in first]
    for g in first:
        if space in ("darts", "swd-nas"):
            g.validate()
        else:
            get_space(space).validate(g)


def test_cell_group_space_marginals_are_uniform_over_valid_genotypes():
    # eagan-d: normal[0] is never none (6 choices, uniform), the down edges are unconstrained (6 each)
    space = get_space("eagan-d")
    rng = random.Random(3)
    vectors = [uniform_vector(space, rng) for _ in range(3000)]
    names = space.edge_names()
    first = names.index("cell0.normal[0]")
    counts = Counter(space.edges()[first][3][v[first]] for v in vectors)
    assert "none" not in counts and len(counts) == 6
    assert chi_square_p(list(counts.values())) > 1e-3


def test_random_searcher_asks_uniform_fresh_vectors_and_resumes_exactly(tmp_path):
    space = get_space("eagan-g")
    s = RandomSearcher.for_space(space, objectives=[("is", "max"), ("fid", "min")], pop_size=4, seed=5,
                                 crossover_prob=0.9)
    batch = s.ask()
    assert len(batch) == 4 and all(space.is_valid(v) for v in batch)
    assert len({tuple(space.canonical(v)) for v in batch}) == 4
    s.tell(batch, [{"is": 2.0, "fid": 50.0}, {"is": 3.0, "fid": 40.0}, {"is": 1.0, "fid": 60.0},
                   {"is": 3.0, "fid": 60.0}])
    assert s.ranks() == [1, 0, 2, 1]
    assert [v for v, _ in s.last_front()] == [batch[1]]
    s.tell(batch, [{"is": float("nan"), "fid": 50.0}, {"is": 3.0, "fid": 40.0}, {"is": 1.0, "fid": 60.0},
                   {"is": 3.0, "fid": 60.0}])
    assert s.ranks()[0] > 0  # a NaN score counts as the worst value
    s.ask()
    from raynas.checkpoints import load_checkpoint, save_checkpoint

    save_checkpoint(tmp_path / "state.pt", {"searcher": s.state_dict()})  # as EAGAN's search state keeps it
    state = load_checkpoint(tmp_path / "state.pt")["searcher"]
    resumed = RandomSearcher.for_space(space, objectives=[("is", "max"), ("fid", "min")], pop_size=4, seed=99)
    resumed.load_state_dict(state)
    assert resumed.ask() == s.ask()
    assert RandomSearcher(space, [("is", "max")], 4, seed=5).ask() == batch  # reproducible per seed


@pytest.mark.parametrize("mode", ["weight-sharing", "scratch"])
def test_random_method_searches_in_process(mode):
    import torch

    from raynas.config import load_config
    from raynas.methods import get_method
    from raynas.methods.random.search import candidate_genotypes, random_search

    method = get_method("random")
    cfg = load_config("quickstart-classify", [*method.smoke_overrides, f"random.mode={mode}", "random.epochs=2",
                                              "random.candidates=3"], method="random")
    search = random_search(cfg, torch.device("cpu"))
    while not search.done():
        search.train_epoch()
        g = search.derive_genotype()
        assert g.validate() is g
    scores = search.evaluate(g)
    assert 0.0 <= scores["val_acc"] <= 1.0
    assert g in candidate_genotypes(cfg, 3)  # the pick is one of the seed's candidates
    table = search.alpha_table()  # the pick, one-hot on the DARTS supernet's edges (2 + 3 per cell at 2 steps)
    assert len(table) == 10 and sum(map(sum, table.values())) == len(g.normal.ops) + len(g.reduce.ops)
    if mode == "scratch":
        assert scores["val_acc"] == max(s["val_acc"] for s in search.scores)


def test_the_path_net_is_the_supernet_under_one_hot_weights():
    import torch

    from raynas.methods.random.search import PathNet, one_hot_weights
    from raynas.nn.darts_search import DartsSupernet

    torch.manual_seed(0)
    net = DartsSupernet(4, 10, 3, steps=2, multiplier=2, in_channels=1).eval()
    path = PathNet(net)
    x = torch.randn(2, 1, 16, 16)
    rng = random.Random(0)
    for _ in range(3):
        path.genotype = sample_genotype("darts", rng, steps=2, multiplier=2)
        with torch.no_grad():
            torch.testing.assert_close(path(x), net(x, one_hot_weights(net, path.genotype)))


def test_eagan_random_baseline_is_a_config_key_on_the_same_round_loop():
    from raynas.config import load_config
    from searchers.nsga2 import NSGA2Searcher
    from trainables.eagan.driver import make_searcher
    from trainables.eagan.round_results import DIRECTIONS

    cfg = load_config("quickstart", ["eagan.searcher=random", "eagan.population=4"], method="eagan")
    searcher = make_searcher(cfg, "g")
    assert isinstance(searcher, RandomSearcher) and searcher.pop_size == 4
    assert searcher.objectives == [(o, DIRECTIONS[o]) for o in cfg.eagan.objectives]
    batch = searcher.ask()
    assert searcher.ask() == batch  # asking again before tell returns the same round (as NSGA-II's)
    searcher.tell(batch, [{"is": 1.0 + i, "fid": 50.0 - i, "params": 1e6} for i in range(4)])
    assert searcher.ranks() == [3, 2, 1, 0] and searcher.ask() != batch
    assert isinstance(make_searcher(load_config("quickstart", [], method="eagan"), "g"), NSGA2Searcher)
