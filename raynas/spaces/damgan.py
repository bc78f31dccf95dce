"""The ``damgan-g`` generator space (DAMGAN's space, which is AlphaGAN's).

Three cells of five nodes; every node holds ``C`` feature maps. Inside cell ``i``::

    node1 = up[0](node0)          node2 = up[1](node0)           (×2 resolution)
    node3 = normal[0](node1)
    node4 = normal[1](node2) + normal[2](node3) + Σ_j skip[j](cell j's node1),  j < i

``node0`` of cell 0 is the latent map (linear layer → ``bottom_width``² map, 4×4 at 32×32 and
6×6 at 48×48); ``node0`` of cell ``i > 0`` is ``node4`` of cell ``i − 1`` (the direct join), and
``node4`` of the last cell goes to ``to_rgb``.

Cross-cell skips follow AlphaGAN's reference wiring: cell ``i`` receives ``node1`` (the first
up-sampled node) of every earlier cell ``j``, up-sampled to cell ``i``'s output resolution through a
searchable up op and added into ``node4``. One up op doubles the resolution, so a skip spanning
``i − j`` cells needs ``2**(i − j)``; it applies its op ``i − j`` times with shared weights
(AlphaGAN does the same for its ×4 skip). So ``skip`` has ``i`` edges in cell ``i`` (0, 1, 2), and
``skip[j]`` of cell ``i`` comes from cell ``j``. Cell 0 keeps an empty ``"skip": []`` group so
every cell has the same keys.

This module is plain data (no torch); the networks live in :mod:`raynas.nn.damgan_g`.
"""

from __future__ import annotations

from raynas.spaces.genotype import EdgeGroup, Genotype, SearchSpace, register_space

UP_CANDIDATES: tuple[str, ...] = ("nearest", "bilinear", "deconv")
NORMAL_CANDIDATES: tuple[str, ...] = (
    "conv_1x1", "conv_3x3", "conv_5x5", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
)
N_CELLS = 3

# (source node, destination node) of each intra-cell edge, in genotype order
UP_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2))
NORMAL_EDGES: tuple[tuple[int, int], ...] = ((1, 3), (2, 4), (3, 4))
SKIP_SOURCE_NODE = 1
SKIP_DEST_NODE = 4


def skip_scale(cell: int, source_cell: int) -> int:
    """Resolution factor a skip from ``source_cell``'s node1 to ``cell``'s node4 must bridge."""
    return 2 ** (cell - source_cell)


class DamganSpace(SearchSpace):
    name = "damgan-g"
    role = "generator"
    layout = tuple(
        (
            EdgeGroup("up", len(UP_EDGES), UP_CANDIDATES),
            EdgeGroup("normal", len(NORMAL_EDGES), NORMAL_CANDIDATES),
            EdgeGroup("skip", i, UP_CANDIDATES),
        )
        for i in range(N_CELLS)
    )

    @staticmethod
    def node_label(cell: int, node: int) -> str:
        """Diagram label of a node; a cell's node0 *is* the previous cell's node4 (direct join)."""
        if node == 0:
            return "z" if cell == 0 else f"c{cell - 1}.n4"
        return f"c{cell}.n{node}"

    def edge_list(self, genotype: Genotype) -> list[tuple[str, str, str]]:
        """Every op edge as (source label, destination label, op name), for diagrams."""
        self.validate(genotype)
        out: list[tuple[str, str, str]] = []
        for ci, cell in enumerate(genotype.cells):
            for (s, d), op in zip(UP_EDGES, cell["up"]):
                out.append((self.node_label(ci, s), self.node_label(ci, d), op))
            for (s, d), op in zip(NORMAL_EDGES, cell["normal"]):
                out.append((self.node_label(ci, s), self.node_label(ci, d), op))
            for j, op in enumerate(cell["skip"]):
                out.append((self.node_label(j, SKIP_SOURCE_NODE), self.node_label(ci, SKIP_DEST_NODE), op))
        return out


SPACE = register_space(DamganSpace())
