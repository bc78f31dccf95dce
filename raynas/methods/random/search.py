"""The random baseline's searches in plain PyTorch, on the differentiable search loop so that the same
trainables run, checkpoint and resume them (``trainables.search_trial``): ``WeightSharingSearch`` trains
DARTS' supernet one uniformly sampled path per step and ranks candidates on it; ``ScratchSearch`` trains one
sampled candidate from scratch per "epoch"."""

from __future__ import annotations

import dataclasses
import random
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raynas.classify.step import classify_train_step, evaluate_classifier
from raynas.config import RaynasConfig
from raynas.errors import ConfigError
from raynas.nn.darts_search import DartsSupernet, edge_index
from searchers.classifier_search import ClassifierSearch, retrain_params
from searchers.differentiable import DifferentiableSearch
from searchers.random_search import sample_genotype


class RngState:
    """A ``random.Random`` as a checkpointable object (``state_dict``/``load_state_dict``)."""

    def __init__(self, seed: Any):
        self.rng = random.Random(seed)

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {"version": version, "internal": list(internal), "gauss": gauss}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate((state["version"], tuple(state["internal"]), state["gauss"]))


def candidate_genotypes(cfg: RaynasConfig, n: int) -> list[Any]:
    """The ``n`` candidates a search ranks: fixed by ``train.seed`` (independent of the training paths), so
    a resumed or repeated search ranks the same ones."""
    r = cfg.random
    rng = random.Random(f"random-candidates-{cfg.train.seed}")
    return [sample_genotype(r.space, rng, steps=r.steps, multiplier=r.multiplier) for _ in range(n)]


def one_hot_weights(net: DartsSupernet, genotype) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixing weights (normal, reduce) that run exactly ``genotype``'s path through the supernet (the reference
    ``PathNet`` must match)."""
    weights = []
    for cell in (genotype.normal, genotype.reduce):
        w = torch.zeros(net.num_edges, len(net.primitives))
        for k, (op, state) in enumerate(cell.ops):
            w[edge_index(k // 2, state), net.primitives.index(op)] = 1.0
        weights.append(w)
    device = next(net.parameters()).device
    return weights[0].to(device), weights[1].to(device)


def pick_table(genotype) -> dict[str, list[float]]:
    """The picked genotype as an α table (one-hot over DARTS' primitives on the edges it uses, zeros on the
    others), in the edge naming of its space's supernet, so the α figure and ``alpha.json`` show the pick."""
    from raynas.spaces.darts import PRIMITIVES

    cells = ([("normal", genotype.normal), ("reduce", genotype.reduce)] if genotype.space == "darts" else
             [(f"cell{c}", cell) for c, cell in enumerate(genotype.cells)])
    table: dict[str, list[float]] = {}
    for name, cell in cells:
        for i in range(cell.steps):
            for j in range(2 + i):
                table[f"{name}.{i + 2}.{j}"] = [float((op, j) in cell.node_inputs(i)) for op in PRIMITIVES]
    return table


class PathNet(nn.Module):
    """The supernet along one sampled path (``genotype``): only the chosen op of each chosen edge runs, with the
    supernet's own weights, so a step trains (and a score reads) just that subnet, as in Li & Talwalkar. The same
    function as the supernet under ``one_hot_weights(genotype)``, at a fraction of the cost."""

    def __init__(self, supernet: DartsSupernet):
        super().__init__()
        self.supernet = supernet
        self.genotype: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.supernet
        s0 = s1 = net.stem(x)
        for cell in net.cells:
            s0, s1 = s1, self._cell(cell, self.genotype.reduce if cell.reduction else self.genotype.normal, s0, s1)
        return net.classifier(net.global_pooling(s1).flatten(1))

    @staticmethod
    def _cell(cell: nn.Module, genotype, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [cell.preprocess0(s0), cell.preprocess1(s1)]
        for node in range(cell.steps):
            (op_a, a), (op_b, b) = genotype.node_inputs(node)
            states.append(cell.edges[edge_index(node, a)].ops[op_a](states[a])
                          + cell.edges[edge_index(node, b)].ops[op_b](states[b]))
        return torch.cat(states[-cell.multiplier:], dim=1)


class WeightSharingSearch(ClassifierSearch):
    """Random search with weight sharing: uniform paths train the supernet; the last epoch ranks
    ``random.candidates`` samples by their validation accuracy on it. Earlier epochs report the best of the
    first few candidates (a cheap preview, so the curves have a value)."""

    PREVIEW = 4

    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None):
        super().__init__(cfg, cfg.random, device)
        self.paths = RngState(f"random-paths-{cfg.train.seed}")
        self.path_net = PathNet(self.supernet)
        self.ranking: list[tuple[Any, dict[str, float]]] = []
        self._ranked_at: tuple[int, bool] | None = None

    def build_supernet(self) -> DartsSupernet:
        r = self.cfg.random
        net = DartsSupernet(r.channels, self.num_classes, r.layers, steps=r.steps, multiplier=r.multiplier,
                            in_channels=self.cfg.data.channels)
        for p in net.arch_parameters():  # α is never used: every step runs one sampled path
            p.requires_grad_(False)
        return net

    def train_step(self) -> dict[str, float | None]:
        x, y = self.next_train_batch()
        g = sample_genotype("darts", self.paths.rng, steps=self.cfg.random.steps,
                            multiplier=self.cfg.random.multiplier)
        self.path_net.genotype = g
        out = classify_train_step(self.path_net, self.optimizer, self.precision.images(x), y,
                                  precision=self.precision, grad_clip=self.section.grad_clip)
        return {"train_loss": out["loss"], "train_acc": out["correct"] / out["batch_size"]}

    def score(self, genotype) -> dict[str, float]:
        """The trained supernet's validation loss and accuracy along ``genotype``'s path."""
        self.path_net.genotype = genotype
        scores = evaluate_classifier(self.path_net, self.data.eval_batches("val", self.cfg.train.eval_batch_size),
                                     self.precision)
        return {"val_loss": scores["loss"], "val_acc": scores["top1"]}

    def rank(self) -> list[tuple[Any, dict[str, float]]]:
        """Candidates with their scores, best first (ties: sampling order), computed once per epoch (and again
        when the search is cut short, so the full ranking runs at its new end)."""
        if self._ranked_at != (self.epoch, self.done()):
            n = self.cfg.random.candidates if self.done() else min(self.PREVIEW, self.cfg.random.candidates)
            scored = [(g, self.score(g)) for g in candidate_genotypes(self.cfg, n)]
            self.ranking = sorted(scored, key=lambda gs: -gs[1]["val_acc"])
            self._ranked_at = (self.epoch, self.done())
        return self.ranking

    def derive_genotype(self):
        return self.rank()[0][0]

    def evaluate(self, genotype) -> dict[str, Any]:
        for g, scores in self.rank():
            if g == genotype:
                return dict(scores)
        return self.score(genotype)

    def alpha_table(self) -> dict[str, list[float]]:
        return pick_table(self.derive_genotype())

    def stateful(self) -> dict[str, Any]:
        return {**super().stateful(), "paths": self.paths}


class ScratchSearch(DifferentiableSearch):
    """One sampled candidate per epoch, trained from scratch for ``random.scratch_epochs`` on the training part
    and scored on the validation part; the best so far is the derived genotype. ``random.epochs`` bounds the
    training epochs of all candidates together."""

    headline_metrics = ("val_acc",)

    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None):
        super().__init__()
        from raynas.device import training_setup

        self.cfg = cfg
        r = cfg.random
        self.device = training_setup(cfg.train, device).device
        self.epochs = max(1, min(r.candidates, r.epochs // r.scratch_epochs))
        self.iters_per_epoch, self.images_per_step = 0, r.batch_size
        self.candidates = candidate_genotypes(cfg, self.epochs)
        self.scores: list[dict[str, float]] = []
        self.train_flops = 0.0  # 3 x forward FLOPs per image (forward + backward) x images trained, all candidates
        self._num_classes: int | None = None

    def train_epoch(self) -> dict[str, float]:
        import time

        from raynas.classify.trainer import ClassifierTrainer

        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="raynas-random-") as tmp:
            path = Path(tmp) / "candidate.json"
            self.candidates[self.epoch].save(path)
            trainer = ClassifierTrainer.for_config(self.candidate_config(path), self.device, holdout=True)
        self._num_classes = trainer.data.num_classes
        self.train_flops += 3.0 * self.forward_flops(trainer) * trainer.epochs * trainer.data.sizes.get("train", 0)
        stats: dict[str, float] = {}
        while trainer.epoch < trainer.epochs:
            stats = trainer.train_epoch()
        scores = trainer.score()
        self.scores.append({"val_loss": scores["val_loss"], "val_acc": scores["val_acc"]})
        self.epoch += 1
        self.step += trainer.epochs
        seconds = time.perf_counter() - start
        return {"epoch": self.epoch, "train_loss": float(stats.get("train_loss", float("nan"))),
                "train_acc": float(stats.get("train_acc", float("nan"))), "train_seconds": seconds}

    @staticmethod
    def forward_flops(trainer) -> int:
        from raynas.nn.profile import count_flops

        x, _ = next(iter(trainer.data.eval_batches("val", 1)))
        return count_flops(trainer.model, x)

    def candidate_config(self, genotype_path: Path) -> RaynasConfig:
        """A fixed run of the genotype at ``genotype_path`` at the search network's size (SWD-NAS's five cells
        need 5 layers), ``random.scratch_epochs`` long."""
        from raynas.fixed_training import retrain_config

        r = self.cfg.random
        cfg = retrain_config(self.cfg, genotype_path, r.scratch_epochs)
        layers = max(r.layers, 5) if r.space == "swd-nas" else r.layers
        model = dataclasses.replace(cfg.model, layers=layers, channels=r.channels)
        train = dataclasses.replace(cfg.train, batch_size=r.batch_size, lr=r.lr)
        return dataclasses.replace(cfg, model=model, train=train)

    def best(self) -> int:
        return max(range(len(self.scores)), key=lambda i: (self.scores[i]["val_acc"], -i))

    def derive_genotype(self):
        return self.candidates[self.best()]

    def evaluate(self, genotype) -> dict[str, Any]:
        return dict(self.scores[self.best()])

    def eval_due(self) -> bool:
        return True

    def alpha_table(self) -> dict[str, list[float]]:
        return pick_table(self.derive_genotype())

    def derived_params(self, genotype) -> int:
        return retrain_params(self.cfg, genotype, self._num_classes or 10)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "scores": list(self.scores), "train_flops": self.train_flops}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.scores = [dict(s) for s in state["scores"]]
        self.train_flops = float(state["train_flops"])


def random_search(cfg: RaynasConfig, device: torch.device | None = None) -> DifferentiableSearch:
    """The search ``random.mode`` names (``Method.search`` of the random method)."""
    return (WeightSharingSearch if cfg.random.mode == "weight-sharing" else ScratchSearch)(cfg, device)


def check_search(cfg: RaynasConfig) -> None:
    """Before anything runs: the mode fits the space, the network's shape and the dataset."""
    from raynas.classify.preflight import preflight_search

    r = cfg.random
    if r.multiplier > r.steps:
        raise ConfigError(f"random.multiplier={r.multiplier} concatenates more nodes than a cell has "
                          f"(random.steps={r.steps})")
    if r.mode == "weight-sharing" and r.space != "darts":
        raise ConfigError(f"random.mode=weight-sharing ranks samples on DARTS' supernet, which shares one cell "
                          f"per type; random.space={r.space} needs random.mode=scratch")
    preflight_search(cfg, lambda: DartsSupernet(r.channels, 10, r.layers, steps=r.steps, multiplier=r.multiplier,
                                                in_channels=cfg.data.channels))


def smoke(cfg: RaynasConfig):
    """One search epoch in-process (the contract test's route to a genotype)."""
    search = random_search(cfg, torch.device("cpu"))
    search.train_epoch()
    return search.derive_genotype()
