"""The DARTS-GAL pipeline's phases from a resolved config, in plain PyTorch (the Tune trainable
``trainables/pipeline.py`` drives and checkpoints them), and the checks before any run.

* ``baseline_trainer()``: the unpruned network (``darts-gal`` genotype with every node) under
  ``raynas.classify.trainer.ClassifierTrainer`` with ``train.*`` (``dartsgal.baseline_epochs`` overriding
  ``train.epochs``), on the whole training split; its last epoch is the teacher. Test scores are reported
  every epoch and never select anything.
* ``pruner(teacher_state)``: ``gal.GalPruner`` of a masked copy that starts from the teacher's weights.
* ``prune(masks)``: the pruned genotype (nodes at or below ``dartsgal.threshold`` go); ``AllPruned`` when
  nothing is left.
* ``retrain_trainer(pruned)``: the pruned network from scratch with the baseline's recipe (and epochs, unless
  ``dartsgal.retrain_epochs``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from raynas.classify.data import ClassifyData
from raynas.classify.trainer import ClassifierTrainer
from raynas.config import RaynasConfig
from raynas.data import dataset_classes
from raynas.data.specs import get_spec
from raynas.device import training_setup
from raynas.errors import CheckpointError, ConfigError, RaynasError
from raynas.methods.dartsgal.gal import GalPruner
from raynas.methods.dartsgal.genotype import DartsGalGenotype, SourceCells, load_source
from raynas.methods.dartsgal.network import GalNetwork


class AllPruned(ConfigError):
    """Every node mask ended at or below the threshold: there is no network left to retrain."""


def source_reference(cfg: RaynasConfig) -> str:
    """The genotype file the pipeline stacks: ``dartsgal.from_run``'s best.json, else ``dartsgal.genotype``."""
    d = cfg.dartsgal
    if not d.from_run:
        return d.genotype
    run = Path(d.from_run)
    if run.is_file():
        return str(run)
    best = run / "best.json"
    if not best.is_file():
        raise ConfigError(f"dartsgal.from_run={d.from_run}: {best} does not exist; point --from-run at the directory "
                          "of a finished `raynas search darts` or `raynas search swd-nas` run (it holds best.json)")
    return str(best)


def describe(g: DartsGalGenotype) -> str:
    return (f"{g.source.space} cells, {g.layers} cells, C={g.channels}, {g.in_channels} image channel(s), "
            f"reductions at {list(g.reduction_positions)}")


def _strip_auxiliary(weights: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in weights.items() if not k.startswith("auxiliary_head.")}


def check_weights(net: torch.nn.Module, weights: Any, what: str, genotype: DartsGalGenotype) -> dict[str, Any]:
    """``weights`` (a state dict) loads into ``net`` exactly; otherwise a CheckpointError saying how they differ."""
    if not isinstance(weights, dict):
        raise CheckpointError(f"{what} holds no network weights")
    weights = _strip_auxiliary(weights)
    want = net.state_dict()
    missing = [k for k in want if k not in weights]
    extra = [k for k in weights if k not in want]
    shapes = [k for k in want if k in weights and tuple(weights[k].shape) != tuple(want[k].shape)]
    if missing or extra or shapes:
        parts = []
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} tensor(s) of other shapes (e.g. {k}: {tuple(weights[k].shape)} there, "
                         f"{tuple(want[k].shape)} here)")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        raise CheckpointError(f"{what} does not match the genotype ({describe(genotype)}): {'; '.join(parts)}. Point "
                              "dartsgal.teacher at a baseline trained with these cells, layers and channels, or "
                              "change dartsgal.genotype/layers/channels/reduction_positions to the teacher's")
    return weights


def load_teacher(path: str, genotype: DartsGalGenotype, num_classes: int) -> dict[str, Any]:
    """The network weights in a checkpoint of a trained baseline (``raynas train``/``retrain``: ``model``; a
    darts-gal run: ``teacher``), checked against ``genotype``'s unpruned network."""
    from raynas.checkpoints import find_state_file, load_checkpoint

    state_file = find_state_file(path)
    state = load_checkpoint(state_file)
    weights = state.get("teacher") if isinstance(state.get("teacher"), dict) else state.get("model")
    with torch.device("meta"):
        net = GalNetwork(genotype, num_classes)
    return check_weights(net, weights, f"the teacher checkpoint {state_file}", genotype)


class DartsGalPipeline:
    """The phases of one DARTS-GAL run for a resolved config (``cfg.dartsgal``, ``cfg.train``, ``cfg.data``)."""

    def __init__(self, cfg: RaynasConfig, device: torch.device | None = None):
        self.cfg, self.d = cfg, cfg.dartsgal
        self.device = device
        self.source: SourceCells = load_source(source_reference(cfg))
        self.num_classes = dataset_classes(cfg.data.name, cfg.data.root)  # a folder's: its class folders
        self.genotype = DartsGalGenotype.full(self.source, self.d.layers, self.d.channels, cfg.data.channels,
                                              self.d.reduction_positions or None)

    # ------------------------------------------------------------------ pieces
    def train_config(self, epochs: int) -> Any:
        return dataclasses.replace(self.cfg.train, epochs=int(epochs) or self.cfg.train.epochs)

    def data(self) -> ClassifyData:
        """The whole training split (``train_portion`` is for searches) and the test split."""
        return ClassifyData.from_config(dataclasses.replace(self.cfg.data, train_portion=1.0),
                                        seed=self.cfg.train.seed)

    def network(self, genotype: DartsGalGenotype | None = None, mask_init: str | None = None) -> GalNetwork:
        return GalNetwork(genotype or self.genotype, self.num_classes, mask_init=mask_init)

    def flops(self, genotype: DartsGalGenotype | None = None) -> int:
        """FLOPs per image (``raynas arch show``'s count) at the run's resolution. Pruning can raise them: an
        emptied reduction cell passes its input through unreduced, so later cells run on larger maps."""
        from raynas.nn.profile import count_flops

        g = genotype or self.genotype
        size = self.cfg.data.resolution
        return count_flops(self.network(g), torch.zeros(1, g.in_channels, size, size))

    # ------------------------------------------------------------------ phases
    def baseline_trainer(self) -> ClassifierTrainer:
        return ClassifierTrainer(lambda: self.network(), self.data(), self.train_config(self.d.baseline_epochs),
                                 device=self.device)

    def teacher_scores(self, weights: dict[str, Any]) -> tuple[dict[str, float], int]:
        """Test scores and parameters of a given teacher (``dartsgal.teacher``): what the baseline phase reports."""
        trainer = self.baseline_trainer()
        trainer.model.load_state_dict(_strip_auxiliary(weights))
        return trainer.score(), trainer.headline_params()

    def pruner(self, teacher_weights: dict[str, Any]) -> GalPruner:
        """The GAL pruner: the teacher and a masked student that starts from its weights."""
        setup = training_setup(self.cfg.train, self.device, seed_offset=1)
        teacher = self.network()
        teacher.load_state_dict(_strip_auxiliary(teacher_weights))
        student = self.network(mask_init=self.d.mask_init)
        missing, unexpected = student.load_state_dict(_strip_auxiliary(teacher_weights), strict=False)
        if unexpected or any(not k.endswith(".mask") for k in missing):
            raise CheckpointError(f"the teacher's weights do not fit the student ({missing[:2]}, {unexpected[:2]})")
        data = self.data().to(setup.device)
        student = setup.precision.prepare(student)
        teacher = setup.precision.prepare(teacher)
        return GalPruner(teacher, student, data, self.d, device=setup.device, precision=setup.precision)

    def prune(self, masks: list[list[float]]) -> DartsGalGenotype:
        """The pruned genotype of ``masks``; ``AllPruned`` when every node goes."""
        pruned = self.genotype.with_masks(masks, self.d.threshold)
        if pruned.kept_nodes == 0:
            flat = [v for m in masks for v in m]
            raise AllPruned(f"GAL pruned all {len(flat)} nodes: every soft mask ended at or below "
                            f"dartsgal.threshold={self.d.threshold:g} (largest {max(flat):.3g}) with "
                            f"dartsgal.lam={self.d.lam:g}; lower dartsgal.lam (e.g. to {self.d.lam / 10:g}) or "
                            "dartsgal.mask_lr, or use fewer dartsgal.prune_epochs")
        return pruned

    def retrain_trainer(self, pruned: DartsGalGenotype) -> ClassifierTrainer:
        epochs = self.d.retrain_epochs or self.d.baseline_epochs
        return ClassifierTrainer(lambda: self.network(pruned), self.data(), self.train_config(epochs),
                                 device=self.device)


# ============================================================================ checks, smoke
def check_pipeline(cfg: RaynasConfig) -> None:
    """Before anything runs: the source genotype, the stacked network for this dataset's images, the dataset,
    and a given teacher checkpoint against the genotype."""
    from raynas.data import resolve_root

    spec = get_spec(cfg.data.name)
    pipe = DartsGalPipeline(cfg, torch.device("cpu"))  # a folder's classes: read from it, or a DatasetError
    with torch.device("meta"):
        pipe.network(mask_init="1.0").check_resolution(cfg.data.resolution)
    resolve_root(spec.name, cfg.data.root, split=spec.train_split)
    resolve_root(spec.name, cfg.data.root, split=spec.test_split)
    if cfg.dartsgal.teacher:
        load_teacher(cfg.dartsgal.teacher, pipe.genotype, pipe.num_classes)


def run_in_process(cfg: RaynasConfig, device: torch.device | None = None) -> dict[str, Any]:
    """All three phases without Ray or checkpoints (tests, smoke): ``baseline``/``pruned`` genotypes and scores."""
    pipe = DartsGalPipeline(cfg, device)
    if cfg.dartsgal.teacher:
        weights = load_teacher(cfg.dartsgal.teacher, pipe.genotype, pipe.num_classes)
        before, params = pipe.teacher_scores(weights)
    else:
        trainer = pipe.baseline_trainer()
        while not trainer.done:
            trainer.train_epoch()
        before, params = trainer.score(), trainer.headline_params()
        weights = trainer.model.state_dict()
    pruner = pipe.pruner(weights)
    while not pruner.done:
        pruner.train_epoch()
    masks = pruner.student.mask_table()
    try:
        pruned = pipe.prune(masks)
    except RaynasError:
        return {"baseline": pipe.genotype, "baseline_scores": before, "baseline_params": params, "pruned": None,
                "masks": masks}
    retrain = pipe.retrain_trainer(pruned)
    while not retrain.done:
        retrain.train_epoch()
    return {"baseline": pipe.genotype, "baseline_scores": before, "baseline_params": params, "pruned": pruned,
            "masks": masks, "scores": retrain.score(), "params": retrain.headline_params()}


def smoke(cfg: RaynasConfig) -> DartsGalGenotype:
    """The whole pipeline in-process at the contract test's tiny size; the pruned genotype (or the unpruned one
    when every mask died)."""
    out = run_in_process(cfg, torch.device("cpu"))
    return out["pruned"] or out["baseline"]
