"""DARTS-GAL (Zhang et al., Information Sciences 2021): stack DARTS cells into a network, train it, prune its
intermediate nodes by generative adversarial learning (GAL, Lin et al. CVPR 2019), retrain the pruned network,
as one resumable Tune trial per pipeline.

Phases (``trainables/pipeline.py``, each checkpointed every epoch): **baseline** (the stacked network trained
with ``train.*`` by the classifier trainer; or ``dartsgal.teacher``, a trained checkpoint) → **prune** (GAL:
the baseline is the fixed teacher, a copy with one soft mask per node is the student; ``gal``) → **retrain**
(the pruned network from scratch with the same ``train.*``). Science: ``genotype`` (the ``darts-gal`` genotype,
torch-free), ``network`` (masked and pruned networks, ``raynas arch show``), ``gal`` (discriminator, losses,
FISTA, the pruning loop), ``pipeline`` (config → phases, checks), ``draw`` (diagram), ``report`` (plots).
"""

from __future__ import annotations

from dataclasses import dataclass

from raynas.config import setting
from raynas.errors import ConfigError
from raynas.methods.dartsgal import draw, genotype  # noqa: F401  (register the darts-gal format and its drawer)
from raynas.methods.spec import Flag, Method, register
from raynas.results.schema import register_columns


@dataclass(frozen=True)
class DartsGalConfig:
    genotype: str = setting("darts-v2", doc="source cells: a shipped name, a darts or swd-nas genotype JSON (a "
                                            "search's best.json)")
    from_run: str = setting("", doc="a finished darts or swd-nas search run directory: start from its best.json "
                                    "(replaces genotype)")
    teacher: str = setting("", doc="a trained baseline (state.pt, Tune checkpoint, trial or run folder of a `raynas "
                                   "retrain`/darts-gal run): skip the baseline phase")
    layers: int = setting(5, lo=1, doc="cells of the network")
    channels: int = setting(16, lo=1, doc="C: initial channels")
    reduction_positions: tuple[int, ...] = setting((), doc="0-based reduction cells; empty = DARTS' rule "
                                                           "(layers // 3 and 2 * layers // 3)")
    baseline_epochs: int = setting(0, lo=0, doc="epochs of the baseline; 0 = train.epochs")
    retrain_epochs: int = setting(0, lo=0, doc="epochs of the retrain; 0 = the baseline's")
    prune_epochs: int = setting(100, lo=1, doc="epochs of GAL pruning (GAL: 100; the paper is silent)")
    prune_batch_size: int = setting(100, lo=1, doc="pruning batch (paper §4: 100)")
    lr: float = setting(0.01, lo=0.0, hi=10.0, lo_open=True, doc="SGD lr of the student and the discriminator")
    momentum: float = setting(0.9, lo=0.0, hi=1.0)
    weight_decay: float = setting(2e-4, lo=0.0, hi=1.0,
                                  doc="R(W_G) = ½‖W_G‖² (and D's) as SGD weight decay (GAL 2e-4)")
    lr_decay_step: int = setting(30, lo=1, doc="epochs between lr decays by 0.1 (student, D, masks; GAL StepLR(30))")
    lam: float = setting(0.6, lo=0.0, doc="λ of the sparsity term λ‖s‖₁ (GAL ResNet-56: 0.6)")
    miu: float = setting(1.0, lo=0.0, doc="weight of the data loss (GAL's miu)")
    adv_loss: str = setting("wgan", choices=("wgan", "bce"), doc="wgan (paper §3.4, with a gradient penalty) or bce "
                                                                 "(GAL's code)")
    n_critic: int = setting(5, lo=1, hi=100, doc="D steps per student step (paper §3.4: 5; GAL's code: 1)")
    gp_weight: float = setting(10.0, lo=0.0, doc="wgan: gradient-penalty weight, the critic's regulariser R(W_D)")
    d_reg: float = setting(1.0, lo=0.0, doc="bce: weight of GAL's R(W_D) = BCE(D(G(x)), real) in the D loss")
    mask_init: str = setting("1.0", doc="initial soft masks: a number, or 'normal' for GAL's N(0,1) sample (about "
                                        "half then die at the first mask step, T-G5)")
    mask_step: int = setting(200, lo=1, doc="batches between FISTA steps on the masks (GAL: 200)")
    mask_lr: float = setting(0.01, lo=0.0, hi=10.0, lo_open=True, doc="FISTA step size of the masks (GAL: = lr)")
    threshold: float = setting(0.0, doc="a node whose final mask is <= threshold is pruned (GAL: 0)")
    teacher_bn: str = setting("batch", choices=("batch", "eval"), doc="the teacher's BN statistics while pruning: "
                                                                     "batch (as the student's; GAL's code) or eval "
                                                                     "(running)")
    eval_every: int = setting(1, lo=0, doc="baseline and retrain: test scores every N epochs (reported only, never "
                                           "selected on); 0 = last epoch only")

    def __post_init__(self) -> None:
        if self.mask_init.strip().lower() != "normal":
            try:
                float(self.mask_init)
            except ValueError:
                raise ConfigError(f"dartsgal.mask_init={self.mask_init!r}: use a number (e.g. 1.0) or 'normal' "
                                  "(GAL's N(0,1) initialisation)") from None
        bad = [p for p in self.reduction_positions if not 0 <= p < self.layers]
        if bad:
            raise ConfigError(f"dartsgal.reduction_positions {list(self.reduction_positions)}: {bad} out of range; "
                              f"the network has {self.layers} cells (dartsgal.layers), positions 0..{self.layers - 1}")
        if len(set(self.reduction_positions)) != len(self.reduction_positions):
            raise ConfigError(f"dartsgal.reduction_positions {list(self.reduction_positions)} repeat a cell")
        if not self.reduction_positions and self.layers < 3:
            raise ConfigError(f"dartsgal.layers={self.layers}: DARTS' reduction cells (layers//3, 2*layers//3) need "
                              "at least 3 cells; add cells or set dartsgal.reduction_positions")


DARTS_GAL = register(Method(
    name="darts-gal", section="dartsgal", task="classify", config=DartsGalConfig, shape="pipeline",
    summary="DARTS-GAL: train stacked cells, prune their nodes by generative adversarial learning, retrain",
    spaces=("darts-gal",),
    ablation_metrics=(("test_acc", "max"), ("kept_nodes", "min")),  # params: in every table and the trade-off
    default_grid=("lam=1e-3,1e-2,0.1,0.6",),
    check="raynas.methods.dartsgal.pipeline:check_pipeline",
    ablation_plots="raynas.methods.dartsgal.report:ablation_plots",
    outputs=("pruned.json", "best.json"),
    flags=(Flag("--from-run", "start from a finished darts or swd-nas search run's best.json (sets "
                "dartsgal.from_run)", sets="dartsgal.from_run", kind="path", commands=("search", "ablate")),),
    smoke="raynas.methods.dartsgal.pipeline:smoke",
    smoke_overrides=("dartsgal.layers=3", "dartsgal.channels=4", "dartsgal.baseline_epochs=1",
                     "dartsgal.prune_epochs=1", "dartsgal.retrain_epochs=1", "dartsgal.prune_batch_size=8",
                     "dartsgal.mask_step=1", "dartsgal.n_critic=1", "train.batch_size=8", "data.limit=32",
                     "data.test_limit=32", "model.layers=3", "model.channels=4"),
))
register_columns("darts-gal", ("network", "params", "flops", "test_acc", "kept_nodes", "epochs"))

from raynas.methods.dartsgal import figures as _figures  # noqa: E402,F401  (registers its figures)
