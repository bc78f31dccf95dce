"""The ``darts`` space: DARTS cell genotypes (plain data, no torch).

A DARTS cell has two inputs and ``steps`` intermediate nodes. State 0 is the output of cell k−2,
state 1 that of cell k−1, state ``j ≥ 2`` is intermediate node ``j − 2``. A ``CellGenotype`` lists
``(op name, input state)`` pairs: pairs ``2i`` and ``2i + 1`` feed node ``i`` (its value is the sum
of the two ops), so node ``i`` may read states ``0 .. i + 1``. The cell's output is the channel
concatenation of the states in ``concat``. Any even number of pairs is a cell, so NASNet/Amoeba-style
cells (5 nodes, repeated inputs) and pruned cells (fewer nodes, shorter concat) are genotypes too.

``DartsGenotype`` is DARTS' pair of cells (``normal`` and ``reduce``); its JSON is exactly::

    {"space": "darts", "normal": [["sep_conv_3x3", 0], ...], "normal_concat": [2, 3, 4, 5],
     "reduce": [...], "reduce_concat": [2, 3, 4, 5]}

``raynas.spaces.genotype.Genotype.load/from_json/from_dict`` return a ``DartsGenotype`` for such JSON
(this module registers the format), so ``Genotype.load("darts-v2")`` reads a shipped genotype.
The networks live in :mod:`raynas.nn.darts_net` (evaluation) and :mod:`raynas.nn.darts_search`
(search supernet).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from raynas.errors import GenotypeError
from raynas.spaces.genotype import Genotype, register_genotype_format

#: DARTS' candidate ops in the order of its ``genotypes.PRIMITIVES`` (the column order of α).
PRIMITIVES: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                               "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
#: Every op a DARTS-family cell may use: the primitives plus the NASNet/Amoeba extras.
DARTS_OP_NAMES: tuple[str, ...] = (*PRIMITIVES, "sep_conv_7x7", "conv_7x1_1x7")

SPACE = "darts"


def _state_name(j: int) -> str:
    return ("c_{k-2}", "c_{k-1}")[j] if j < 2 else f"node {j - 2}"


@dataclass(frozen=True)
class CellGenotype:
    """One cell: ``ops`` = ((op, input state), ...) with pairs 2i, 2i+1 feeding node i; ``concat`` = output states.

    Lists and ranges are accepted and stored as tuples (the genotype is hashable).
    """

    ops: tuple[tuple[str, int], ...]
    concat: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple((op, idx) for op, idx in self.ops))
        object.__setattr__(self, "concat", tuple(self.concat))

    @property
    def steps(self) -> int:
        """Number of intermediate nodes."""
        return len(self.ops) // 2

    @property
    def multiplier(self) -> int:
        """Output channels in units of the cell's ``C`` (the number of concatenated states)."""
        return len(self.concat)

    def node_inputs(self, node: int) -> tuple[tuple[str, int], tuple[str, int]]:
        """The two (op, input state) pairs of intermediate node ``node``."""
        return self.ops[2 * node], self.ops[2 * node + 1]

    def validate(self, name: str = "cell") -> CellGenotype:
        """Raise ``GenotypeError`` naming the cell (``name``), node and op of the first problem."""
        if len(self.ops) % 2:
            raise GenotypeError(f"{name} cell has {len(self.ops)} (op, input) pairs; each intermediate node "
                                "takes exactly two, so the count must be even")
        if not self.ops:
            raise GenotypeError(f"{name} cell has no intermediate nodes")
        for k, (op, idx) in enumerate(self.ops):
            node = k // 2
            where = f"{name} cell, node {node} (pair {k}: [{op!r}, {idx!r}])"
            if op not in DARTS_OP_NAMES:
                raise GenotypeError(f"{where}: unknown op {op!r}; valid: {', '.join(DARTS_OP_NAMES)}")
            if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < node + 2:
                raise GenotypeError(f"{where}: input index {idx!r} out of range; node {node} can read states "
                                    f"0..{node + 1} (0 = cell k-2, 1 = cell k-1, j >= 2 = node j-2)")
        if not self.concat:
            raise GenotypeError(f"{name}_concat is empty; list the states the cell outputs (e.g. [2, 3, 4, 5])")
        for c in self.concat:
            if not isinstance(c, int) or isinstance(c, bool) or not 2 <= c < self.steps + 2:
                raise GenotypeError(f"{name}_concat index {c!r} out of range; the {self.steps} intermediate "
                                    f"nodes are states 2..{self.steps + 1}")
        if len(set(self.concat)) != len(self.concat):
            raise GenotypeError(f"{name}_concat {list(self.concat)} lists a state twice")
        return self

    def to_pairs(self) -> list[list[Any]]:
        return [[op, idx] for op, idx in self.ops]

    @classmethod
    def from_pairs(cls, pairs: Any, concat: Any, name: str = "cell") -> CellGenotype:
        """Parse JSON-shaped data (lists of ``[op, index]``), raising ``GenotypeError`` naming the bad item."""
        if not isinstance(pairs, (list, tuple)):
            raise GenotypeError(f"{name} must be a list of [op, input index] pairs, got {pairs!r}"[:200])
        ops = []
        for k, pair in enumerate(pairs):
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[0], str)
                    or not isinstance(pair[1], int) or isinstance(pair[1], bool)):
                raise GenotypeError(f"{name} cell, node {k // 2} (pair {k}): expected [op name, input index], "
                                    f"got {pair!r}")
            ops.append((pair[0], pair[1]))
        if not isinstance(concat, (list, tuple, range)) or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in concat):
            raise GenotypeError(f"{name}_concat must be a list of state indices, got {concat!r}")
        return cls(tuple(ops), tuple(concat))

    def remove_nodes(self, nodes: Iterable[int]) -> CellGenotype:
        """This cell without intermediate ``nodes`` (0-based): their ops and concat entries go, later
        nodes are renumbered, and an edge that read a removed node becomes ``("none", 0)`` (the node then
        has one live input). Raises ``GenotypeError`` if no output state would remain."""
        gone = set(nodes)
        bad = sorted(n for n in gone if not 0 <= n < self.steps)
        if bad:
            raise GenotypeError(f"cannot remove node(s) {bad}: the cell has nodes 0..{self.steps - 1}")
        keep = [n for n in range(self.steps) if n not in gone]
        new_state = {0: 0, 1: 1, **{n + 2: i + 2 for i, n in enumerate(keep)}}
        ops = []
        for n in keep:
            for op, idx in self.node_inputs(n):
                ops.append((op, new_state[idx]) if idx in new_state else ("none", 0))
        concat = tuple(new_state[c] for c in self.concat if c in new_state)
        if not concat:
            raise GenotypeError(f"removing node(s) {sorted(gone)} leaves the cell with no output state")
        return CellGenotype(tuple(ops), concat)


@dataclass(frozen=True)
class DartsGenotype:
    """DARTS' genotype: one normal and one reduction cell (``space`` is always ``"darts"``)."""

    normal: CellGenotype
    reduce: CellGenotype
    space: ClassVar[str] = SPACE

    def cell(self, reduction: bool) -> CellGenotype:
        return self.reduce if reduction else self.normal

    def to_dict(self) -> dict[str, Any]:
        return {"space": SPACE, "normal": self.normal.to_pairs(), "normal_concat": list(self.normal.concat),
                "reduce": self.reduce.to_pairs(), "reduce_concat": list(self.reduce.concat)}

    def to_json(self, indent: int | None = None) -> str:
        """Compact JSON, or with ``indent`` one key (and one ``[op, input]`` pair) per line."""
        if indent is None:
            return json.dumps(self.to_dict())
        pad = " " * indent
        lines = []
        for key, value in self.to_dict().items():
            if key in ("normal", "reduce"):
                pairs = f",\n{pad * 2}".join(json.dumps(p) for p in value)
                lines.append(f"{pad}{json.dumps(key)}: [\n{pad * 2}{pairs}\n{pad}]")
            else:
                lines.append(f"{pad}{json.dumps(key)}: {json.dumps(value)}")
        return "{\n" + ",\n".join(lines) + "\n}"

    @classmethod
    def from_dict(cls, d: Any) -> DartsGenotype:
        keys = ("normal", "normal_concat", "reduce", "reduce_concat")
        if isinstance(d, dict) and d.get("space", SPACE) != SPACE:
            raise GenotypeError(f"genotype is for space {d['space']!r}, expected {SPACE!r}")
        if not isinstance(d, dict) or any(k not in d for k in keys):
            raise GenotypeError('a darts genotype is a JSON object {"space": "darts", "normal": [[op, input], ...], '
                                '"normal_concat": [...], "reduce": [...], "reduce_concat": [...]}; '
                                f"got {str(d)[:120]}")
        extra = sorted(set(d) - {*keys, "space"})
        if extra:
            raise GenotypeError(f"darts genotype has unknown key(s) {', '.join(map(repr, extra))}; "
                                f"valid: space, {', '.join(keys)}")
        return cls(CellGenotype.from_pairs(d["normal"], d["normal_concat"], "normal"),
                   CellGenotype.from_pairs(d["reduce"], d["reduce_concat"], "reduce"))

    @classmethod
    def from_json(cls, text: str) -> DartsGenotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"genotype is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> DartsGenotype:
        """Read and validate a darts genotype file, or a shipped one by name (``darts-v2``)."""
        g = Genotype.load(path)
        if not isinstance(g, DartsGenotype):
            raise GenotypeError(f"{path} is a genotype for space {g.space!r}, not {SPACE!r}")
        return g

    def save(self, path: str | Path) -> None:
        from raynas.spaces.genotype import write_genotype_file

        write_genotype_file(path, self.to_json(indent=2))

    def validate(self) -> DartsGenotype:
        self.normal.validate("normal")
        self.reduce.validate("reduce")
        return self


def darts_genotype(normal: Sequence[tuple[str, int]], normal_concat: Iterable[int],
                   reduce: Sequence[tuple[str, int]], reduce_concat: Iterable[int]) -> DartsGenotype:
    """Build a ``DartsGenotype`` from DARTS' namedtuple fields (validated)."""
    return DartsGenotype(CellGenotype(tuple(normal), tuple(normal_concat)),
                         CellGenotype(tuple(reduce), tuple(reduce_concat))).validate()


register_genotype_format(SPACE, DartsGenotype)
