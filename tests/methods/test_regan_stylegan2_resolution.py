"""data.resolution up to 1024 for a fixed GAN run whose families are built for it (StyleGAN2, ProGAN), 256 for
every other network, search and classifier, and a clear error beyond either."""

from __future__ import annotations

import pytest
import torch

from raynas.build import build_discriminator, build_generator
from raynas.config import load_config
from raynas.errors import ConfigError

STYLEGAN2 = ["model.generator=stylegan2", "model.discriminator=stylegan2"]


@pytest.mark.parametrize("resolution", [512, 1024])
def test_stylegan2_and_progan_take_up_to_1024(resolution):
    cfg = load_config("regan-stylegan2-fewshot", [f"data.resolution={resolution}"])
    assert cfg.data.resolution == resolution
    with torch.device("meta"):  # sizes only
        G, D = build_generator(cfg.model, cfg.data), build_discriminator(cfg.model, cfg.data)
    assert G(torch.zeros(1, 512, device="meta")).shape[-1] == resolution and D.from_rgb is not None
    progan = load_config("quickstart", ["model.generator=progan", "model.discriminator=progan",
                                        f"data.resolution={resolution}"], method="train")
    assert progan.data.resolution == resolution


def test_beyond_the_cap_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"data.resolution: 2048 is above the maximum 1024"):
        load_config("regan-stylegan2-fewshot", ["data.resolution=2048"])
    with pytest.raises(ConfigError, match=r"data.resolution=512: model.generator=sngan is built up to 256 px; .*"
                                          r"\(progan, stylegan2\)"):
        load_config("quickstart", ["data.resolution=512"], method="train")
    with pytest.raises(ConfigError, match=r"model.discriminator=autogan is built up to 256 px"):
        load_config("quickstart", ["model.generator=stylegan2", "data.resolution=512"], method="train")
    with pytest.raises(ConfigError, match=r"data.resolution=512: method eagan builds networks up to 256 px; only a "
                                          r"fixed GAN run"):
        load_config("quickstart", ["data.resolution=512", *STYLEGAN2], method="eagan")
    with pytest.raises(ConfigError, match=r"data.resolution=512: a fixed classify run builds networks up to 256"):
        load_config("quickstart-classify", ["data.resolution=512"], method="train")
    assert load_config("quickstart", ["data.resolution=256"], method="train").data.resolution == 256  # as before
