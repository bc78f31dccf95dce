"""The ``swd-nas`` space: SWD-NAS's five-cell genotypes (plain data, no torch).

SWD-NAS (Xue, Han, Wang, IEEE TII 2024) gives every cell of its 5-cell search network an architecture of its
own, so a genotype is five DARTS cells in the order normal, reduce, normal, reduce, normal (``Cell_0`` ..
``Cell_4`` of the authors' code). Each cell is a :class:`raynas.spaces.darts.CellGenotype` (pairs ``2i, 2i+1``
feed intermediate node ``i``; input 0 = cell k−2, 1 = cell k−1, ``j ≥ 2`` = node ``j − 2``). The JSON is::

    {"space": "swd-nas", "cells": [
        {"type": "normal", "ops": [["skip_connect", 0], ...8 pairs], "concat": [2, 3, 4, 5]},
        {"type": "reduce", ...}, {"type": "normal", ...}, {"type": "reduce", ...}, {"type": "normal", ...}]}

``raynas.spaces.genotype.Genotype.load/from_json/from_dict`` return a :class:`SwdGenotype` for such JSON
(this module registers the format), so ``Genotype.load("swd-nas-cifar10")`` reads the shipped genotype.
An evaluation network stacks the cells as ``6×c0, c1 (R), 6×c2, c3 (R), 6×c4`` at 20 layers
(:mod:`raynas.nn.swd_net`); the search network is :mod:`raynas.nn.swd_search`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from raynas.errors import GenotypeError
from raynas.spaces.darts import CellGenotype
from raynas.spaces.draw import register_drawer
from raynas.spaces.genotype import JsonGenotype, register_genotype_format

SPACE = "swd-nas"
POOLINGS = ("gap", "gap+gmp")  # UA/LA pooling modes (Table III)
#: The type of each of the five cells, in order (reductions at 5 // 3 = 1 and 2 * 5 // 3 = 3).
CELL_TYPES: tuple[str, ...] = ("normal", "reduce", "normal", "reduce", "normal")
_ORDER = ", ".join(CELL_TYPES)


@dataclass(frozen=True)
class SwdGenotype(JsonGenotype):
    """Five cells (``CellGenotype``), of types ``CELL_TYPES`` in that order; ``space`` is always ``"swd-nas"``."""

    cells: tuple[CellGenotype, ...]
    space: ClassVar[str] = SPACE

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", tuple(self.cells))

    @property
    def types(self) -> tuple[str, ...]:
        return CELL_TYPES[:len(self.cells)]

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {"space": SPACE, "cells": [{"type": t, "ops": c.to_pairs(), "concat": list(c.concat)}
                                          for t, c in zip(CELL_TYPES, self.cells)]}

    def to_json(self, indent: int | None = None) -> str:
        """Compact JSON, or with ``indent`` one cell key (and one ``[op, input]`` pair) per line."""
        if indent is None:
            return json.dumps(self.to_dict())
        pad = " " * indent
        cells = []
        for cell in self.to_dict()["cells"]:
            pairs = f",\n{pad * 4}".join(json.dumps(p) for p in cell["ops"])
            cells.append(f"{pad * 2}{{\n{pad * 3}\"type\": {json.dumps(cell['type'])},\n"
                         f"{pad * 3}\"ops\": [\n{pad * 4}{pairs}\n{pad * 3}],\n"
                         f"{pad * 3}\"concat\": {json.dumps(cell['concat'])}\n{pad * 2}}}")
        return "{\n" + f"{pad}\"space\": {json.dumps(SPACE)},\n{pad}\"cells\": [\n" + ",\n".join(cells) \
            + f"\n{pad}]\n}}"

    @classmethod
    def from_dict(cls, d: Any) -> SwdGenotype:
        """Parse JSON-shaped data; raises ``GenotypeError`` naming the bad cell, node or key."""
        if isinstance(d, dict) and d.get("space", SPACE) != SPACE:
            raise GenotypeError(f"genotype is for space {d['space']!r}, expected {SPACE!r}")
        if not isinstance(d, dict) or not isinstance(d.get("cells"), list):
            raise GenotypeError('an swd-nas genotype is a JSON object {"space": "swd-nas", "cells": [{"type": '
                                '"normal", "ops": [[op, input], ...], "concat": [2, 3, 4, 5]}, ... five cells]}; '
                                f"got {str(d)[:120]}")
        extra = sorted(set(d) - {"space", "cells"})
        if extra:
            raise GenotypeError(f"swd-nas genotype has unknown key(s) {', '.join(map(repr, extra))}; valid: space, "
                                "cells")
        _check_count(len(d["cells"]))
        cells = []
        for i, c in enumerate(d["cells"]):
            name = f"cell {i}"
            if not isinstance(c, dict) or any(k not in c for k in ("type", "ops", "concat")):
                raise GenotypeError(f"{name} must be an object with keys type, ops, concat; got {str(c)[:120]}")
            bad = sorted(set(c) - {"type", "ops", "concat"})
            if bad:
                raise GenotypeError(f"{name} has unknown key(s) {', '.join(map(repr, bad))}; valid: type, ops, "
                                    "concat")
            if c["type"] != CELL_TYPES[i]:
                raise GenotypeError(f"{name} has type {c['type']!r}, but SWD-NAS's five cells are {_ORDER} in this "
                                    f"order (cell {i} is {CELL_TYPES[i]!r})")
            cells.append(CellGenotype.from_pairs(c["ops"], c["concat"], f"{name} ({c['type']})"))
        return cls(tuple(cells))

    def validate(self) -> SwdGenotype:
        """Five cells, each a valid DARTS cell; errors name the cell (index and type), node and op."""
        _check_count(len(self.cells))
        for i, (t, cell) in enumerate(zip(CELL_TYPES, self.cells)):
            if not isinstance(cell, CellGenotype):
                raise GenotypeError(f"cell {i} ({t}) is a {type(cell).__name__}, not a CellGenotype")
            cell.validate(f"cell {i} ({t})")
        return self


def _check_count(n: int) -> None:
    if n != len(CELL_TYPES):
        raise GenotypeError(f"an swd-nas genotype has exactly {len(CELL_TYPES)} cells ({_ORDER}); this one has {n}")


def swd_cell_index(i: int, layers: int, reductions: Sequence[int] | None = None) -> int:
    """Which of the five genotype cells sits at layer ``i``: cell 0 before the first reduction, 1 at it, 2
    between the two, 3 at the second, 4 after it."""
    r1, r2 = reductions if reductions is not None else (layers // 3, 2 * layers // 3)
    if i < r1:
        return 0
    if i == r1:
        return 1
    if i < r2:
        return 2
    if i == r2:
        return 3
    return 4


def draw_swd_genotype(genotype: SwdGenotype, png_path: str | Path, *, title: str | None = None,
                      dpi: int = 130) -> Path:
    """A PNG with the five cells top to bottom (the drawing of darts cells, one panel per cell)."""
    from raynas.spaces.draw_darts import draw_cell_panels

    if not isinstance(genotype, SwdGenotype):
        raise GenotypeError(f"draw_swd_genotype needs an swd-nas genotype, got one for space "
                            f"{getattr(genotype, 'space', type(genotype).__name__)!r}")
    genotype.validate()
    panels = [(cell, f"cell {i} ({t})") for i, (t, cell) in enumerate(zip(CELL_TYPES, genotype.cells))]
    return draw_cell_panels(panels, png_path, title=title, dpi=dpi)


register_genotype_format(SPACE, SwdGenotype)
register_drawer(SPACE, draw_swd_genotype)
