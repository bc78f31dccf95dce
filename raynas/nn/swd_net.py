"""SWD-NAS evaluation networks: the five searched cells stacked by position, on DARTS' cells and network.

The authors' ``model.py`` assigns cell ``i`` of an ``L``-cell network (reductions at ``r1 = L//3`` and
``r2 = 2L//3``) to genotype cell::

    i < r1 → cell 0 (normal)    i == r1 → cell 1 (reduce)    r1 < i < r2 → cell 2 (normal)
    i == r2 → cell 3 (reduce)   i > r2 → cell 4 (normal)

so 20 layers are ``6×c0, c1, 6×c2, c3, 6×c4`` (CIFAR: C=36, ImageNet: C=48, both 20 cells). Explicit
``reduction_positions`` (two of them) replace ``r1, r2``. The network itself is
:class:`raynas.nn.darts_net.CellNetwork` (stems, auxiliary head after the last reduction, drop path), so
everything DARTS' evaluation network does holds here; only the plan differs. Registered as
``build_network`` space ``"swd-nas"`` with an ``arch show`` summary of the same keys as darts'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raynas.errors import ConfigError, GenotypeError
from raynas.nn.darts_net import CellNetwork, LayerSpec, reduction_positions_for, summarize_cell_network
from raynas.nn.profile import format_classifier_summary, register_summary
from raynas.nn.registry import register_network
from raynas.spaces.swd import CELL_TYPES, SPACE, SwdGenotype, swd_cell_index


def swd_plan(genotype: SwdGenotype, layers: int, reduction_positions: Sequence[int] | None = None) -> list[LayerSpec]:
    """The per-layer plan; refuses a depth that leaves one of the five cells out."""
    if not isinstance(genotype, SwdGenotype):
        raise GenotypeError(f"an swd-nas network needs an swd-nas genotype, got one for space "
                            f"{getattr(genotype, 'space', type(genotype).__name__)!r}")
    genotype.validate()
    reductions = reduction_positions_for(layers, reduction_positions)
    if len(reductions) != 2:
        raise ConfigError(f"reduction positions {list(reductions)}: an swd-nas network has exactly two reduction "
                          "cells (its genotype's cells 1 and 3)")
    order = [swd_cell_index(i, layers, reductions) for i in range(layers)]
    missing = [f"cell {c} ({CELL_TYPES[c]})" for c in range(len(CELL_TYPES)) if c not in order]
    if missing:
        raise ConfigError(f"{layers} layers with reductions at {list(reductions)} leave {', '.join(missing)} of the "
                          "swd-nas genotype out; use at least 5 layers with a normal cell before, between and after "
                          "the two reductions (the paper retrains 20)")
    return [LayerSpec(genotype.cells[c], CELL_TYPES[c] == "reduce") for c in order]


def build_swd_network(genotype: SwdGenotype, *, resolution: int = 32, channels: int = 3, width: int | None = None,
                      layers: int | None = None, num_classes: int | None = None, auxiliary: bool = False,
                      reduction_positions: Sequence[int] | None = None, imagenet: bool = False,
                      drop_path_prob: float = 0.0, stem_multiplier: int = 3,
                      latent_dim: int | None = None) -> CellNetwork:
    """``build_network`` builder for space ``swd-nas``; checks that ``resolution`` runs through the network.

    Defaults: CIFAR 20 cells, C=36, 10 classes; ImageNet (``imagenet=True``) 20 cells, C=48, 1000 classes
    (the authors' ``train_imagenet.py``). ``channels`` is the number of image channels."""
    del latent_dim
    layers = 20 if layers is None else layers
    plan = swd_plan(genotype, layers, reduction_positions)
    if imagenet:
        net = CellNetwork(plan, 48 if width is None else width, 1000 if num_classes is None else num_classes,
                          in_channels=channels, auxiliary=auxiliary, imagenet_stem=True, drop_path_prob=drop_path_prob)
    else:
        net = CellNetwork(plan, 36 if width is None else width, 10 if num_classes is None else num_classes,
                          in_channels=channels, auxiliary=auxiliary, stem_multiplier=stem_multiplier,
                          drop_path_prob=drop_path_prob)
    net.genotype = genotype
    net.check_resolution(resolution)
    return net


register_network(SPACE, build_swd_network)


def _describe(genotype: SwdGenotype, *, dataset: str, layers: int | None, channels: int | None) -> dict[str, Any]:
    return summarize_cell_network(genotype, build_swd_network, dataset_shape=dataset, layers=layers,
                                  channels=channels)


register_summary(SPACE, _describe, format_classifier_summary)
