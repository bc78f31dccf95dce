"""The method registry: a contract every registered method meets, configs that carry only the chosen method,
and runs written before the registry existed that still resume."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, assert_user_error, run_cli

from raynas.config import load_config
from raynas.errors import ConfigError
from raynas.methods import all_methods, load_object

METHODS = all_methods()
FIXTURES = Path(__file__).parents[1] / "fixtures" / "old_runs"


def test_registry_holds_every_method_and_each_names_resolvable_code():
    names = {m.name for m in METHODS}
    assert {"eagan", "damgan", "darts"} <= names
    for m in METHODS:
        for path in (m.runner, m.ablation_cell, m.ablation_runner, m.check, m.search, m.smoke, m.placement,
                     m.ablation_plots, *(a.runner for a in m.ablations), *(a.check for a in m.ablations)):
            if path:
                assert callable(load_object(path)), f"{m.name}: {path}"
        assert m.runner or m.modifier, f"{m.name} can neither search nor modify training"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_each_methods_preset_loads_and_its_checks_pass(method):
    cfg = load_config(method.quickstart, method=method.name)
    assert cfg.method == method.name and cfg.task == method.task
    assert isinstance(getattr(cfg, method.section), method.config)
    if method.check:
        load_object(method.check)(cfg)


@pytest.mark.parametrize("method", [m for m in METHODS if m.smoke], ids=lambda m: m.name)
def test_one_epoch_search_gives_a_genotype_that_validates_builds_and_reports_its_size(method):
    import torch

    from raynas.nn.profile import describe

    torch.manual_seed(0)
    cfg = load_config(method.quickstart, list(method.smoke_overrides), method=method.name)
    genotype = load_object(method.smoke)(cfg)
    genotype.validate()
    assert genotype.space in method.spaces
    from raynas.nn.darts_net import count_parameters
    from raynas.nn.registry import build_network

    # the reported size is the parameter count of the network the genotype builds (classifiers: without the
    # auxiliary head, as DARTS counts), and the sum of the per-cell rows and the rest
    if method.task == "gan":
        summary = describe(genotype, dataset=cfg.data.name, width=8)
        built = sum(p.numel() for p in build_network(genotype, resolution=32, channels=1, width=8).parameters())
    else:
        summary = describe(genotype, dataset=cfg.data.name, layers=cfg.model.layers, channels=cfg.model.channels)
        built = count_parameters(build_network(genotype, channels=1, width=cfg.model.channels,
                                               layers=cfg.model.layers, num_classes=10))
    assert summary["params"] == built == sum(c["params"] for c in summary["cells"]) + summary["other_params"]
    assert summary["flops"] > 0


# ============================================================================ one method per config
def test_a_run_holds_only_its_methods_section_and_cfg_method_access_works():
    cfg = load_config("quickstart", method="damgan")
    assert cfg.damgan.kprime == 4 and not hasattr(cfg, "eagan") and cfg.method == "damgan"
    assert load_config("quickstart", method="eagan").eagan.population == 4
    fixed = load_config("quickstart", method="train")
    assert not hasattr(fixed, "eagan") and not hasattr(fixed, "damgan")


def test_an_override_for_another_method_exits_2_naming_the_key_and_method(capsys, tmp_path):
    with pytest.raises(ConfigError, match=r"eagan.population does not apply to method 'damgan'"):
        load_config("quickstart", ["eagan.population=8"], method="damgan")
    code, _, err = run_cli(capsys, "search", "damgan", "--set", "eagan.population=8", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "eagan.population", "does not apply to method 'damgan'", "raynas search eagan")
    assert not list(tmp_path.iterdir())


def test_another_methods_section_in_a_preset_is_type_checked_then_dropped(tmp_path):
    preset = yaml.safe_load((ROOT / "raynas" / "presets" / "quickstart.yaml").read_text())
    preset["eagan"]["popluation"] = 8  # a typo in a shared preset still fails a DAMGAN run
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump(preset))
    with pytest.raises(ConfigError, match=r"eagan.popluation"):
        load_config(str(bad), method="damgan")
    del preset["eagan"]["popluation"]
    preset["eagan"]["population"] = "many"
    bad.write_text(yaml.safe_dump(preset))
    with pytest.raises(ConfigError, match=r"eagan.population: expected an integer"):
        load_config(str(bad), method="damgan")


def test_a_classifier_preset_on_a_gan_command_and_the_reverse_exit_2(capsys, tmp_path):
    code, _, err = run_cli(capsys, "search", "eagan", "--preset", "darts-cifar10", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "darts-cifar10", "classify preset", "gan preset", "quickstart")
    code, _, err = run_cli(capsys, "search", "darts", "--preset", "eagan-cifar10", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "eagan-cifar10", "gan preset", "classify preset", "darts-cifar10")
    code, _, err = run_cli(capsys, "retrain", "darts-v2", "--preset", "quickstart", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "quickstart", "classify preset")
    assert not list(tmp_path.iterdir())


def test_every_method_gets_search_and_ablate_commands_from_the_registry(capsys):
    from raynas.cli import build_parser

    text = build_parser().format_help()
    assert "search" in text and "ablate" in text
    for m in METHODS:
        if m.runner:
            args = build_parser().parse_args(["search", m.name, "--set", "data.limit=8"])
            assert args.method == m.name and args.overrides == ["data.limit=8"]
        if m.ablation_cell or m.ablation_runner:
            args = build_parser().parse_args(["ablate", m.name, "--grid", "train.seed=1,2", "--seeds", "2"])
            assert args.method == m.name and args.seeds == 2


# ============================================================================ runs written before the registry
@pytest.mark.parametrize("name, method", [("train-quickstart", "train"), ("damgan-quickstart", "damgan")])
def test_old_shape_configs_upgrade(name, method):
    from raynas.config import RaynasConfig, from_dict, read_config_file

    old = read_config_file(FIXTURES / f"{name}.config.yaml")
    assert "eagan" in old and "damgan" in old  # every section, as the old RaynasConfig wrote them
    cfg = from_dict(RaynasConfig, old)
    assert cfg.method == method and cfg.task == "gan"
    assert not hasattr(cfg, "eagan")


@pytest.mark.slow
def test_an_old_shape_eagan_run_resumes_through_the_saved_config_upgrade(ray_session, tmp_path, capsys):
    """Written by the code before the registry (all sections in config.yaml, an absolute checkpoint path in
    search_state.pt, killed after round 0 of 2): it resumes, from another directory, and finishes."""
    from raynas.results import RunDir

    run_dir = tmp_path / "moved-old-run"
    shutil.copytree(FIXTURES / "eagan-g-round0", run_dir)
    code, out, err = run_cli(capsys, "search", "eagan", "--resume", str(run_dir))
    assert code == 0, err
    df = RunDir.open(run_dir).read()
    assert sorted(df.groupby("round").size().to_dict().items()) == [(0, 4), (1, 4)]
    assert df["candidate_id"].is_unique
    assert (run_dir / "best_G.json").is_file() and "resuming after round 0" in (out + err)
