"""EAGAN's two weight-sharing training strategies, in plain PyTorch.

* Stage 1, many-to-one: one G supernet, one fixed D. Every batch trains one generator sampled
  uniformly from the population (or, during warm-up, a uniformly random valid subnet) against D.
* Stage 2, one-to-one: P copies of the best generator, each paired with one discriminator cut from a
  shared D supernet. Every batch trains one sampled pair; after a round every G copy is reset to the
  best pair's G (weight resetting).
* Coupled (the paper's Fig. 6 baseline): one G supernet and one D supernet; every batch trains one
  (G, D) pair of the population, both paths cut from their supernets.

Both reuse ``gan_train_step`` (the one training step) with ``g_forward``/``d_forward`` pointing at
the sampled path. The Ray actor in ``trainables.eagan.actors`` only hosts these objects.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from raynas.checkpoints import capture_sampling_state, restore_sampling_state
from raynas.device import Precision
from raynas.gan.augment import Augment
from raynas.gan.step import StepConfig, gan_train_step, make_optimizers
from raynas.spaces import Genotype, get_space


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


class _RoundTrainer:
    def __init__(self, real, step_cfg: StepConfig, precision: Precision, iters_per_epoch: int, seed: int,
                 augment: Augment | None = None):
        self.real = real
        self.augment = augment  # train.augment=diffaugment: what D sees in every step, as in fixed training
        self.step_cfg = step_cfg
        self.precision = precision
        self.iters_per_epoch = iters_per_epoch
        self.rng = random.Random(seed)
        self.step = 0
        self.batches: list[int] = []  # batches each population member trained on in the last round
        self._drawn: tuple | None = None  # pick() of the current n_critic block
        self._population_key: tuple | None = None

    def _loop(self, epochs: int, pick) -> dict[str, float]:
        """Run ``epochs × iters_per_epoch`` steps; ``pick()`` returns (population index or None for a
        warm-up draw, G, D, opt_g, opt_d, g_fwd, d_fwd)."""
        d_losses: list[float] = []
        g_losses: list[float] = []
        start = time.perf_counter()
        for _ in range(epochs * self.iters_per_epoch):
            # One draw per n_critic block, so a member's G step and the D steps of its block train the same
            # pair (per-batch draws would leave each member's G updates to chance when n_critic > 1).
            if self._drawn is None or self.step % self.step_cfg.n_critic == 0:
                self._drawn = pick()
            i, G, D, opt_g, opt_d, g_fwd, d_fwd = self._drawn
            if i is not None:
                self.batches[i] += 1
            out = gan_train_step(G, D, opt_g, opt_d, self.real, self.step_cfg, step=self.step,
                                 precision=self.precision, g_forward=g_fwd, d_forward=d_fwd, augment=self.augment)
            d_losses.append(out["d_loss"])
            if out["g_loss"] is not None:
                g_losses.append(out["g_loss"])
            self.step += 1
        if self.precision.device.type == "cuda":
            torch.cuda.synchronize(self.precision.device)
        seconds = time.perf_counter() - start
        images = epochs * self.iters_per_epoch * self.step_cfg.dis_batch_size
        return {"d_loss": _mean(d_losses), "g_loss": _mean(g_losses), "train_seconds": seconds,
                "images_per_s": images / max(seconds, 1e-9),
                "batches": list(self.batches)}

    def _start(self, population: Sequence[Genotype] | None) -> None:
        """Per train() call: fresh batch counts; a new population (not another epoch of the same one)
        also starts a new n_critic block."""
        key = None if population is None else tuple(g.to_json() for g in population)
        if key is None or key != self._population_key:
            self._drawn = None
        self._population_key = key
        self.batches = [0] * (0 if population is None else len(population))


    def _rng_state(self) -> dict[str, Any]:
        """Subnet sampling, latents (global RNGs) and real batches: a resumed round draws the same."""
        return {"python": self.rng.getstate(), "step": self.step, "sampling": capture_sampling_state(self.real)}

    def _load_rng_state(self, state: dict[str, Any]) -> None:
        self.rng.setstate(state["python"])
        self.step = int(state["step"])
        restore_sampling_state(state["sampling"], self.real)


class _OneGOneD(_RoundTrainer):
    """One G (supernet) and one D with one optimiser each: what stage 1 and the coupled baseline share."""

    def __init__(self, g_supernet: nn.Module, discriminator: nn.Module, real, step_cfg: StepConfig,
                 precision: Precision, *, lr_g: float, lr_d: float, betas: tuple[float, float],
                 iters_per_epoch: int, seed: int = 0, augment: Augment | None = None):
        super().__init__(real, step_cfg, precision, iters_per_epoch, seed, augment)
        self.G = precision.prepare(g_supernet)
        self.D = precision.prepare(discriminator)
        self.opt_g, self.opt_d = make_optimizers(self.G.parameters(), self.D.parameters(), lr_g, lr_d, betas=betas)

    def train(self, population: Sequence[Genotype] | None, epochs: int) -> dict[str, float]:
        """Train; ``population=None`` is the warm-up (a fresh random valid individual per n_critic block)."""
        self.G.train()
        self.D.train()
        self._start(population)

        def pick():
            i = None if population is None else self.rng.randrange(len(population))
            individual = self.space.sample(self.rng) if i is None else population[i]
            g_forward, d_forward = self._paths(individual)
            return i, self.G, self.D, self.opt_g, self.opt_d, g_forward, d_forward

        return self._loop(epochs, pick)

    def _paths(self, individual: Genotype):
        """(g_forward, d_forward) of one individual; None = the whole module."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "rng": self._rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self._load_rng_state(state["rng"])


class ManyToOneTrainer(_OneGOneD):
    """Stage 1: G supernet + fixed D; one population member per batch."""

    def __init__(self, g_supernet: nn.Module, discriminator: nn.Module, *args: Any, **kwargs: Any):
        super().__init__(g_supernet, discriminator, *args, **kwargs)
        self.space = get_space(self.G.space_name)

    def _paths(self, g: Genotype):
        return (lambda z: self.G(z, g)), None

    def generator(self, genotype: Genotype) -> nn.Module:
        """The derived generator for ``genotype`` with the supernet's current weights."""
        return self.G.export(genotype)


class OneToOneTrainer(_RoundTrainer):
    """Stage 2: P copies of the best G, each paired with one D cut from the shared D supernet."""

    def __init__(self, best_generator: nn.Module, d_supernet: nn.Module, population_size: int, real,
                 step_cfg: StepConfig, precision: Precision, *, lr_g: float, lr_d: float,
                 betas: tuple[float, float], iters_per_epoch: int, seed: int = 0, augment: Augment | None = None):
        super().__init__(real, step_cfg, precision, iters_per_epoch, seed, augment)
        self.lr_g, self.betas = lr_g, betas
        self.D = precision.prepare(d_supernet)
        self.space = get_space(self.D.space_name)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr_d, betas=betas)
        template = precision.prepare(best_generator)
        self.Gs = nn.ModuleList([copy.deepcopy(template) for _ in range(population_size)])
        self.opt_gs = [torch.optim.Adam(g.parameters(), lr=lr_g, betas=betas) for g in self.Gs]
        self.owners: list[str | None] = [None] * population_size  # the D genotype each G copy trains with
        self.order = list(range(population_size))  # population position -> G copy, for the last population

    def _pair_up(self, population: Sequence[Genotype]) -> list[int]:
        """G copy for each population position. A D that survives selection keeps the G copy it trained
        with; new offspring take the copies of the eliminated. Without weight resetting the copies
        differ, so pairing by position would hand a survivor some other D's generator."""
        if len(population) != len(self.Gs):
            raise ValueError(f"population has {len(population)} members but there are {len(self.Gs)} G copies")
        keys = [g.to_json() for g in population]
        order: list[int | None] = [None] * len(keys)
        taken: set[int] = set()
        for i, key in enumerate(keys):
            copy_i = next((j for j, owner in enumerate(self.owners) if owner == key and j not in taken), None)
            if copy_i is not None:
                order[i] = copy_i
                taken.add(copy_i)
        free = iter(j for j in range(len(self.Gs)) if j not in taken)
        resolved = [o if o is not None else next(free) for o in order]
        self.owners = [None] * len(self.Gs)
        for i, j in enumerate(resolved):
            self.owners[j] = keys[i]
        return resolved

    def train(self, population: Sequence[Genotype] | None, epochs: int) -> dict[str, float]:
        """Pair i = (its G copy, D subnet population[i]); warm-up trains G copy 0 with random D subnets."""
        self.Gs.train()
        self.D.train()
        if population is not None:
            self.order = self._pair_up(population)
        self._start(population)

        def pick():
            i = None if population is None else self.rng.randrange(len(population))
            j, d = (0, self.space.sample(self.rng)) if i is None else (self.order[i], population[i])
            return i, self.Gs[j], self.D, self.opt_gs[j], self.opt_d, None, (lambda x: self.D(x, d))

        stats = self._loop(epochs, pick)
        if population is None:  # after warm-up every pair starts from the warmed-up G
            self._reset_to_copy(0)
        return stats

    def generator(self, index: int) -> nn.Module:
        """The G of the pair at population position ``index`` (of the last population trained)."""
        return self.Gs[self.order[index]]

    def generators_in_population_order(self) -> list[nn.Module]:
        return [self.Gs[j] for j in self.order]

    def reset_generators(self, best: int) -> None:
        """Weight resetting: every G copy (and its optimiser state) becomes that of the pair at population
        position ``best``."""
        self._reset_to_copy(self.order[best])

    def _reset_to_copy(self, best: int) -> None:
        state = self.Gs[best].state_dict()
        opt_state = self.opt_gs[best].state_dict()
        for i, g in enumerate(self.Gs):
            if i != best:
                g.load_state_dict(state)  # copies values
                # Optimizer.load_state_dict keeps same-device tensors by reference: copy per optimiser,
                # or every G copy would share (and jointly mutate) one set of Adam moments.
                self.opt_gs[i].load_state_dict(copy.deepcopy(opt_state))

    def state_dict(self) -> dict[str, Any]:
        return {"Gs": self.Gs.state_dict(), "D": self.D.state_dict(), "opt_d": self.opt_d.state_dict(),
                "opt_gs": [o.state_dict() for o in self.opt_gs], "rng": self._rng_state(),
                "owners": list(self.owners), "order": list(self.order)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.Gs.load_state_dict(state["Gs"])
        self.D.load_state_dict(state["D"])
        self.opt_d.load_state_dict(state["opt_d"])
        for opt, s in zip(self.opt_gs, state["opt_gs"]):
            opt.load_state_dict(s)
        self._load_rng_state(state["rng"])
        self.owners = list(state.get("owners", [None] * len(self.Gs)))
        self.order = list(state.get("order", range(len(self.Gs))))


class CoupledTrainer(_OneGOneD):
    """The coupled baseline: individuals are ``eagan-gd`` (G, D) pairs sharing a G and a D supernet."""

    def __init__(self, g_supernet: nn.Module, d_supernet: nn.Module, *args: Any, **kwargs: Any):
        super().__init__(g_supernet, d_supernet, *args, **kwargs)
        self.space = get_space("eagan-gd")

    def _paths(self, pair: Genotype):
        g, d = self.space.split(pair)
        return (lambda z: self.G(z, g)), (lambda x: self.D(x, d))

    def generator(self, genotype: Genotype) -> nn.Module:
        """The derived generator of an ``eagan-g`` genotype (or of a pair's G) with the current weights."""
        if genotype.space == self.space.name:
            genotype = self.space.split(genotype)[0]
        return self.G.export(genotype)
