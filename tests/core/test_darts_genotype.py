"""darts genotypes: JSON shape and round trip, validation messages, NASNet-style cells, shipped names."""

import json
import re

import pytest

from raynas.errors import GenotypeError
from raynas.spaces.darts import CellGenotype, DartsGenotype, darts_genotype
from raynas.spaces.genotype import Genotype, builtin_genotypes

# github:quark0/darts cnn/genotypes.py (facts: op names and input indices)
DARTS_V2 = dict(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5])
NASNET = dict(
    normal=[("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0), ("avg_pool_3x3", 1),
            ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 1)],
    normal_concat=[2, 3, 4, 5, 6],
    reduce=[("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0), ("avg_pool_3x3", 1),
            ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2), ("sep_conv_3x3", 2), ("max_pool_3x3", 1)],
    reduce_concat=[4, 5, 6])
AMOEBA_REDUCE = [("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
                 ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1),
                 ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)]


def _dict(**parts):
    return {"space": "darts", **{k: [list(p) for p in v] if k in ("normal", "reduce") else list(v)
                                 for k, v in parts.items()}}


def test_json_shape_and_round_trip(tmp_path):
    g = darts_genotype(**DARTS_V2)
    d = json.loads(g.to_json())
    assert d == {"space": "darts", "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0],
                                              ["sep_conv_3x3", 1], ["sep_conv_3x3", 1], ["skip_connect", 0],
                                              ["skip_connect", 0], ["dil_conv_3x3", 2]],
                 "normal_concat": [2, 3, 4, 5],
                 "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
                            ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
                 "reduce_concat": [2, 3, 4, 5]}
    assert list(d) == ["space", "normal", "normal_concat", "reduce", "reduce_concat"]
    assert DartsGenotype.from_json(g.to_json()) == g
    assert json.loads(g.to_json(indent=2)) == d
    back = Genotype.from_json(g.to_json(indent=2))  # the generic entry point dispatches on "space"
    assert isinstance(back, DartsGenotype) and back == g and hash(back) == hash(g)
    g.save(tmp_path / "g.json")
    assert Genotype.load(tmp_path / "g.json") == g == DartsGenotype.load(tmp_path / "g.json")
    assert g.normal.steps == 4 and g.reduce.multiplier == 4 and g.space == "darts"
    assert g.normal.node_inputs(3) == (("skip_connect", 0), ("dil_conv_3x3", 2))


@pytest.mark.parametrize("mutate, fragments", [
    (lambda d: d["normal"].__setitem__(3, ["sep_conv_9x9", 1]), ["normal cell, node 1", "unknown op 'sep_conv_9x9'"]),
    (lambda d: d["reduce"].__setitem__(1, ["max_pool_3x3", 2]), ["reduce cell, node 0", "input index 2 out of range",
                                                                 "states 0..1"]),
    (lambda d: d["reduce"].__setitem__(7, ["skip_connect", 5]), ["reduce cell, node 3", "input index 5"]),
    (lambda d: d["normal"].pop(), ["normal cell has 7 (op, input) pairs", "must be even"]),
    (lambda d: d.__setitem__("normal_concat", [2, 3, 6]), ["normal_concat index 6 out of range", "states 2..5"]),
    (lambda d: d.__setitem__("reduce_concat", []), ["reduce_concat is empty"]),
    (lambda d: d.__setitem__("normal_concat", [2, 2]), ["lists a state twice"]),
])
def test_validate_names_cell_node_and_op(mutate, fragments):
    d = _dict(**DARTS_V2)
    mutate(d)
    g = Genotype.from_dict(d)
    with pytest.raises(GenotypeError, match=re.escape(fragments[0])) as info:
        g.validate()
    for f in fragments:
        assert f in str(info.value), str(info.value)
    with pytest.raises(GenotypeError, match=re.escape(fragments[0])):  # load validates
        Genotype.from_json(json.dumps(d)).validate()


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d["normal"].__setitem__(2, "sep_conv_3x3"), "normal cell, node 1 (pair 2): expected [op name"),
    (lambda d: d["reduce"].__setitem__(0, ["max_pool_3x3", "0"]), "reduce cell, node 0 (pair 0)"),
    (lambda d: d.__setitem__("space", "eagan-g") or d.pop("normal"), "genotype is for space"),
    (lambda d: d.pop("reduce_concat"), 'a darts genotype is a JSON object'),
    (lambda d: d.__setitem__("normal_concats", [2]), "unknown key(s) 'normal_concats'"),
])
def test_malformed_json_errors(mutate, fragment):
    d = _dict(**DARTS_V2)
    mutate(d)
    with pytest.raises(GenotypeError, match=re.escape(fragment)):
        DartsGenotype.from_dict(d)


def test_nasnet_and_amoeba_style_genotypes_load():
    g = Genotype.from_dict(_dict(**NASNET)).validate()
    assert isinstance(g, DartsGenotype)
    assert g.normal.steps == 5 and g.normal.multiplier == 5 and g.reduce.concat == (4, 5, 6)
    # repeated inputs (node 3 reads state 0 twice) are fine
    assert g.normal.node_inputs(3) == (("avg_pool_3x3", 0), ("avg_pool_3x3", 0))
    amoeba = DartsGenotype(g.normal, CellGenotype(AMOEBA_REDUCE, (3, 4, 6))).validate()
    assert DartsGenotype.from_json(amoeba.to_json()) == amoeba


def test_shipped_genotypes_load_by_name():
    names = {"darts-v1", "darts-v2", "pc-darts-cifar", "pc-darts-imagenet"}
    assert names | {"eagan-cifar10-G"} <= set(builtin_genotypes())
    for name in names:
        g = Genotype.load(name)
        assert isinstance(g, DartsGenotype) and g.normal.steps == 4, name
    assert Genotype.load("darts-v2") == darts_genotype(**DARTS_V2) == DartsGenotype.load("darts-v2")
    v1 = Genotype.load("darts-v1")
    assert v1.normal.ops[-1] == ("skip_connect", 2) and v1.reduce.ops[-1] == ("avg_pool_3x3", 0)
    pc = Genotype.load("pc-darts-cifar")
    assert pc.reduce.ops[3] == ("sep_conv_5x5", 2) and pc.normal.ops[6] == ("avg_pool_3x3", 0)
    # other spaces keep their own class
    eagan = Genotype.load("eagan-cifar10-G")
    assert type(eagan) is Genotype and eagan.space == "eagan-g"
    with pytest.raises(GenotypeError, match="space 'eagan-g', not 'darts'"):
        DartsGenotype.load("eagan-cifar10-G")
    with pytest.raises(GenotypeError, match="darts-v3 does not exist.*darts-v2"):
        Genotype.load("darts-v3")


def test_remove_nodes_for_pruned_cells():
    v2 = darts_genotype(**DARTS_V2).normal
    pruned = v2.remove_nodes([0])
    # node 0 (state 2) goes: node 3's input from it becomes a 'none' edge; later states renumber
    assert pruned.ops == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("skip_connect", 0),
                          ("skip_connect", 0), ("none", 0))
    assert pruned.concat == (2, 3, 4)
    pruned.validate()
    assert v2.remove_nodes([1, 3]).concat == (2, 3)
    with pytest.raises(GenotypeError, match="no output state"):
        v2.remove_nodes(range(4))
    with pytest.raises(GenotypeError, match="nodes 0..3"):
        v2.remove_nodes([4])
