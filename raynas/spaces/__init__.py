"""Search spaces and genotypes (plain data; no torch needed to read or validate a genotype).

Importing the package registers the core spaces, genotype formats and drawers (each module registers its own); a
method's own register from its package (``raynas.plugins``)."""

from raynas.spaces import damgan, darts, draw_darts, eagan, swd  # noqa: F401  (the core spaces register on import)
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
