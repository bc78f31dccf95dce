"""Search spaces and genotypes (plain data; no torch needed to read or validate a genotype)."""

from raynas.spaces.genotype import (
    Cell,
    EdgeGroup,
    Genotype,
    SearchSpace,
    get_space,
    load_spaces,
    register_space,
)

__all__ = ["Cell", "EdgeGroup", "Genotype", "SearchSpace", "get_space", "load_spaces", "register_space"]
