"""Task classify: ClassifierTrainer schedule, drop-path ramp, exact resume, test split for reporting only."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from raynas.classify import ClassifierTrainer, ClassifyData
from raynas.config import ClassifyModelConfig, ClassifyTrainConfig, from_dict
from raynas.config import DataConfig as ClassifyDataConfig
from raynas.errors import CheckpointError, ConfigError, TrainingDiverged

pytestmark = pytest.mark.usefixtures("hermetic_data")  # no network, no user data, a fresh cache


class TinyNet(nn.Module):
    """A DARTS-shaped toy: BN (running statistics), drop path from the global RNG, an auxiliary head."""

    def __init__(self, in_channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, stride=4, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, classes)
        self.aux = nn.Linear(4, classes)
        self.drop_path_prob = 0.0
        self.drop_seen: list[float] = []

    def forward(self, x):
        h = F.relu(self.bn(self.conv(x)))
        if self.training:
            self.drop_seen.append(self.drop_path_prob)
            if self.drop_path_prob > 0:
                keep = 1.0 - self.drop_path_prob
                h = h * torch.bernoulli(torch.full((h.shape[0], 1, 1, 1), keep)) / keep
        f = h.mean((2, 3))
        return self.head(f), (self.aux(f) if self.training else None)


def _data(**kw) -> ClassifyData:
    args = {"limit": 48, "test_limit": 16, "train_portion": 0.5, "seed": 1, "flip": True} | kw
    return ClassifyData("embedded", **args)


def _cfg(**kw) -> ClassifyTrainConfig:
    args = {"epochs": 4, "batch_size": 8, "lr": 0.1, "lr_min": 0.0, "device": "cpu", "eval_batch_size": 16,
            "cutout_length": 8} | kw
    return ClassifyTrainConfig(**args)


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- config
def test_config_defaults_are_darts_retrain_and_validated():
    t, m = ClassifyTrainConfig(), ClassifyModelConfig()
    assert (t.epochs, t.batch_size, t.lr, t.lr_min, t.momentum, t.weight_decay, t.grad_clip) == \
        (600, 96, 0.025, 0.0, 0.9, 3e-4, 5.0)
    assert (t.cutout, t.cutout_length, t.auxiliary_weight, t.drop_path_prob, t.schedule) == \
        (True, 16, 0.4, 0.2, "cosine")
    assert (m.layers, m.channels, m.auxiliary, m.reduction_positions, m.stem_multiplier, m.imagenet) == \
        (20, 36, True, (), 3, False)
    got = from_dict(ClassifyTrainConfig, {"epochs": 3, "schedule": "step", "lr": "1e-2"})
    assert (got.epochs, got.schedule, got.lr) == (3, "step", 0.01)
    with pytest.raises(ConfigError, match="cosine, step"):
        from_dict(ClassifyTrainConfig, {"schedule": "linear"})
    with pytest.raises(ConfigError, match="unknown config key"):
        from_dict(ClassifyTrainConfig, {"warmup": 5})
    with pytest.raises(ConfigError, match="lr_min"):
        ClassifyTrainConfig(lr=0.01, lr_min=0.1)
    assert from_dict(ClassifyModelConfig, {"layers": 5, "reduction_positions": [1, 2]}).reduction_positions == (1, 2)
    with pytest.raises(ConfigError, match=r"outside cells 0\.\.4"):
        from_dict(ClassifyModelConfig, {"layers": 5, "reduction_positions": [1, 5]})
    with pytest.raises(ConfigError, match="repeat"):
        ClassifyModelConfig(layers=5, reduction_positions=(2, 2))
    with pytest.raises(ConfigError, match="imagenet"):
        from_dict(ClassifyDataConfig, {"name": "svhn"})
    d = ClassifyData.from_config(from_dict(ClassifyDataConfig, {"name": "embedded", "limit": 20, "test_limit": 4,
                                                                "fraction": 0.5, "train_portion": 0.6,
                                                                "channels": 1}))
    assert d.sizes == {"train": 6, "val": 4, "test": 4} and d.resolution == 32 and d.in_channels == 1


# ----------------------------------------------------------------------------- schedule and drop path
def test_cosine_lr_per_epoch_steps_after_the_epoch():
    tr = ClassifierTrainer(TinyNet(), _data(), _cfg(epochs=4, lr=0.1, lr_min=0.01))
    lrs = [tr.train_epoch()["lr"] for _ in range(4)]
    expect = [0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert lrs[0] == 0.1                                        # epoch 0 runs at the full rate (T-D4)
    assert lrs == pytest.approx(expect, rel=1e-9, abs=1e-12)
    assert tr.lr == pytest.approx(0.01) and tr.done
    with pytest.raises(ConfigError, match="all 4 epochs"):
        tr.train_epoch()


def test_step_schedule_for_imagenet():
    tr = ClassifierTrainer(TinyNet(), _data(), _cfg(epochs=3, lr=0.1, schedule="step", lr_gamma=0.97))
    assert [tr.train_epoch()["lr"] for _ in range(3)] == pytest.approx([0.1, 0.097, 0.1 * 0.97**2])


def test_drop_path_ramps_linearly_from_zero():
    net = TinyNet()
    tr = ClassifierTrainer(net, _data(), _cfg(epochs=4, drop_path_prob=0.2))
    per_epoch = []
    for _ in range(4):
        net.drop_seen.clear()
        tr.train_epoch()
        per_epoch.append(sorted(set(net.drop_seen)))
    assert per_epoch == [[0.0], [pytest.approx(0.05)], [pytest.approx(0.1)], [pytest.approx(0.15)]]


# ----------------------------------------------------------------------------- resume
def test_resume_is_bit_exact(tmp_path):
    cfg = _cfg(epochs=2, drop_path_prob=0.3, momentum=0.9, cutout=True, label_smoothing=0.1)
    straight = ClassifierTrainer(TinyNet, _data(), cfg)
    rows = [straight.train_epoch() for _ in range(2)]

    first = ClassifierTrainer(TinyNet, _data(), cfg)
    first.train_epoch()
    path = first.save(tmp_path / "ckpt" / "last.pt")
    torch.manual_seed(12345)                                    # whatever happens in between
    resumed = ClassifierTrainer(TinyNet, _data(), cfg)          # rebuilt from scratch
    resumed.load(path)
    assert resumed.epoch == 1 and resumed.lr == straight.optimizer.param_groups[0]["initial_lr"] * 0.5
    row = resumed.train_epoch()

    assert _same(_weights(resumed.model), _weights(straight.model))
    assert row["train_loss"] == rows[1]["train_loss"] and row["lr"] == rows[1]["lr"]
    mom_a = [s["momentum_buffer"] for s in resumed.optimizer.state.values()]
    mom_b = [s["momentum_buffer"] for s in straight.optimizer.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(mom_a, mom_b))
    # without restoring the sampler and RNG state the second epoch differs (the test can fail)
    partial = ClassifierTrainer(TinyNet, _data(), cfg)
    state = first.state_dict()
    partial.model.load_state_dict(state["model"])
    partial.optimizer.load_state_dict(state["optimizer"])
    partial.scheduler.load_state_dict(state["scheduler"])
    partial.epoch = 1
    partial.train_epoch()
    assert not _same(_weights(partial.model), _weights(straight.model))


def test_loading_a_checkpoint_of_another_network_fails_clearly(tmp_path):
    path = ClassifierTrainer(TinyNet(), _data(), _cfg()).save(tmp_path / "a.pt")
    other = ClassifierTrainer(TinyNet(classes=7), _data(), _cfg())
    with pytest.raises(CheckpointError, match="does not match"):
        other.load(path)


# ----------------------------------------------------------------------------- the test split
class _Recorder:
    """Wraps a ClassifyData and records which parts were read, and how."""

    def __init__(self, data: ClassifyData) -> None:
        self.data, self.calls = data, []

    def __getattr__(self, name):
        return getattr(self.data, name)

    def to(self, device):
        self.data.to(device)
        return self

    def train_batches(self, batch_size, **kw):
        self.calls.append(("train", kw.get("part", "train")))
        return self.data.train_batches(batch_size, **kw)

    def eval_batches(self, part, batch_size):
        self.calls.append(("eval", part))
        return self.data.eval_batches(part, batch_size)


def test_test_split_is_only_for_reporting():
    cfg = _cfg(epochs=2)
    data = _Recorder(_data())
    tr = ClassifierTrainer(TinyNet, data, cfg)
    tr.train_epoch()
    assert data.calls == [("train", "train")]                  # training reads the train part only
    weights = _weights(tr.model)
    test = tr.evaluate("test")
    val = tr.evaluate("val")
    assert _same(_weights(tr.model), weights)                  # BN statistics untouched by evaluation
    assert data.calls[1:] == [("eval", "test"), ("eval", "val")]
    assert set(test) == {"loss", "top1", "top5"} and 0 <= test["top1"] <= test["top5"] <= 1
    assert set(val) == set(test)
    tr.train_epoch()
    # evaluating (on test or val) changed nothing about training: same weights as a run that never evaluated
    quiet = ClassifierTrainer(TinyNet, _data(), cfg)
    quiet.train_epoch()
    quiet.train_epoch()
    assert _same(_weights(quiet.model), _weights(tr.model))
    with pytest.raises(ConfigError, match="val, test"):
        tr.evaluate("train")
    with pytest.raises(ConfigError, match="only for the final report"):
        next(tr.data.train_batches(8, part="test"))
    whole = ClassifierTrainer(TinyNet, _data(train_portion=1.0), cfg)
    with pytest.raises(ConfigError, match="no 'val' part"):      # never falls back to the test split
        whole.evaluate("val")


def test_duck_typed_config_and_divergence():
    cfg = SimpleNamespace(**{f: getattr(_cfg(), f) for f in ClassifyTrainConfig.__dataclass_fields__})
    cfg.lr = 1e6
    tr = ClassifierTrainer(TinyNet(), _data(), cfg)
    assert tr.precision.amp is False and tr.device.type == "cpu"
    with pytest.raises(TrainingDiverged, match=r"^the classification loss became (nan|inf|-inf); the step was not "
                                                 r"taken\."):
        for _ in range(4):
            tr.train_epoch()


def test_one_training_step_of_a_configured_darts_network_is_ce_plus_04_ce_aux():
    """The retrain of a config (auxiliary head on, train.auxiliary_weight 0.4) trains on CE + 0.4 * CE_aux,
    computed here by hand from the logits the network returned in that very step."""
    from raynas.config import load_config

    cfg = load_config("quickstart-classify", ["model.auxiliary=true", "model.layers=3", "model.channels=4",
                                              "train.auxiliary_weight=0.4", "train.batch_size=16", "data.limit=16",
                                              "data.test_limit=16", "train.device=cpu", "train.epochs=1"],
                      method="train", task="classify")
    trainer = ClassifierTrainer.for_config(cfg)
    outputs, labels = [], []
    trainer.model.register_forward_hook(
        lambda m, i, out: outputs.append([None if o is None else o.detach().clone() for o in out]))
    batches = trainer.data.train_batches

    def recording(*args, **kw):
        for x, y in batches(*args, **kw):
            labels.append(y.clone())
            yield x, y

    trainer.data.train_batches = recording
    stats = trainer.train_epoch()
    assert len(outputs) == len(labels) == 1  # one batch, one step
    (logits, aux), (y,) = outputs[0], labels
    assert aux is not None, "the auxiliary head returned nothing while training"
    ce, ce_aux = F.cross_entropy(logits, y).item(), F.cross_entropy(aux, y).item()
    assert abs(0.4 * ce_aux) > 0.1  # the auxiliary term is far from negligible
    assert math.isclose(stats["train_loss"], ce + 0.4 * ce_aux, rel_tol=1e-5), (stats["train_loss"], ce, ce_aux)
