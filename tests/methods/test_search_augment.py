"""Augmentation in the GAN searches (issue 20: `train.augment` for any GAN run): EAGAN's round trainers and
DAMGAN's search step show D the DiffAugment'ed images, as fixed training does; the adaptive ones (ADA, APA),
whose p a search does not keep, are refused before anything starts."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import run_cli
from test_supernet_training import CPU, KW, STEP, RandomImages

from raynas.config import load_config
from raynas.errors import ConfigError
from raynas.gan.augment import DiffAugment, search_augment
from raynas.methods.eagan.training import ManyToOneTrainer
from raynas.nn.discriminators import AutoGANDiscriminator
from raynas.nn.registry import build_supernet
from raynas.spaces import get_space

DAMGAN_TINY = ["damgan.search_gf_dim=8", "damgan.kprime=2", "damgan.reduction=4", "damgan.iters_per_epoch=2",
               "damgan.gen_batch_size=4", "damgan.dis_batch_size=4", "model.latent_dim=16", "model.df_dim=8",
               "data.limit=32"]


class CountingDiffAugment(DiffAugment):
    """DiffAugment that counts the images it transformed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def images(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += len(x)
        return super().images(x)


def test_search_augment_takes_the_stateless_ones_and_refuses_the_adaptive():
    cfg = load_config("quickstart", ["train.augment=diffaugment"], method="damgan")
    assert isinstance(search_augment(cfg.train, "DAMGAN"), DiffAugment)
    assert search_augment(load_config("quickstart", [], method="damgan").train, "DAMGAN") is None
    for name in ("ada", "apa"):
        cfg = load_config("quickstart", [f"train.augment={name}"], method="damgan")
        with pytest.raises(ConfigError, match=rf"train.augment={name} .*train.augment=diffaugment"):
            search_augment(cfg.train, "DAMGAN")


def test_eagan_round_trainer_shows_d_the_augmented_images():
    """Warm-up with 3 steps of batch 4: each D step augments its 4 reals and 4 fakes, each G step its fakes."""
    torch.manual_seed(0)
    g = build_supernet("eagan-g", resolution=32, channels=1, width=8, latent_dim=12)
    spy = CountingDiffAugment()
    trainer = ManyToOneTrainer(g, AutoGANDiscriminator(8, 1), RandomImages(), STEP, CPU, **KW, augment=spy)
    population = [get_space("eagan-g").sample(random.Random(s)) for s in range(2)]
    trainer.train(population, epochs=1)
    steps = KW["iters_per_epoch"]
    assert spy.seen == steps * (4 + 4) + steps * 4  # n_critic 1: a G step after every D step


def test_damgan_search_step_shows_d_the_augmented_images():
    from raynas.methods.damgan.generator_search import DamganSearch

    cfg = load_config("quickstart", [*DAMGAN_TINY, "train.augment=diffaugment"], method="damgan")
    search = DamganSearch(cfg, device=torch.device("cpu"))
    assert isinstance(search.augment, DiffAugment)
    search.augment = spy = CountingDiffAugment()
    search.train_step()
    assert spy.seen >= 8  # D's step: 4 reals and 4 fakes


@pytest.mark.parametrize("method", ["eagan", "damgan"])
def test_an_adaptive_augment_in_a_search_is_refused_before_anything_starts(method, tmp_path, capsys):
    code, out, err = run_cli(capsys, "search", method, "--preset", "quickstart", "--set", "train.augment=apa",
                             "--output-dir", str(tmp_path))
    assert code == 2 and err.count("raynas: error:") == 1 and "train.augment=apa" in err, err
    assert "Traceback" not in err and not any(tmp_path.iterdir())  # no run was written
