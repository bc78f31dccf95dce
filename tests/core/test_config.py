"""Config loading: presets, overrides, and clear errors for every kind of bad value."""

import dataclasses
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
    ("train.epoch=3", "unknown config key train.epoch in 'train'; valid keys are: amp, augment, augment_interval,"),
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
    # every section with a kprime is suggested (DAMGAN's and its random baseline's)
    with pytest.raises(ConfigError, match=re.escape("unknown config key kprime in the top level (did you mean "
                                                    "damgan.kprime or random_gan.kprime?); valid keys are: data, "
                                                    "eagan, eval,")):
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


# ============================================================================ bounds, written down by hand
# (method, preset, key, value, accepted). Independent of the fields' own metadata, which the generic bounds
# test reads: a flipped lo_open/hi_open (or a wrong lo/hi) on one of these fields fails here.
GAN, CLS, EAGAN = ("train", "quickstart"), ("darts", "quickstart-classify"), ("eagan", "quickstart")
HAND_BOUNDS = [
    (*GAN, "train.beta1", 0.0, True), (*GAN, "train.beta1", 0.999, True), (*GAN, "train.beta1", 1.0, False),
    (*GAN, "train.beta2", 0.0, True), (*GAN, "train.beta2", 0.999, True), (*GAN, "train.beta2", 1.0, False),
    (*GAN, "data.fraction", 0.0, False), (*GAN, "data.fraction", 0.01, True), (*GAN, "data.fraction", 1.0, True),
    (*GAN, "data.fraction", 1.01, False),
    (*CLS, "data.train_portion", 0.0, False), (*CLS, "data.train_portion", 0.01, True),
    (*CLS, "data.train_portion", 0.99, True), (*CLS, "data.train_portion", 1.0, False),
    (*CLS, "train.momentum", 0.0, True), (*CLS, "train.momentum", 1.0, True), (*CLS, "train.momentum", 1.01, False),
    (*CLS, "train.drop_path_prob", 0.0, True), (*CLS, "train.drop_path_prob", 1.0, True),
    (*CLS, "train.drop_path_prob", 1.01, False),
    (*CLS, "train.auxiliary_weight", 0.0, True), (*CLS, "train.auxiliary_weight", -0.01, False),
    (*CLS, "darts.lr", 0.0, False), (*CLS, "darts.lr", 1e-4, True),
    ("swd-nas", "quickstart-classify", "swd.lr", 0.0, False),
    ("darts-gal", "quickstart-classify", "dartsgal.lr", 0.0, False),
    ("darts-gal", "quickstart-classify", "dartsgal.mask_lr", 0.0, False),
    ("darts-gal", "quickstart-classify", "dartsgal.mask_lr", 1e-4, True),
    (*EAGAN, "eagan.crossover_prob", 0.0, True), (*EAGAN, "eagan.crossover_prob", 1.0, True),
    (*EAGAN, "eagan.crossover_prob", 1.01, False),
    (*EAGAN, "eagan.mutation_prob", 0.0, True), (*EAGAN, "eagan.mutation_prob", 1.0, True),
    (*EAGAN, "eagan.mutation_prob", -0.01, False),
    (*GAN, "regan.sparsity", 0.0, True), (*GAN, "regan.sparsity", 0.99, True), (*GAN, "regan.sparsity", 1.0, False),
    (*GAN, "regan.dense_lr_factor", 0.0, False), (*GAN, "regan.dense_lr_factor", 1.0, True),
]


@pytest.mark.parametrize("method,preset,key,value,accepted", HAND_BOUNDS,
                         ids=[f"{k}={v}" for _, _, k, v, _ in HAND_BOUNDS])
def test_important_bounds_hold_as_the_papers_and_optimisers_need(method, preset, key, value, accepted):
    section, name = key.split(".")
    if accepted:
        cfg = load_config(preset, [f"{key}={value}"], method=method)
        assert getattr(getattr(cfg, section), name) == value
    else:
        with pytest.raises(ConfigError, match=rf"{key.replace('.', r'[.]')}\b.*(minimum|maximum|must lie in)"):
            load_config(preset, [f"{key}={value}"], method=method)


@pytest.mark.parametrize("positions,ok", [((0, 4), True), ((1, 5), False), ((-1, 2), False)])
def test_dartsgal_reduction_positions_must_be_cells_of_the_network(positions, ok):
    """dartsgal.layers=5 has cells 0..4: a position equal to layers is refused when the config loads, not in a
    later preflight."""
    overrides = ["dartsgal.layers=5", f"dartsgal.reduction_positions=[{positions[0]},{positions[1]}]"]
    if ok:
        cfg = load_config("quickstart-classify", overrides, method="darts-gal")
        assert cfg.dartsgal.reduction_positions == positions
        return
    bad = [p for p in positions if not 0 <= p < 5]
    with pytest.raises(ConfigError, match=rf"dartsgal\.reduction_positions .*{bad}.* out of range.*0\.\.4"):
        load_config("quickstart-classify", overrides, method="darts-gal")


def test_a_list_override_means_the_same_with_or_without_quotes(capsys, tmp_path):
    """``[*]`` is a YAML alias error; it used to become the glob string '[*]', which matched nothing."""
    from raynas.config import parse_override

    for raw in ("[*]", "['*']", '["*"]'):
        assert parse_override(f"regan.exclude={raw}") == (["regan", "exclude"], ["*"]), raw
    assert parse_override("regan.exclude=[*.bias, 'l1.*']")[1] == ["*.bias", "l1.*"]
    assert parse_override("regan.exclude=*.bias")[1] == "*.bias"  # a bare glob stays one pattern
    with pytest.raises(ConfigError, match=r"--set value '\[\*\.bias' opens a list but is not one"):
        parse_override("regan.exclude=[*.bias")
    cfg = load_config("quickstart", ["regan.exclude=[*.bias, l1.*]"], method="train")
    assert cfg.regan.exclude == ("*.bias", "l1.*")
    from conftest import assert_user_error, run_cli

    code, _, err = run_cli(capsys, "train", "--output-dir", str(tmp_path), "--set", "regan.enabled=true",
                           "--set", "regan.exclude=[*]")
    assert_user_error(code, err, "regan.exclude=['*']", "selects no parameter")
    assert not any(tmp_path.iterdir())


def test_a_run_config_pickles_by_reference_without_the_package_writing_its_globals():
    """Each (task, method) run class is built on demand; pickle finds it by name through raynas.config, in this
    process and in a fresh one (a Ray worker) that never built it, and the package's globals stay untouched."""
    import pickle
    import subprocess
    import sys

    import raynas.config

    cfg = load_config("quickstart-classify", ["darts.epochs=3"], method="darts")
    name = type(cfg).__name__
    assert name == "ClassifyDartsRunConfig" and type(cfg).__module__ == "raynas.config"
    assert name not in vars(raynas.config)  # no globals() mutation
    assert getattr(raynas.config, name) is type(cfg)
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    with pytest.raises(AttributeError):
        raynas.config.NoSuchRunConfig  # noqa: B018
    code = ("import pickle, sys\nimport raynas\n"
            "cfg = pickle.loads(sys.stdin.buffer.read())\n"
            "print(type(cfg).__name__, cfg.darts.epochs, cfg.to_dict() == cfg.__class__().to_dict())")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(cfg), capture_output=True, check=True)
    assert out.stdout.decode().split() == [name, "3", "False"]


def test_darts_and_swd_sections_share_search_training_and_keep_their_field_order():
    from raynas.config import SearchTraining, search_section, setting
    from raynas.methods.darts import DartsConfig
    from raynas.methods.swdnas import SwdConfig

    shared = ["layers", "channels", "steps", "multiplier", "epochs", "batch_size", "lr", "lr_min", "momentum",
              "weight_decay", "grad_clip"]
    assert issubclass(DartsConfig, SearchTraining) and issubclass(SwdConfig, SearchTraining)
    assert [f.name for f in dataclasses.fields(DartsConfig)] == ["order", *shared, "arch_lr", "arch_weight_decay",
                                                                 "select_epochs"]
    assert [f.name for f in dataclasses.fields(SwdConfig)] == [
        "k", *shared, "ua", "ua_pool", "la_pool", "ua_reduction", "la_reduction", "attention_bias", "awn",
        "residual", "stats", "select_epochs"]
    assert set(vars(DartsConfig)["__annotations__"]) == {"order", "arch_lr", "arch_weight_decay"}  # only its own
    assert repr(DartsConfig()).startswith("DartsConfig(order=2, layers=8, channels=16,")
    # SWD-NAS changes three shared defaults in place; the rest are DARTS' values
    assert (SwdConfig().layers, SwdConfig().epochs, DartsConfig().layers, DartsConfig().epochs) == (5, 30, 8, 50)
    assert SwdConfig().lr == DartsConfig().lr == 0.025
    keys = describe_keys()
    assert keys.index("darts.order = 2   # 1 = first-order α gradient; 2 = DARTS' unrolled second order") + 1 == \
        keys.index("darts.layers = 8   # cells of the search network")
    with pytest.raises(TypeError, match="not its own fields"):
        @search_section(lead=("lr",))
        class _Bad(SearchTraining):
            extra: int = setting(1)
