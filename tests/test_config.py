"""Config loading: presets, overrides, and clear errors for every kind of bad value."""

import re

import pytest

from raynas.config import (
    RaynasConfig,
    apply_overrides,
    describe_keys,
    from_dict,
    list_presets,
    load_config,
    to_dict,
)
from raynas.errors import ConfigError


def test_presets_load_and_round_trip():
    assert {"quickstart", "sngan-cifar10"} <= set(list_presets())
    for name in list_presets():
        cfg = load_config(name)
        assert cfg.preset == name
        assert from_dict(RaynasConfig, to_dict(cfg)) == cfg


def test_overrides_are_typed():
    cfg = load_config("quickstart", ["train.epochs=7", "train.lr_g=1e-3", "eval.metrics=fid,kid",
                                     "data.root=/tmp/x"])
    assert cfg.train.epochs == 7 and isinstance(cfg.train.epochs, int)
    assert cfg.train.lr_g == pytest.approx(1e-3)
    assert cfg.eval.metrics == ("fid", "kid")
    assert cfg.data.root == "/tmp/x"


def test_apply_overrides_does_not_mutate_input():
    base = {"train": {"epochs": 1}}
    out = apply_overrides(base, ["train.epochs=2"])
    assert base["train"]["epochs"] == 1 and out["train"]["epochs"] == 2


@pytest.mark.parametrize("override, fragment", [
    ("train.epoch=3", "unknown config key train.epoch in 'train'; valid keys are: amp, beta1, beta2,"),
    ("trian.epochs=3", "unknown config key trian in the top level; valid keys are: data, eagan, eval,"),
    ("train.epochs=abc", "train.epochs: expected an integer, got 'abc'"),
    ("train.epochs=0", "train.epochs: 0 is below the minimum 1"),
    ("train.lr_g=2.0", "train.lr_g: 2.0 is above the maximum 1.0"),
    ("data.name=imagenet", "data.name: 'imagenet' is not allowed for a gan run; choose one of embedded, fashion-mnist, "
                           "mnist, cifar10, cifar100, stl10"),
    ("data.channels=2", "data.channels: 2 is not allowed; choose one of 1, 3"),
    ("train", "--set 'train' must look like section.key=value, e.g. train.epochs=3"),
])
def test_bad_values_raise_clear_errors(override, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config("quickstart", [override])


def test_unknown_key_lists_valid_ones():
    with pytest.raises(ConfigError, match="^unknown config key train.epoch in 'train'; valid keys are: ") as info:
        load_config("quickstart", ["train.epoch=3"])
    msg = str(info.value)
    assert "train.epoch" in msg and "epochs" in msg and "n_critic" in msg


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="^unknown preset 'no-such-preset'; available presets: ") as info:
        load_config("no-such-preset")
    assert "quickstart" in str(info.value)


def test_describe_keys_covers_nested_fields():
    keys = describe_keys()
    assert any(k.startswith("train.epochs = ") for k in keys)
    assert any(k.startswith("eval.protocol = ") for k in keys)


def test_list_items_are_checked():
    with pytest.raises(ConfigError, match=re.escape("eval.metrics[1]: 'lpips' is not allowed; choose one of is, fid, "
                                                    "kid")):
        load_config("quickstart", ["eval.metrics=fid,lpips"])
    with pytest.raises(ConfigError, match="^eagan.stages: the list must not be empty$"):
        load_config("quickstart", ["eagan.stages=[]"])


def test_bare_nested_key_suggests_its_section():
    with pytest.raises(ConfigError, match=re.escape("unknown config key kprime in the top level (did you mean "
                                                    "damgan.kprime?); valid keys are: data, eagan, eval,")):
        load_config("quickstart", ["kprime=4"])


def test_splits_are_checked_against_the_dataset():
    # STL-10's FID reference is all 105k train+unlabeled images, as the NAS-GAN papers use.
    assert load_config("eagan-stl10").eval.real_split == "train+unlabeled"
    with pytest.raises(ConfigError, match=r"eval.real_split='train\+unlabeled' is not a split of cifar10; "
                                          r"valid: train, test"):
        load_config("eagan-cifar10", ["eval.real_split=train+unlabeled"])
    with pytest.raises(ConfigError, match=r"data.split='tarin' is not a split of embedded"):
        load_config("quickstart", ["data.split=tarin"])


def test_eagan_presets_use_the_authors_n_critic_per_phase():
    from raynas.methods.eagan.setup import search_step_config

    for name in ("eagan-cifar10", "eagan-stl10"):
        cfg = load_config(name)
        g, d = search_step_config(cfg, "g"), search_step_config(cfg, "d")
        assert (g.n_critic, d.n_critic, cfg.train.n_critic) == (1, 5, 5)
        assert (g.gen_batch_size, g.dis_batch_size) == (40, 80)  # the paper's search batches
    cfg = load_config("quickstart", ["eagan.stage_d_n_critic=3"])
    assert search_step_config(cfg, "d").n_critic == 3 and search_step_config(cfg, "g").n_critic == 1
