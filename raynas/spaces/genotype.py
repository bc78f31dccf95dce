"""Genotypes are data: frozen, hashable, JSON by op *names*.

A ``Genotype`` is a space name plus one ``Cell`` per cell; a cell maps an edge group ("up",
"normal", "down", "skip", ...) to the op name chosen on each edge of that group. A ``SearchSpace``
knows the layout (which groups, how many edges, which candidates) and the constraints; integer
encodings exist only for searchers (``encode`` / ``decode``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raynas.errors import GenotypeError


def read_genotype_text(path: str | Path) -> str:
    """The text of a genotype file, or of a shipped genotype named like ``darts-v2``; a missing or binary file
    is a GenotypeError saying what to pass instead. A URI (a run stored at ``s3://…``) is read from there, and a
    run's staged copy fetches the file when another node wrote it."""
    from raynas.results.storage import is_uri, pull, read_text

    if is_uri(str(path)):
        try:
            return read_text(str(path))
        except (OSError, ValueError) as exc:
            raise GenotypeError(f"cannot read the genotype {path}: {exc}") from None
    p = Path(path)
    pull(p)
    if not p.is_file() and str(path) in builtin_genotypes():
        p = builtin_genotypes()[str(path)]
    if not p.is_file():
        raise GenotypeError(f"genotype file {p} does not exist; pass the path of a JSON genotype "
                            "(e.g. best_G.json or best.json from a search run directory) or a shipped one: "
                            f"{', '.join(builtin_genotypes())}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GenotypeError(f"genotype file {p} is not a text JSON file (it is binary or not UTF-8); pass a "
                            "genotype JSON such as a run's best_G.json or best.json") from None


ROLES = ("generator", "discriminator", "pair", "classifier")  # what a space's genotypes build (``space_role``)


class JsonGenotype:
    """JSON in and out for every genotype format (each provides ``to_dict``, ``from_dict``, ``validate``)."""

    @classmethod
    def from_json(cls, text: str):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenotypeError(f"genotype is not valid JSON: {exc}") from None
        return cls.from_dict(data)  # type: ignore[attr-defined]

    @classmethod
    def load(cls, path: str | Path):
        """Read and validate a genotype file, or a shipped one by name (``eagan-cifar10-G``, ``darts-v2``).
        ``Genotype.load`` returns whichever format the file's space has; a format's own ``load`` insists on it."""
        g = Genotype.from_json(read_genotype_text(path))
        g.validate()
        if cls is not Genotype and not isinstance(g, cls):
            expected = next((space for space, c in _FORMATS.items() if c is cls), cls.__name__)
            raise GenotypeError(f"{path} is a genotype for space {g.space!r}, not {expected!r}")
        return g

    def save(self, path: str | Path) -> None:
        write_genotype_file(path, self.to_json(indent=2))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Cell:
    groups: tuple[tuple[str, tuple[str, ...]], ...]

    def __getitem__(self, group: str) -> tuple[str, ...]:
        for name, ops in self.groups:
            if name == group:
                return ops
        raise KeyError(group)

    def get(self, group: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        try:
            return self[group]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, list[str]]:
        return {name: list(ops) for name, ops in self.groups}

    @classmethod
    def from_dict(cls, d: dict[str, Sequence[str]]) -> Cell:
        return cls(tuple((str(k), tuple(str(o) for o in v)) for k, v in d.items()))


@dataclass(frozen=True)
class Genotype(JsonGenotype):
    space: str
    cells: tuple[Cell, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "cells": [c.to_dict() for c in self.cells]}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: Any) -> Genotype:
        """Parse a genotype; JSON whose ``"space"`` has a registered format (e.g. ``"darts"``) gives that class."""
        fmt = _genotype_format(d) if cls is Genotype else None
        if fmt is not None:
            return fmt.from_dict(d)
        if not isinstance(d, dict) or "space" not in d or "cells" not in d:
            raise GenotypeError('a genotype is a JSON object like {"space": "eagan-g", "cells": [...]}; '
                                f"got {str(d)[:120]}")
        cells = d["cells"]
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise GenotypeError("genotype 'cells' must be a list of objects mapping edge groups to op-name lists")
        for i, c in enumerate(cells):
            for k, v in c.items():
                if not isinstance(v, list) or not all(isinstance(o, str) for o in v):
                    raise GenotypeError(f"cell {i} group {k!r} must be a list of op names, got {v!r}")
        return cls(str(d["space"]), tuple(Cell.from_dict(c) for c in cells))

    def validate(self) -> Genotype:
        get_space(self.space).validate(self)
        return self


def write_genotype_file(path: str | Path, text: str) -> None:
    """Write a genotype's JSON; inside a URI run's staging copy it is uploaded at once (trials on other nodes
    read it from there)."""
    from raynas.results.storage import push, write_text_atomic

    write_text_atomic(path, text + "\n")  # a full disk leaves the previous file, never half of one
    push(path)


# Genotype classes by space name, for spaces whose JSON is not ``{"space", "cells"}`` (e.g. ``darts``).
_FORMATS: dict[str, type] = {}


def register_genotype_format(space: str, cls: type) -> type:
    """Make ``Genotype.from_dict/from_json/load`` return ``cls.from_dict(d)`` for JSON whose space is ``space``.

    ``cls`` provides ``from_dict``, ``to_dict``/``to_json``, ``save`` and ``validate`` like ``Genotype``. Like a
    ``SearchSpace`` it may say what its genotypes build (class attribute ``role``, one of ``ROLES``; default
    classifier) and name the module that registers its torch parts (``network_module``: network builder, supernet,
    size summary), imported on their first lookup, so the package that registers the format stays free of torch."""
    _FORMATS[space] = cls
    return cls


def _genotype_format(d: Any) -> type | None:
    space = d.get("space") if isinstance(d, dict) else None
    if not isinstance(space, str):
        return None
    if space not in _FORMATS and space not in _SPACES:  # a registered space's JSON is plain {"space", "cells"}
        load_spaces()
    return _FORMATS.get(space)


# Ops by parameter cost (no parameters first), for ``SearchSpace.normalize``.
LEAN_RANK = {name: i for i, name in enumerate((
    "none", "skip_connect", "avg_pool", "max_pool", "nearest", "bilinear", "deconv", "conv_1x1",
    "sep_conv_3x3", "conv_3x3", "dil_conv_3x3", "sep_conv_5x5", "conv_5x5", "dil_conv_5x5", "sep_conv_7x7"))}

BUILTIN_GENOTYPE_DIR = Path(__file__).resolve().parent.parent / "genotypes"


def builtin_genotypes() -> dict[str, Path]:
    """Genotypes the papers report, shipped so a retrain can start without a search: name → file."""
    return {p.stem: p for p in sorted(BUILTIN_GENOTYPE_DIR.glob("*.json"))}


@dataclass(frozen=True)
class EdgeGroup:
    """``count`` edges named ``group`` in one cell, each choosing among ``candidates``."""

    group: str
    count: int
    candidates: tuple[str, ...]


class SearchSpace:
    """Layout + constraints of one space. Subclasses set ``name``/``layout`` and may override
    ``check_cell`` (raise ``GenotypeError`` naming the edge) and ``repair_cell``."""

    name: str = ""
    layout: tuple[tuple[EdgeGroup, ...], ...] = ()
    role: str = "classifier"  # what its genotypes build: one of ROLES (a pair: ``split(genotype)`` gives G and D)
    network_module: str = ""  # the module that registers its networks, imported on their first lookup

    # ------------------------------------------------------------ edges and encodings
    def edges(self) -> list[tuple[int, str, int, tuple[str, ...]]]:
        """Flattened (cell, group, position, candidates) in encoding order."""
        return [(ci, eg.group, j, eg.candidates)
                for ci, cell in enumerate(self.layout) for eg in cell for j in range(eg.count)]

    def edge_names(self) -> list[str]:
        return [f"cell{ci}.{g}[{j}]" for ci, g, j, _ in self.edges()]

    def n_choices(self) -> list[int]:
        return [len(c) for *_, c in self.edges()]

    def encode(self, g: Genotype) -> list[int]:
        self.validate(g)
        return [cands.index(g.cells[ci][grp][j]) for ci, grp, j, cands in self.edges()]

    def decode(self, vector: Sequence[int]) -> Genotype:
        edges = self.edges()
        if len(vector) != len(edges):
            raise GenotypeError(f"{self.name}: expected {len(edges)} integers, got {len(vector)}")
        cells: list[list[tuple[str, list[str]]]] = [[(eg.group, []) for eg in cell] for cell in self.layout]
        k = 0
        for ci, cell in enumerate(self.layout):
            for gi, eg in enumerate(cell):
                for _ in range(eg.count):
                    idx = int(vector[k])
                    if not 0 <= idx < len(eg.candidates):
                        raise GenotypeError(f"{self.name}: {self.edge_names()[k]} index {idx} out of range")
                    cells[ci][gi][1].append(eg.candidates[idx])
                    k += 1
        return Genotype(self.name, tuple(Cell(tuple((n, tuple(ops)) for n, ops in c)) for c in cells))

    # ------------------------------------------------------------ validation
    def validate(self, g: Genotype) -> None:
        if g.space != self.name:
            raise GenotypeError(f"genotype is for space {g.space!r}, expected {self.name!r}")
        if len(g.cells) != len(self.layout):
            raise GenotypeError(f"{self.name} has {len(self.layout)} cells, the genotype has {len(g.cells)}")
        for ci, (cell, spec) in enumerate(zip(g.cells, self.layout)):
            want = {eg.group for eg in spec}
            have = {name for name, _ in cell.groups}
            if have != want:
                raise GenotypeError(f"cell {ci}: edge groups {sorted(have)} but {self.name} needs {sorted(want)}")
            for eg in spec:
                ops = cell[eg.group]
                if len(ops) != eg.count:
                    raise GenotypeError(f"cell {ci} group {eg.group!r}: {eg.count} edges expected, got {len(ops)}")
                for j, op in enumerate(ops):
                    if op not in eg.candidates:
                        raise GenotypeError(f"cell {ci} edge {eg.group}[{j}]: unknown op {op!r}; "
                                            f"valid: {', '.join(eg.candidates)}")
            self.check_cell(ci, cell)

    def check_cell(self, index: int, cell: Cell) -> None:
        """Space constraints; raise GenotypeError naming the cell and edges."""

    def is_valid(self, vector: Sequence[int]) -> bool:
        try:
            self.validate(self.decode(vector))
        except GenotypeError:
            return False
        return True

    # ------------------------------------------------------------ repair and sampling
    def repair(self, vector: Sequence[int], rng: random.Random | None = None) -> list[int]:
        """Smallest change that makes ``vector`` valid: re-draw offending edges until it is."""
        rng = rng or random.Random(0)
        v = [int(x) for x in vector]
        edges = self.edges()
        for _ in range(1000):
            if self.is_valid(v):
                return v
            bad = self.violating_edges(v)
            for k in bad:
                v[k] = rng.randrange(len(edges[k][3]))
        raise GenotypeError(f"{self.name}: could not repair {list(vector)}")

    def violating_edges(self, vector: Sequence[int]) -> list[int]:
        """Indices of edges involved in a broken constraint (default: every edge)."""
        return list(range(len(vector)))

    def dead_edges(self, vector: Sequence[int]) -> list[int]:
        """Indices of edges whose op cannot affect the network's output (default: none)."""
        return []

    def normalize(self, vector: Sequence[int]) -> list[int]:
        """Put every dead edge on its leanest op that keeps ``vector`` valid, so that of all genotypes that
        build the same function the searcher keeps the one with the fewest parameters."""
        v = [int(x) for x in vector]
        edges = self.edges()
        for k in self.dead_edges(v):
            for c in sorted(range(len(edges[k][3])), key=lambda c: LEAN_RANK.get(edges[k][3][c], len(LEAN_RANK))):
                v[k] = c
                if self.is_valid(v):
                    break
        return v

    def canonical(self, vector: Sequence[int]) -> tuple[int, ...]:
        """``vector`` with dead edges masked to -1: two genotypes with equal canonical forms build the same
        function, so a searcher treats them as duplicates instead of spending an evaluation."""
        dead = set(self.dead_edges(vector))
        return tuple(-1 if k in dead else int(x) for k, x in enumerate(vector))

    def sample(self, rng: random.Random) -> Genotype:
        v = [rng.randrange(n) for n in self.n_choices()]
        return self.decode(self.repair(v, rng))


_SPACES: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    _SPACES[space.name] = space
    return space


def load_spaces() -> None:
    """Register every space and genotype format: the core's (eagan-g/-d/-gd, damgan-g, darts, swd-nas) and the
    plugins' (a method's own format registers from its package, ``raynas.plugins``)."""
    from raynas.plugins import load_plugins  # the core's registered with the package (raynas/spaces/__init__.py)

    load_plugins()


def _space_or_format(name: str) -> Any:
    if name not in _SPACES and name not in _FORMATS:
        load_spaces()
    if name in _SPACES:
        return _SPACES[name]
    if name in _FORMATS:
        return _FORMATS[name]
    raise GenotypeError(f"unknown search space {name!r}; known spaces: {', '.join(sorted({*_SPACES, *_FORMATS}))}")


def space_role(name: str) -> str:
    """What the genotypes of space ``name`` build: generator, discriminator, pair (a coupled G+D) or classifier."""
    return str(getattr(_space_or_format(name), "role", "classifier"))


def spaces_with_role(role: str) -> list[str]:
    """Every registered space (and genotype format) whose genotypes build a ``role``."""
    load_spaces()
    return sorted(n for n, s in {**_FORMATS, **_SPACES}.items() if getattr(s, "role", "classifier") == role)


def network_module(name: str) -> str:
    """The module that registers space ``name``'s networks ("" when a core module or the plugin itself does)."""
    return str(getattr(_space_or_format(name), "network_module", ""))


def get_space(name: str) -> SearchSpace:
    if name not in _SPACES:
        load_spaces()
    if name not in _SPACES:
        raise GenotypeError(f"unknown search space {name!r}; known spaces: {', '.join(sorted(_SPACES))}")
    return _SPACES[name]
