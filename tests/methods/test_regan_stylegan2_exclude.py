"""Re-GAN's default exclude follows the generator: StyleGAN2 keeps its toRGB layers dense (the authors' StyleGAN2
code skips every parameter named ``to_rgb``), ProGAN and SNGAN prune everything (their code does); an explicit
``regan.exclude``, ``[]`` included, replaces the family's default."""

from __future__ import annotations

import pytest
import torch

from raynas.config import load_config
from raynas.gan.regan import Regan
from raynas.gan.regan_masks import check_generator, exclude_patterns
from raynas.gan.regan_schedule import ReganConfig
from raynas.nn.progan import ProGANGenerator
from raynas.nn.stylegan2 import StyleGAN2Generator


def _tiny_stylegan2() -> StyleGAN2Generator:
    return StyleGAN2Generator(resolution=8, latent_dim=8, mapping_layers=1, channel_multiplier=1, max_channels=8)


def test_stylegan2_default_keeps_to_rgb_dense():
    G = _tiny_stylegan2()
    names = [n for n, _ in G.named_parameters()]
    to_rgb = [n for n in names if "to_rgb" in n]
    assert to_rgb and "to_rgb0.conv.weight" in to_rgb and "to_rgbs.0.bias" in to_rgb
    regan = Regan(G, ReganConfig(enabled=True))
    assert list(regan.params) == [n for n in names if "to_rgb" not in n]  # the authors' selection, in order
    assert "conv0.conv.weight" in regan.params and "mapping_net.1.weight" in regan.params


def test_explicit_exclude_replaces_the_family_default():
    G = _tiny_stylegan2()
    names = [n for n, _ in G.named_parameters()]
    assert list(Regan(G, ReganConfig(exclude=())).params) == names  # [] prunes toRGB too
    assert list(Regan(G, ReganConfig(exclude=("*bias",))).params) == [n for n in names if not n.endswith("bias")]
    assert exclude_patterns(G, None) == ("*to_rgb*",) and exclude_patterns(G, ["x"]) == ("x",)


def test_progan_default_prunes_every_parameter():
    G = ProGANGenerator(latent_dim=8, channels=8, resolution=8)
    assert exclude_patterns(G, None) == ()
    assert list(Regan(G, ReganConfig()).params) == [n for n, _ in G.named_parameters()]
    assert any("to_rgb" in n for n in Regan(G, ReganConfig()).params)  # the authors' ProGAN code prunes toRGB


def test_config_default_is_unset_and_overrides_parse():
    assert ReganConfig().exclude is None
    sets = ["model.generator=stylegan2", "model.discriminator=stylegan2", "data.resolution=8",
            "model.latent_dim=8", "model.mapping_layers=1", "model.channel_multiplier=1", "model.max_channels=8"]
    cfg = load_config("quickstart", sets, method="train")
    assert cfg.regan.exclude is None
    selected = check_generator(cfg)  # what preflight prunes: the same family default
    assert selected and not any("to_rgb" in n for n in selected)
    cfg = load_config("quickstart", [*sets, "regan.exclude=[]"], method="train")
    assert cfg.regan.exclude == ()
    assert any("to_rgb" in n for n in check_generator(cfg))
    assert load_config("quickstart", [*sets, "regan.exclude=null"], method="train").regan.exclude is None


@pytest.mark.parametrize("exclude", [None, ()])
def test_resume_state_round_trips_with_either_exclude(exclude):
    torch.manual_seed(0)
    G = _tiny_stylegan2()
    cfg = ReganConfig(enabled=True, warmup=0, interval=1, sparsity=0.5, exclude=exclude)
    regan = Regan(G, cfg)
    opt = torch.optim.Adam(G.parameters(), lr=1e-3)
    assert regan.begin_unit(0, opt) == "sparse"
    again = Regan(G, cfg)
    again.load_state_dict(regan.state_dict())
    assert set(again.masks) == set(regan.params)
    assert G.to_rgb0.conv.weight.eq(0).any().item() is (exclude == ())  # toRGB masked only when asked
