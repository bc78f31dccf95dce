"""Plugins and registries: methods load through the ``raynas.plugins`` entry points (and ``RAYNAS_PLUGINS``) when a
lookup needs them, never by ``import raynas``; spec defaults per execution shape; spaces say what they build; fixed
network families are looked up by name."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, plain_shell_env

from raynas.errors import ConfigError
from raynas.methods.spec import RETRAIN_EPOCHS, THEN_RETRAIN, Method
from raynas.plugins import plugin_modules


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=plain_shell_env(**env))


def test_raynas_declares_its_methods_as_an_entry_point_and_finds_them():
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points."raynas.plugins"]\nmethods = "raynas.methods"\n' in text
    assert "raynas.methods" in plugin_modules()


def test_import_raynas_loads_no_method_and_a_lookup_loads_them_all():
    code = ("import sys, raynas, raynas.config, raynas.spaces\n"
            "assert not any(m.startswith('raynas.methods') for m in sys.modules), 'import raynas loaded the methods'\n"
            "from raynas.config import load_config\n"
            "cfg = load_config('quickstart', method='damgan')\n"
            "assert cfg.damgan.kprime == 4\n"
            "from raynas.spaces import Genotype\n"
            "assert Genotype.load('darts-v2').space == 'darts'\n"
            "print('ok')")
    done = _python(code)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_raynas_plugins_adds_a_module_and_a_missing_one_is_one_clear_error():
    keys = _python("from raynas.cli import main; main(['config', 'keys'])", RAYNAS_PLUGINS="toy_method",
                   PYTHONPATH=f"{ROOT}:{ROOT / 'tests'}")
    assert keys.returncode == 0, keys.stderr
    assert "# method toy" in keys.stdout and "toy.channels = 4" in keys.stdout
    bad = _python("from raynas.cli import main; raise SystemExit(main(['config', 'keys']))",
                  RAYNAS_PLUGINS="raynas_no_such_plugin")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert bad.stderr.startswith("raynas: error: raynas plugin 'raynas_no_such_plugin' cannot be imported")
    assert "RAYNAS_PLUGINS" in bad.stderr


def test_a_method_states_only_what_is_its_own_and_its_shape_fills_the_rest():
    def spec(**kw):
        return Method(name="x", section="x", config=object, summary="", **kw)

    diff = spec(task="classify", shape="differentiable", search="m:S")
    assert (diff.runner, diff.ablation_cell) == ("trainables.search_trial:run_search",
                                                 "trainables.grid_cell:ablation_cell")
    assert diff.flags == (THEN_RETRAIN, RETRAIN_EPOCHS) and diff.ablation_stage == "retrain"
    assert diff.quickstart == "quickstart-classify" and diff.ablation_metrics[0] == ("test_acc", "max")
    gan = spec(task="gan", shape="population", runner="m:run", flags=())
    assert gan.runner == "m:run" and gan.flags == () and gan.ablation_stage == "final"
    assert gan.quickstart == "quickstart" and gan.ablation_cell is None
    assert spec(task="classify", shape="pipeline").runner == "trainables.pipeline:run_pipeline"


def test_every_registered_method_records_the_module_that_registered_it():
    from raynas.methods import all_methods

    homes = {m.name: m.home for m in all_methods()}
    assert homes["eagan"] == "raynas.methods.eagan" and homes["darts-gal"] == "raynas.methods.dartsgal"


def test_spaces_say_what_their_genotypes_build():
    from raynas.spaces.genotype import space_role, spaces_with_role

    assert [space_role(s) for s in ("eagan-g", "damgan-g", "eagan-d", "eagan-gd", "darts", "swd-nas", "darts-gal")] \
        == ["generator", "generator", "discriminator", "pair", "classifier", "classifier", "classifier"]
    assert spaces_with_role("generator") == ["damgan-g", "eagan-g"]
    with pytest.raises(Exception, match="unknown search space 'nope'"):
        space_role("nope")


def test_fixed_families_are_looked_up_by_name_and_role():
    from raynas.config import load_config
    from raynas.nn.registry import build_family
    from raynas.nn.stylegan2 import StyleGAN2Discriminator

    cfg = load_config("quickstart", ["model.discriminator=stylegan2", "model.channel_multiplier=1",
                                     "model.max_channels=16"], method="train")
    assert isinstance(build_family("stylegan2", "discriminator", cfg.model, cfg.data), StyleGAN2Discriminator)
    with pytest.raises(ConfigError, match=r"model.generator='autogan' is not a generator family; known: .*sngan"):
        build_family("autogan", "generator", cfg.model, cfg.data)


def test_a_method_format_builds_and_draws_through_the_modules_it_names(tmp_path):
    """DARTS-GAL's format and drawer register with its package (torch-free); the network module its format names
    is imported when a network is first built: the core names neither."""
    code = ("import sys\n"
            "from raynas.spaces import Genotype\n"
            "from raynas.methods.dartsgal.genotype import DartsGalGenotype, load_source\n"
            "g = Genotype.from_json(DartsGalGenotype.full(load_source('darts-v2'), 3, 4, 1).to_json())\n"
            "assert 'raynas.methods.dartsgal.network' not in sys.modules and 'torch' not in sys.modules\n"
            "from raynas.nn.registry import build_network\n"
            "net = build_network(g, num_classes=10)\n"
            "assert type(net).__module__ == 'raynas.methods.dartsgal.network'\n"
            "from raynas.spaces.draw import draw_genotype\n"
            f"print(draw_genotype(g, {str(tmp_path / 'gal.png')!r}).stat().st_size > 0)")
    done = _python(code)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr
