"""The ``darts-gal`` genotype: a stacked-cell network and the nodes of each cell that survived GAL pruning
(plain data, no torch).

A DARTS-GAL network is stacked from a *source* genotype: DARTS' normal/reduce pair (``"space": "darts"``, e.g.
``darts-v2`` or a search's ``best.json``) or SWD-NAS's five cells (``"space": "swd-nas"``; cell 0 before the
first reduction, cell 1 at it, cell 2 between, cell 3 at the second reduction, cell 4 after, as SWD-NAS stacks
its evaluation network). The genotype fixes the whole network: cells (``layers``), initial channels
(``channels``, DARTS' C), image channels, the 0-based reduction cells and, per cell, the intermediate nodes it
keeps (0-based, as the paper's Tables 1, 3, 5, 7 list them)::

    {"space": "darts-gal", "source": {"space": "darts", "normal": [...], ...}, "layers": 5, "channels": 16,
     "in_channels": 1, "reduction_positions": [1, 3], "stem_multiplier": 3,
     "kept": [[0, 1, 2, 3], [0, 2], [], [0, 1, 2, 3], [1]], "masks": [[...], ...]}

``masks`` (optional) are the soft-mask values the pruning ended with; they document the decision and change
nothing in the network. What pruning a node means (the paper is silent; spec §3.4): its two ops go, it leaves
the concat (so the next cells' preprocessing takes fewer channels), edges out of it go (``CellGenotype.
remove_nodes`` turns them into ``none``), and a cell with no kept node passes its ``s1`` input through. A kept
node whose inputs are all pruned nodes would only output zeros, so ``close_kept`` prunes it too; a kept
node that feeds neither the concat nor a kept node is pruned likewise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from raynas.errors import GenotypeError
from raynas.spaces.darts import CellGenotype, DartsGenotype
from raynas.spaces.genotype import JsonGenotype, read_genotype_text, register_genotype_format
from raynas.spaces.swd import swd_cell_index

SPACE = "darts-gal"
SWD_SPACE = "swd-nas"
SWD_TYPES = ("normal", "reduce", "normal", "reduce", "normal")


def default_reductions(layers: int) -> tuple[int, ...]:
    """DARTS' reduction cells: ``layers//3`` and ``2*layers//3`` (0-based)."""
    if layers < 3:
        raise GenotypeError(f"layers={layers} is too small for DARTS' reduction cells at layers//3 and 2*layers//3; "
                            "use at least 3 cells or list the reduction positions")
    return (layers // 3, 2 * layers // 3)


def check_reductions(layers: int, positions: Iterable[int], where: str = "reduction_positions") -> tuple[int, ...]:
    """``positions`` sorted, each a cell index 0..layers-1 and none twice (``GenotypeError`` otherwise)."""
    out = list(positions)
    bad = [p for p in out if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < layers]
    if bad:
        raise GenotypeError(f"{where} {out}: {bad} out of range; the network has {layers} cells, so positions are "
                            f"0..{layers - 1} (0-based)")
    if len(set(out)) != len(out):
        raise GenotypeError(f"{where} {out} repeat a cell")
    return tuple(sorted(out))


# ============================================================================ source cells
@dataclass(frozen=True)
class SourceCells:
    """The cell genotype(s) a network is stacked from: ``space`` ``darts`` (normal, reduce) or ``swd-nas``
    (five cells, types normal/reduce/normal/reduce/normal)."""

    space: str
    cells: tuple[CellGenotype, ...]

    def to_dict(self) -> dict[str, Any]:
        if self.space == "darts":
            return DartsGenotype(*self.cells).to_dict()
        return {"space": SWD_SPACE, "cells": [{"type": t, "ops": c.to_pairs(), "concat": list(c.concat)}
                                              for t, c in zip(SWD_TYPES, self.cells)]}

    @classmethod
    def from_dict(cls, d: Any) -> SourceCells:
        space = d.get("space") if isinstance(d, dict) else None
        if space == "darts":
            g = DartsGenotype.from_dict(d).validate()
            return cls("darts", (g.normal, g.reduce))
        if space == SWD_SPACE:
            cells = d.get("cells")
            if not isinstance(cells, list) or len(cells) != len(SWD_TYPES):
                got = len(cells) if isinstance(cells, list) else repr(cells)
                raise GenotypeError(f"an swd-nas genotype has {len(SWD_TYPES)} cells ({', '.join(SWD_TYPES)}); "
                                    f"got {got}")
            out = []
            for i, (c, want) in enumerate(zip(cells, SWD_TYPES)):
                if not isinstance(c, dict) or c.get("type") != want:
                    raise GenotypeError(f"swd-nas cell {i} must be a {want!r} cell "
                                        f"({{\"type\": \"{want}\", \"ops\": [...], \"concat\": [...]}}); got "
                                        f"{str(c)[:80]}")
                out.append(CellGenotype.from_pairs(c.get("ops"), c.get("concat"), f"swd-nas cell {i}")
                           .validate(f"swd-nas cell {i} ({want})"))
            return cls(SWD_SPACE, tuple(out))
        raise GenotypeError(f"a darts-gal network stacks a darts genotype (e.g. darts-v2, a DARTS search's best.json) "
                            f"or an swd-nas genotype; got space {space!r}")

    def layer_cells(self, layers: int, reductions: Sequence[int]) -> list[CellGenotype]:
        """The unpruned cell genotype at every layer."""
        red = set(reductions)
        if self.space == "darts":
            return [self.cells[1] if i in red else self.cells[0] for i in range(layers)]
        if len(red) != 2:
            raise GenotypeError(f"an swd-nas genotype stacks its five cells around exactly two reduction cells; "
                                f"got reduction positions {sorted(red)}")
        return [self.cells[swd_cell_index(i, layers, sorted(red))] for i in range(layers)]


def read_genotype_json(ref: str | Path) -> dict[str, Any]:
    """A genotype file (or a shipped genotype by name, e.g. ``darts-v2``) as a JSON object."""
    try:
        data = json.loads(read_genotype_text(ref))
    except json.JSONDecodeError as exc:
        raise GenotypeError(f"genotype {ref} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise GenotypeError(f"genotype {ref} must be a JSON object with a 'space' key")
    return data


def load_source(ref: str | Path) -> SourceCells:
    """The source cells of a darts or swd-nas genotype file (a darts-gal genotype gives its own source)."""
    data = read_genotype_json(ref)
    if data.get("space") == SPACE:
        return DartsGalGenotype.from_dict(data).source
    try:
        return SourceCells.from_dict(data)
    except GenotypeError as exc:
        raise GenotypeError(f"{ref}: {exc}") from None


# ============================================================================ pruning decisions
def _live_inputs(cell: CellGenotype, node: int, alive: set[int]) -> list[int]:
    return [j for _, j in cell.node_inputs(node) if j < 2 or (j - 2) in alive]


def close_kept(cell: CellGenotype, kept: Iterable[int]) -> tuple[int, ...]:
    """``kept`` minus the nodes that would compute nothing: a node whose inputs are all pruned nodes, and a node
    that feeds neither the concat nor a kept node (repeated until stable). Empty when no kept node reaches the
    concat (the cell then passes its input through)."""
    alive = {int(n) for n in kept}
    while True:
        before = set(alive)
        for n in range(cell.steps):  # forward: inputs only come from earlier nodes
            if n in alive and not _live_inputs(cell, n, alive):
                alive.discard(n)
        for n in reversed(range(cell.steps)):
            consumers = [m for m in alive if m > n and any(j == n + 2 for _, j in cell.node_inputs(m))]
            if n in alive and (n + 2) not in cell.concat and not consumers:
                alive.discard(n)
        if not any((n + 2) in cell.concat for n in alive):
            alive = set()
        if alive == before:
            return tuple(sorted(alive))


def kept_from_masks(cells: Sequence[CellGenotype], masks: Sequence[Sequence[float]],
                    threshold: float) -> list[tuple[int, ...]]:
    """Per cell, the nodes whose mask is above ``threshold`` (GAL prunes ``mask <= threshold``), closed."""
    if len(cells) != len(masks):
        raise GenotypeError(f"{len(masks)} mask vectors for {len(cells)} cells")
    return [close_kept(c, [i for i, m in enumerate(ms) if float(m) > threshold]) for c, ms in zip(cells, masks)]


# ============================================================================ the genotype
@dataclass(frozen=True)
class DartsGalGenotype(JsonGenotype):
    """A stacked-cell network (``source`` cells, ``layers``, C = ``channels``, image ``in_channels``, 0-based
    ``reduction_positions``) and per cell the kept intermediate nodes (``kept``)."""

    source: SourceCells
    layers: int
    channels: int
    in_channels: int
    reduction_positions: tuple[int, ...]
    kept: tuple[tuple[int, ...], ...]
    masks: tuple[tuple[float, ...], ...] | None = None
    stem_multiplier: int = 3
    space: ClassVar[str] = SPACE
    network_module: ClassVar[str] = "raynas.methods.dartsgal.network"  # registers its network (torch) when built
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reduction_positions", tuple(self.reduction_positions))
        object.__setattr__(self, "kept", tuple(tuple(k) for k in self.kept))
        if self.masks is not None:
            object.__setattr__(self, "masks", tuple(tuple(float(v) for v in m) for m in self.masks))

    # ------------------------------------------------------------------ construction
    @classmethod
    def full(cls, source: SourceCells, layers: int, channels: int, in_channels: int,
             reduction_positions: Sequence[int] | None = None, stem_multiplier: int = 3) -> DartsGalGenotype:
        """The unpruned network: every node of every cell kept."""
        reductions = (default_reductions(layers) if not reduction_positions
                      else check_reductions(layers, reduction_positions))
        cells = source.layer_cells(layers, reductions)
        return cls(source, layers, channels, in_channels, reductions,
                   tuple(tuple(range(c.steps)) for c in cells), None, stem_multiplier).validate()

    def with_masks(self, masks: Sequence[Sequence[float]], threshold: float = 0.0) -> DartsGalGenotype:
        """This network pruned by ``masks`` (one value per node of every cell): nodes at or below ``threshold`` go."""
        kept = kept_from_masks(self.layer_cells(), masks, threshold)
        return DartsGalGenotype(self.source, self.layers, self.channels, self.in_channels, self.reduction_positions,
                                tuple(kept), tuple(tuple(m) for m in masks), self.stem_multiplier).validate()

    # ------------------------------------------------------------------ derived
    def layer_cells(self) -> list[CellGenotype]:
        """The unpruned cell at every layer."""
        return self.source.layer_cells(self.layers, self.reduction_positions)

    def pruned_cells(self) -> list[CellGenotype | None]:
        """The cell genotype every layer builds: the kept nodes only, ``None`` for a cell that passes its input
        through."""
        if "pruned" not in self._cache:
            out: list[CellGenotype | None] = []
            for cell, kept in zip(self.layer_cells(), self.kept):
                gone = [n for n in range(cell.steps) if n not in kept]
                out.append(None if not kept else cell.remove_nodes(gone) if gone else cell)
            self._cache["pruned"] = out
        return list(self._cache["pruned"])

    def is_reduction(self, layer: int) -> bool:
        return layer in self.reduction_positions

    @property
    def total_nodes(self) -> int:
        return sum(c.steps for c in self.layer_cells())

    @property
    def kept_nodes(self) -> int:
        return sum(len(k) for k in self.kept)

    def unreduced_cells(self) -> list[int]:
        """Reduction cells left with no node: they pass their input through at full size, so every later cell
        runs on maps twice as wide and high as in the unpruned network (more FLOPs, not fewer)."""
        return [i for i in self.reduction_positions if not self.kept[i]]

    def pruned_nodes(self) -> list[tuple[int, ...]]:
        """Per cell, the pruned node indices."""
        return [tuple(n for n in range(c.steps) if n not in k) for c, k in zip(self.layer_cells(), self.kept)]

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"space": SPACE, "source": self.source.to_dict(), "layers": self.layers,
                             "channels": self.channels, "in_channels": self.in_channels,
                             "reduction_positions": list(self.reduction_positions),
                             "stem_multiplier": self.stem_multiplier, "kept": [list(k) for k in self.kept]}
        if self.masks is not None:
            d["masks"] = [[round(v, 6) for v in m] for m in self.masks]
        return d

    def to_json(self, indent: int | None = None) -> str:
        if indent is None:
            return json.dumps(self.to_dict())
        pad = " " * indent
        lines = [f"{pad}{json.dumps(k)}: {json.dumps(v)}" for k, v in self.to_dict().items()]
        return "{\n" + ",\n".join(lines) + "\n}"

    @classmethod
    def from_dict(cls, d: Any) -> DartsGalGenotype:
        keys = ("source", "layers", "channels", "in_channels", "reduction_positions", "kept")
        if not isinstance(d, dict) or d.get("space") != SPACE or any(k not in d for k in keys):
            raise GenotypeError('a darts-gal genotype is a JSON object {"space": "darts-gal", "source": {darts or '
                                'swd-nas genotype}, "layers": N, "channels": C, "in_channels": 1|3, '
                                '"reduction_positions": [...], "kept": [[node, ...] per cell]}; '
                                f"got {str(d)[:120]}")
        extra = sorted(set(d) - {*keys, "space", "masks", "stem_multiplier"})
        if extra:
            raise GenotypeError(f"darts-gal genotype has unknown key(s) {', '.join(map(repr, extra))}")
        for k in ("layers", "channels", "in_channels"):
            if not isinstance(d[k], int) or isinstance(d[k], bool) or d[k] < 1:
                raise GenotypeError(f"darts-gal genotype: {k} must be a positive integer, got {d[k]!r}")
        stem = d.get("stem_multiplier", 3)
        if not isinstance(stem, int) or isinstance(stem, bool) or stem < 1:
            raise GenotypeError(f"darts-gal genotype: stem_multiplier must be a positive integer, got {stem!r}")
        for k in ("reduction_positions", "kept"):
            if not isinstance(d[k], list):
                raise GenotypeError(f"darts-gal genotype: {k} must be a list, got {d[k]!r}")
        kept = d["kept"]
        if not all(isinstance(k, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in k)
                   for k in kept):
            raise GenotypeError("darts-gal genotype: kept must list, per cell, the kept node indices (integers)")
        masks = d.get("masks")
        if masks is not None and not (isinstance(masks, list) and all(
                isinstance(m, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in m)
                for m in masks)):
            raise GenotypeError("darts-gal genotype: masks must list, per cell, one number per node")
        return cls(SourceCells.from_dict(d["source"]), d["layers"], d["channels"], d["in_channels"],
                   tuple(d["reduction_positions"]), tuple(tuple(k) for k in kept),
                   None if masks is None else tuple(tuple(m) for m in masks), stem)

    # ------------------------------------------------------------------ validation
    def validate(self) -> DartsGalGenotype:
        """Raise ``GenotypeError`` naming the first problem (a reduction cell out of range, a node that does not
        exist, a kept node that would compute nothing)."""
        check_reductions(self.layers, self.reduction_positions, "darts-gal genotype: reduction_positions")
        cells = self.layer_cells()
        if len(self.kept) != self.layers:
            raise GenotypeError(f"darts-gal genotype: kept lists {len(self.kept)} cells but the network has "
                                f"{self.layers}")
        for i, (cell, kept) in enumerate(zip(cells, self.kept)):
            bad = [n for n in kept if not 0 <= n < cell.steps]
            if bad or len(set(kept)) != len(kept) or list(kept) != sorted(kept):
                raise GenotypeError(f"darts-gal genotype: cell {i} keeps nodes {list(kept)}; list each of its nodes "
                                    f"0..{cell.steps - 1} at most once, in increasing order")
            closed = close_kept(cell, kept)
            if closed != tuple(kept):
                dead = sorted(set(kept) - set(closed))
                raise GenotypeError(f"darts-gal genotype: cell {i} keeps node(s) {dead} that would compute nothing "
                                    "(all their inputs are pruned nodes, or their output reaches neither the concat "
                                    f"nor a kept node); keep {list(closed)} instead")
        if self.masks is not None and (len(self.masks) != self.layers
                                       or any(len(m) != c.steps for m, c in zip(self.masks, cells))):
            raise GenotypeError("darts-gal genotype: masks must give one value per node of every cell")
        return self


register_genotype_format(SPACE, DartsGalGenotype)
