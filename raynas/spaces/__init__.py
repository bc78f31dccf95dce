"""Search spaces and genotypes (plain data; no torch needed to read or validate a genotype)."""

from raynas.spaces.genotype import Cell, EdgeGroup, Genotype, SearchSpace, get_space, register_space

__all__ = ["Cell", "EdgeGroup", "Genotype", "SearchSpace", "get_space", "register_space", "load_builtin_spaces"]


def load_builtin_spaces() -> None:
    """Import the modules that register the built-in spaces (eagan-g, eagan-d, damgan-g) and genotype formats
    (darts)."""
    import importlib

    for mod in ("raynas.spaces.eagan", "raynas.spaces.damgan", "raynas.spaces.darts"):
        importlib.import_module(mod)
