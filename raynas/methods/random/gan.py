"""Random search with weight sharing over DAMGAN's generator space (``damgan-g``): the GAN baseline of
``raynas compare --methods damgan,random-gan`` (Li & Talwalkar's recipe on DAMGAN's own supernet).

The supernet, discriminator, optimisers and GAN step are DAMGAN's (``DamganSearch``, same sizes and settings,
read from ``random_gan.*``); the only difference is the architecture: every training step runs one uniformly
sampled path (each edge fixed to a sampled op), so no attention or α decides anything. After the last epoch
``random_gan.candidates`` uniform samples (fixed by ``train.seed``) are scored by the trained supernet's
IS/FID along their path, exactly as DAMGAN scores its derived subnet, and the best by FID (IS where FID is
not computed) is the result.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from raynas.config import RaynasConfig
from raynas.errors import ConfigError
from raynas.gan.step import gan_train_step
from raynas.methods.damgan.generator_search import DamganSearch
from raynas.methods.random.search import RngState
from raynas.nn.damgan_g import SupernetSubnet
from raynas.spaces import Genotype
from searchers.random_search import sample_genotype

SPACE = "damgan-g"


def candidate_genotypes(cfg: RaynasConfig, n: int) -> list[Genotype]:
    """The ``n`` candidates ranked at the end: fixed by ``train.seed``, independent of the training paths."""
    rng = random.Random(f"random-gan-candidates-{cfg.train.seed}")
    return [sample_genotype(SPACE, rng) for _ in range(n)]


def rank_key(scores: dict[str, Any]) -> float:
    """Lower is better: FID, or minus IS where FID is not among ``eval.metrics``."""
    fid = scores.get("fid")
    if fid is not None and fid == fid:
        return float(fid)
    return -float(scores.get("is_mean") or 0.0)


class RandomGanSearch(DamganSearch):
    """DAMGAN's supernet trained on uniformly sampled paths; candidates ranked by IS/FID at the end. Before
    the last epoch the derived genotype is the first candidate (unscored: ranking needs the trained weights)."""

    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None):
        super().__init__(cfg, device, section=cfg.random_gan)
        self.paths = RngState(f"random-gan-paths-{cfg.train.seed}")
        self.candidates = candidate_genotypes(cfg, self.section.candidates)
        self.ranking: list[tuple[Genotype, dict[str, Any]]] = []
        self._ranked_at: int | None = None

    def train_step(self) -> dict[str, float | None]:
        """One D step (a G step every ``n_critic``) with the generator on one uniformly sampled path."""
        path = SupernetSubnet(self.G, sample_genotype(SPACE, self.paths.rng))
        out = gan_train_step(path, self.D, self.opt_g, self.opt_d, self.real, self.step_cfg, step=self.step,
                             precision=self.precision)
        return {"d_loss": out["d_loss"], "g_loss": out["g_loss"]}

    def rank(self) -> list[tuple[Genotype, dict[str, Any]]]:
        """Every candidate with its IS/FID on the supernet, best first (ties: sampling order), once per epoch."""
        if self._ranked_at != self.epoch:
            scored = [(g, self.evaluate_subnet(g).as_row()) for g in self.candidates]
            self.ranking = sorted(scored, key=lambda gs: rank_key(gs[1]))
            self._ranked_at = self.epoch
        return self.ranking

    def eval_due(self) -> bool:
        """Only the last epoch (``random_gan.eval_every`` does not apply): before the ranking, the derived
        genotype is an unranked sample, and its IS/FID says nothing about the search."""
        return self.done()

    def derive_genotype(self) -> Genotype:
        return self.rank()[0][0] if self.done() else self.candidates[0]

    def evaluate(self, genotype: Genotype) -> dict[str, Any]:
        if self.done():
            for g, scores in self.rank():
                if g == genotype:
                    return dict(scores)
        return self.evaluate_subnet(genotype).as_row()

    def alpha_table(self) -> dict[str, list[float]]:
        """The current pick as a one-hot table over each edge's candidates (the edge naming of DAMGAN's)."""
        with self.G.fixed(self.derive_genotype()):
            return {name: [float(i == edge.fixed) for i in range(len(edge.candidates))]
                    for name, edge in self.G.named_edges()}

    def row_fields(self) -> dict[str, Any]:
        return {"kprime": self.section.kprime, "seed": self.cfg.train.seed}

    def stateful(self) -> dict[str, Any]:
        return {**super().stateful(), "paths": self.paths}


def check_search(cfg: RaynasConfig) -> None:
    """DAMGAN's checks on ``random_gan.*``; α is never learned, so the darts selector's settings do not apply."""
    from raynas.gan.preflight import preflight
    from raynas.methods.damgan.generator_search import check_search_config

    if cfg.random_gan.selector != "da" or cfg.random_gan.bilevel:
        raise ConfigError("random_gan.selector and random_gan.bilevel do not apply: random search fixes every "
                          "edge to a sampled op (leave them at da / false)")
    check_search_config(cfg, cfg.random_gan)
    preflight(cfg, check_model=False)


def smoke(cfg: RaynasConfig) -> Genotype:
    """One search epoch in-process (the contract test's route to a genotype)."""
    search = RandomGanSearch(cfg, device=torch.device("cpu"))
    search.train_epoch()
    return search.derive_genotype()
