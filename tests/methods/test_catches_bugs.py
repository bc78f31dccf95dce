"""Fast in-process tests aimed at bugs that once passed every test: each fails when the bug comes back."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch
from torch import nn

from raynas.config import TASK_SECTIONS, from_dict, load_config
from raynas.errors import ConfigError


def test_nsga2_operators_get_the_probabilities_they_are_given():
    from pymoo.core.variable import get

    from trainables.eagan.driver import make_searcher

    cfg = load_config("quickstart", ["eagan.crossover_prob=0.3", "eagan.mutation_prob=0.5"], method="eagan")
    for stage in ("g", "d"):
        mating = make_searcher(cfg, stage)._algo.mating
        assert (get(mating.crossover.prob), get(mating.mutation.prob)) == (0.3, 0.5)


def _sections() -> list[tuple[str, type]]:
    from raynas.config import RaynasConfig
    from raynas.methods import all_methods

    out = [(name, cls) for sections in TASK_SECTIONS.values() for name, cls in sections.items()]
    out += [(m.section, m.config) for m in all_methods()]
    hints = typing.get_type_hints(RaynasConfig)
    out += [(f.name, hints[f.name]) for f in dataclasses.fields(RaynasConfig)
            if dataclasses.is_dataclass(hints[f.name])]
    return out


def test_every_range_accepts_its_bounds_unless_it_says_they_are_excluded():
    checked = 0
    for section, cls in _sections():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            meta = f.metadata
            for bound, excluded in (("lo", "lo_open"), ("hi", "hi_open")):
                value = meta.get(bound)
                if value is None or hints[f.name] not in (int, float) or meta.get("choices"):
                    continue
                value = int(value) if hints[f.name] is int else float(value)
                others = {}
                if section == "train" and f.name == "lr_min":  # lr_min may not exceed lr
                    others = {"lr": 10.0}
                if meta.get(excluded):
                    with pytest.raises(Exception, match=f.name):
                        from_dict(cls, {f.name: value, **others})
                else:
                    try:
                        assert getattr(from_dict(cls, {f.name: value, **others}), f.name) == value, (section, f.name)
                    except ConfigError as exc:  # a cross-field check of the section may refuse it; the range may not
                        assert "minimum" not in str(exc) and "maximum" not in str(exc), (section, f.name, str(exc))
                checked += 1
    assert checked > 40


def test_damgan_alpha_covers_exactly_one_epoch(tmp_path):
    from raynas.methods.damgan.generator_search import DamganSearch

    cfg = load_config("quickstart", ["damgan.search_gf_dim=8", "damgan.kprime=2", "damgan.reduction=4",
                                     "damgan.iters_per_epoch=2", "damgan.gen_batch_size=4", "damgan.dis_batch_size=4",
                                     "model.latent_dim=16", "model.df_dim=8", "data.limit=32"], method="damgan")
    search = DamganSearch(cfg, device=torch.device("cpu"))
    counts = []
    for _ in range(2):
        search.train_epoch()
        counts.append([float(edge.alpha_count) for _, edge in search.G.named_edges()])
    assert counts[0] == counts[1] and counts[0][0] > 0  # reset at every epoch's start, not accumulated


class _ModeSpy(nn.Module):
    """A generator with BatchNorm that records the mode of every forward."""

    def __init__(self, latent: int = 4):
        super().__init__()
        self.fc = nn.Linear(latent, 3 * 8 * 8)
        self.bn = nn.BatchNorm2d(3)
        self.modes: list[bool] = []

    def forward(self, z):
        self.modes.append(self.training)
        return torch.tanh(self.bn(self.fc(z).view(-1, 3, 8, 8)))


def test_generators_are_scored_in_eval_mode_and_left_as_they_were():
    from raynas.metrics.sources import GeneratorSource

    G = _ModeSpy()
    G.train()
    batches = list(GeneratorSource(G, 4).sample(8, batch_size=4, device="cpu"))
    assert len(batches) == 2 and G.modes == [False, False]
    assert G.training  # restored afterwards
    running = G.bn.running_mean.clone()
    list(GeneratorSource(G, 4).sample(4, batch_size=4, device="cpu"))
    assert torch.equal(running, G.bn.running_mean)  # scoring never moves BatchNorm statistics


def test_eagan_stage_d_resets_every_g_copy_after_each_round_unless_the_ablation_says_not(tmp_path, monkeypatch):
    from raynas.results import RunDir
    from trainables.eagan import driver

    calls: list[int] = []

    class Host:  # records what the driver asks of the SupernetHost
        class reset_generators:  # noqa: N801 - mimics an actor method
            @staticmethod
            def remote(index):
                calls.append(index)
                return index

    monkeypatch.setattr(driver.ray, "get", lambda ref: ref)
    for resetting, expected in ((True, [3]), (False, [])):
        calls.clear()
        cfg = load_config("quickstart", [f"eagan.weight_resetting={str(resetting).lower()}"], method="eagan")
        run = RunDir.create(tmp_path, f"r-{resetting}", config={}, seed=0, preset="q", device="cpu")
        search = driver.EaganSearch(cfg, run, progress=False)
        search._after_round("d", Host(), {"index": 3})
        search._after_round("g", Host(), {"index": 1})  # stage g has no G copies
        assert calls == expected
