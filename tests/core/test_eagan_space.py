"""The eagan-g / eagan-d search spaces: JSON, validation, constraints, repair, encodings, edges."""

from __future__ import annotations

import random
import re

import pytest

from raynas.errors import GenotypeError
from raynas.nn import ops
from raynas.spaces import get_space
from raynas.spaces.eagan import (
    D_SPACE,
    DOWN_CANDIDATES,
    EAGAN_CIFAR10_G,
    G_SPACE,
    NORMAL_CANDIDATES,
    UP_CANDIDATES,
)
from raynas.spaces.genotype import Genotype


def g_dict(cells: list[tuple[list[str], list[str]]]) -> dict:
    return {"space": "eagan-g", "cells": [{"up": u, "normal": n} for u, n in cells]}


def d_dict(cells: list[tuple[list[str], list[str]]]) -> dict:
    return {"space": "eagan-d", "cells": [{"normal": n, "down": dn} for n, dn in cells]}


VALID_G = [(["bilinear", "nearest"], ["conv_3x3", "none", "none", "skip_connect", "conv_1x1"])] * 3
VALID_D = [(["conv_3x3", "none", "skip_connect", "none", "conv_1x1"], ["avg_pool", "conv_3x3"])] * 3


def test_registered_and_layout():
    assert get_space("eagan-g") is G_SPACE and get_space("eagan-d") is D_SPACE
    assert G_SPACE.n_choices() == [3, 3, 7, 7, 7, 7, 7] * 3
    assert D_SPACE.n_choices() == [7, 7, 7, 7, 7, 6, 6] * 3


def test_candidates_come_from_the_op_zoo_without_sep_conv():
    assert set(UP_CANDIDATES) == set(ops.UP_OPS)
    assert set(DOWN_CANDIDATES) == set(ops.DOWN_OPS)
    assert set(NORMAL_CANDIDATES) <= set(ops.NORMAL_OPS)
    assert not any(n.startswith("sep_conv") for n in NORMAL_CANDIDATES)
    assert len(NORMAL_CANDIDATES) == 7


def test_json_round_trip_matches_issue_shape():
    g = Genotype.from_dict(g_dict(VALID_G)).validate()
    text = g.to_json()
    assert Genotype.from_json(text) == g
    assert g.to_dict()["cells"][0] == {"up": ["bilinear", "nearest"],
                                       "normal": ["conv_3x3", "none", "none", "skip_connect", "conv_1x1"]}
    rng = random.Random(3)
    for space in (G_SPACE, D_SPACE):
        for _ in range(20):
            s = space.sample(rng)
            assert Genotype.from_json(s.to_json(indent=2)) == s


def test_save_load(tmp_path):
    p = tmp_path / "g.json"
    EAGAN_CIFAR10_G.save(p)
    assert Genotype.load(p) == EAGAN_CIFAR10_G


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # unknown op on a normal edge (sep_conv exists in the zoo but not in this space)
        (g_dict(VALID_G[:1] + [(["bilinear", "bilinear"], ["conv_3x3", "none", "sep_conv_3x3", "none", "none"])]
                + VALID_G[2:]),
         "cell 1 edge normal[2]: unknown op 'sep_conv_3x3'; valid: none, skip_connect, conv_1x1, conv_3x3, conv_5x5, "
         "dil_conv_3x3, dil_conv_5x5"),
        (g_dict(VALID_G[:2] + [(["bicubic", "bilinear"], VALID_G[0][1])]),
         "cell 2 edge up[0]: unknown op 'bicubic'; valid: nearest, bilinear, deconv"),
        (d_dict(VALID_D[:2] + [(VALID_D[0][0], ["avg_pool", "nearest"])]),
         "cell 2 edge down[1]: unknown op 'nearest'; valid: avg_pool, max_pool,"),
        # wrong edge counts
        (g_dict([(["bilinear", "bilinear", "nearest"], VALID_G[0][1])] + VALID_G[1:]),
         "cell 0 group 'up': 2 edges expected, got 3"),
        (d_dict(VALID_D[:1] + [(["conv_3x3"] * 4, ["avg_pool", "avg_pool"])] + VALID_D[2:]),
         "cell 1 group 'normal': 5 edges expected, got 4"),
        # broken constraints
        (g_dict(VALID_G[:2] + [(["bilinear", "bilinear"], ["none", "none", "conv_3x3", "none", "none"])]),
         "eagan-g cell 2: node2 needs an input from node0 or node1 (edges normal[0], normal[1] are all 'none')"),
        (g_dict([(["bilinear", "bilinear"], ["conv_3x3", "none", "none", "none", "none"])] + VALID_G[1:]),
         "eagan-g cell 0: node3 (the cell output) needs at least one input (edges normal[2], normal[3], "
         "normal[4] are all 'none')"),
        (d_dict(VALID_D[:1] + [(["none", "conv_3x3", "none", "none", "none"], ["avg_pool", "avg_pool"])]
                + VALID_D[2:]),
         "eagan-d cell 1: node1 must not be 'none' (normal[0] feeds two edges) (edges normal[0] are all 'none')"),
        (d_dict(VALID_D[:2] + [(["conv_3x3", "none", "none", "none", "none"], ["avg_pool", "avg_pool"])]),
         "eagan-d cell 2: node2 and node3 would both be zero, so the cell would output a constant (edges "
         "normal[1], normal[2], normal[3], normal[4] are all 'none')"),
    ],
)
def test_validation_names_the_bad_cell_and_edge(data, message):
    g = Genotype.from_dict(data)
    with pytest.raises(GenotypeError, match="^" + re.escape(message)):
        g.validate()


def test_wrong_cell_count_and_groups():
    with pytest.raises(GenotypeError, match="3 cells"):
        Genotype.from_dict(g_dict(VALID_G[:2])).validate()
    bad = d_dict(VALID_D)
    bad["cells"][1] = {"normal": VALID_D[0][0]}  # down group missing
    with pytest.raises(GenotypeError, match="cell 1"):
        Genotype.from_dict(bad).validate()


def test_encode_decode_round_trip():
    rng = random.Random(7)
    for space in (G_SPACE, D_SPACE):
        for _ in range(50):
            g = space.sample(rng)
            v = space.encode(g)
            assert len(v) == 21
            assert space.decode(v) == g
            assert space.encode(space.decode(v)) == v
    with pytest.raises(GenotypeError, match="21 integers"):
        G_SPACE.decode([0] * 20)
    with pytest.raises(GenotypeError, match="out of range"):
        G_SPACE.decode([3] + [1] * 20)  # up edges have 3 candidates


def _index(space, cell: int, group: str, pos: int) -> int:
    return next(k for k, (ci, g, j, _) in enumerate(space.edges()) if (ci, g, j) == (cell, group, pos))


def test_violating_edges_are_exactly_the_constraint():
    v = G_SPACE.encode(Genotype.from_dict(g_dict(VALID_G)))
    none = NORMAL_CANDIDATES.index("none")
    v[_index(G_SPACE, 1, "normal", 0)] = none  # normal[1] is already none → node2 constraint broken
    assert G_SPACE.violating_edges(v) == [_index(G_SPACE, 1, "normal", 0), _index(G_SPACE, 1, "normal", 1)]
    w = D_SPACE.encode(Genotype.from_dict(d_dict(VALID_D)))
    w[_index(D_SPACE, 2, "normal", 0)] = none
    assert D_SPACE.violating_edges(w) == [_index(D_SPACE, 2, "normal", 0)]
    assert G_SPACE.violating_edges(G_SPACE.encode(EAGAN_CIFAR10_G)) == []


def test_repair_touches_only_offending_edges():
    none = NORMAL_CANDIDATES.index("none")
    base = G_SPACE.encode(Genotype.from_dict(g_dict(VALID_G)))
    broken = list(base)
    for p in (2, 3, 4):
        broken[_index(G_SPACE, 0, "normal", p)] = none
    assert not G_SPACE.is_valid(broken)
    fixed = G_SPACE.repair(broken, random.Random(0))
    assert G_SPACE.is_valid(fixed)
    changed = {k for k, (a, b) in enumerate(zip(broken, fixed)) if a != b}
    assert changed and changed <= {_index(G_SPACE, 0, "normal", p) for p in (2, 3, 4)}


@pytest.mark.parametrize("space", [G_SPACE, D_SPACE], ids=lambda s: s.name)
def test_repair_always_valid_and_minimal(space):
    rng = random.Random(11)
    n = space.n_choices()
    seen_invalid = 0
    for _ in range(400):
        # bias towards 'none' so constraints break often
        v = [0 if rng.random() < 0.5 else rng.randrange(c) for c in n]
        bad = set(space.violating_edges(v))
        seen_invalid += bool(bad)
        r = space.repair(v, rng)
        assert space.is_valid(r)
        assert all(a == b for k, (a, b) in enumerate(zip(v, r)) if k not in bad)
        space.validate(space.decode(r))
    assert seen_invalid > 50  # the test really exercised repair


def test_sampling_is_valid_and_diverse():
    rng = random.Random(0)
    gs = {G_SPACE.sample(rng) for _ in range(30)}
    assert len(gs) > 25
    for g in gs:
        g.validate()


def test_paper_generator_constant():
    g = EAGAN_CIFAR10_G.validate()
    normals = [op for c in g.cells for op in c["normal"]]
    assert len(normals) == 15
    assert normals.count("none") == 6 and normals.count("skip_connect") == 3
    # The authors' released best_G.npy (issue 13): cell 2 up-samples its first input by nearest neighbour. The
    # assertion that every up op is bilinear encoded the earlier reading of the paper's figure, which was wrong.
    assert [list(c["up"]) for c in g.cells] == [["bilinear", "bilinear"], ["bilinear", "bilinear"],
                                                 ["nearest", "bilinear"]]
    assert [list(c["normal"]) for c in g.cells][1] == ["none", "skip_connect", "conv_3x3", "none", "dil_conv_3x3"]


def test_edge_lists():
    g_edges = G_SPACE.edge_list(EAGAN_CIFAR10_G)
    assert len(g_edges) == 3 * 7 + (0 + 1 + 2)  # 7 searched edges per cell + fixed cross-scale skips
    assert ("z", "c0.n0", "bilinear") in g_edges
    assert ("c0.n3", "c1.n0", "bilinear") in g_edges  # cell 1's input is cell 0's output
    assert ("c0.n0", "c0.n2", "skip_connect") in g_edges and ("c0.n1", "c0.n2", "none") in g_edges
    assert ("c0.n2", "c2.n2", "nearest skip") in g_edges and ("c0.n2", "c1.n2", "bilinear skip") in g_edges
    d = Genotype.from_dict(d_dict(VALID_D))
    d_edges = D_SPACE.edge_list(d)
    assert len(d_edges) == 21
    assert ("stem", "c0.n1", "conv_3x3") in d_edges
    assert ("c0.n2", "c0.n4", "avg_pool") in d_edges  # cell 0 down-samples by default
    assert ("c1.n2", "c1.n4", "skip_connect") in d_edges  # cell 1 does not: plain sum
    all_down = D_SPACE.edge_list(d, downsample=(True, True, True))
    assert ("c1.n3", "c1.n4", "conv_3x3") in all_down


def _alternatives(space, v, k):
    """Valid vectors that differ from ``v`` only at edge ``k``."""
    out = []
    for c in range(space.n_choices()[k]):
        if c != v[k]:
            w = list(v)
            w[k] = c
            if space.is_valid(w):
                out.append(w)
    return out


def _pools_on_a_zero_node(space, v, w, k):
    """avg_pool and max_pool of an all-zero D node (both its inputs 'none') agree: equal, yet not dead."""
    if space.name != "eagan-d" or k % 7 < 5:
        return False
    base = k - k % 7
    inputs = (1, 2) if k % 7 == 5 else (3, 4)  # down[0] reads node2, down[1] reads node3
    zero = all(NORMAL_CANDIDATES[v[base + j]] == "none" for j in inputs)
    return zero and {DOWN_CANDIDATES[v[k]], DOWN_CANDIDATES[w[k]]} <= {"avg_pool", "max_pool"}


@pytest.mark.parametrize("space_name", ["eagan-g", "eagan-d"])
def test_dead_edges_cannot_change_the_network_and_live_ones_do(space_name):
    """``dead_edges`` is what duplicate elimination masks: check it against the networks themselves."""
    import torch

    from raynas.nn.registry import build_supernet

    torch.manual_seed(0)
    space = get_space(space_name)
    net = build_supernet(space_name, resolution=32, channels=1, width=4, **({"latent_dim": 12}
                                                                          if space_name == "eagan-g" else {}))
    net.eval()
    with torch.no_grad():  # xavier init zeroes biases: a conv on an all-zero node would then look like a pool
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
    x = torch.randn(2, 12) if space_name == "eagan-g" else torch.randn(2, 1, 32, 32)
    rng = random.Random(0)
    # G* (the authors' release) has a dead up edge (cell 2's up[0]: nothing reads its node); force one D with
    # a dead c0 too.
    vectors = [space.encode(space.sample(rng)) for _ in range(6)]
    if space_name == "eagan-g":
        vectors.append(space.encode(EAGAN_CIFAR10_G))
        assert space.dead_edges(vectors[-1]) == [14]  # cell 2 up[0]
    else:
        v = list(vectors[0])
        v[2], v[3] = 0, 0  # cell 0 normal[2], normal[3] = none → normal[0] dead
        vectors.append(space.repair(v) if not space.is_valid(v) else v)
    seen_dead = 0
    with torch.no_grad():
        for v in vectors:
            ref = net(x, space.decode(v))
            dead = set(space.dead_edges(v))
            seen_dead += len(dead)
            for k in range(len(v)):
                for w in _alternatives(space, v, k)[:2]:
                    same = torch.equal(net(x, space.decode(w)), ref)
                    assert (space.canonical(w) == space.canonical(v)) == (k in dead)
                    if k in dead:
                        assert same, f"edge {space.edge_names()[k]} is called dead but changes the output"
                    elif not _pools_on_a_zero_node(space, v, w, k):
                        assert not same, f"live edge {space.edge_names()[k]} does not change the output"
    assert seen_dead >= 4 * (len(vectors) - 1) if space_name == "eagan-d" else seen_dead >= 2


def test_searcher_never_spends_an_evaluation_on_a_functional_duplicate():
    from searchers.nsga2 import NSGA2Searcher

    searcher = NSGA2Searcher.for_space(D_SPACE, objectives=[("is", "max"), ("fid", "min")], pop_size=16, seed=0)
    rng = random.Random(0)
    for _ in range(6):
        vectors = searcher.ask()
        canon = [D_SPACE.canonical(v) for v in vectors]
        assert len(set(canon)) == len(canon), "two candidates of one round build the same discriminator"
        searcher.tell(vectors, [{"is": rng.random(), "fid": rng.random()} for _ in vectors])


def test_coupled_space_is_a_g_genotype_and_a_d_genotype():
    from raynas.spaces.eagan import GD_SPACE

    rng = random.Random(0)
    g, d = G_SPACE.sample(rng), D_SPACE.sample(rng)
    pair = GD_SPACE.join(g, d)
    assert pair.space == "eagan-gd" and len(pair.cells) == 6
    assert GD_SPACE.split(pair) == (g, d)
    assert Genotype.from_json(pair.to_json()) == pair
    v = GD_SPACE.encode(pair)
    n_g = len(G_SPACE.n_choices())
    assert v == G_SPACE.encode(g) + D_SPACE.encode(d)
    assert GD_SPACE.dead_edges(v) == G_SPACE.dead_edges(v[:n_g]) + [n_g + k for k in D_SPACE.dead_edges(v[n_g:])]
    # A broken D half (cell 0's normal[0] = none) is named, and repair fixes only that half.
    bad = list(v)
    bad[n_g] = 0
    with pytest.raises(GenotypeError, match="node1 must not be 'none'"):
        GD_SPACE.validate(GD_SPACE.decode(bad))
    fixed = GD_SPACE.repair(bad, random.Random(1))
    assert GD_SPACE.is_valid(fixed) and fixed[:n_g] == v[:n_g]


def test_searcher_keeps_the_leanest_of_equivalent_genotypes():
    """Duplicates are judged with dead edges masked, so the searcher's repair puts dead edges on their
    cheapest op: the kept representative has the fewest parameters of its class."""
    from raynas.nn.profile import count_params
    from raynas.nn.registry import build_network
    from searchers.nsga2 import NSGA2Searcher

    def params(v):
        return count_params(build_network(G_SPACE.decode(v), resolution=32, channels=1, width=8, latent_dim=12))

    # G* (the authors' release) has one dead edge, cell 2's up[0], already on its leanest op; put a costlier op
    # there, and the searcher's representative must be G* itself again.
    g = EAGAN_CIFAR10_G.to_dict()
    g["cells"][2]["up"][0] = "deconv"
    v = G_SPACE.encode(Genotype.from_dict(g))
    lean = G_SPACE.normalize(v)
    assert G_SPACE.canonical(lean) == G_SPACE.canonical(v) and G_SPACE.is_valid(lean)
    assert G_SPACE.decode(lean) == EAGAN_CIFAR10_G
    assert params(lean) < params(v)
    searcher = NSGA2Searcher.for_space(G_SPACE, objectives=[("is", "max"), ("params", "min")], pop_size=8, seed=0)
    for vec in searcher.ask():
        assert list(vec) == G_SPACE.normalize(vec)
