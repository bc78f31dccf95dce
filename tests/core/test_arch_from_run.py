"""``raynas arch show GENOTYPE --from-run RUN`` / ``--preset NAME`` (issue 24): the network a run built, every size
from its saved config (images, widths, latent), a search's genotypes at the search's own widths, counted by the very
builders the runs use; and the widths a summary was built at printed instead of "default"."""

from __future__ import annotations

import json
import random

import pytest
from conftest import assert_user_error, run_cli

from raynas.results import RunDir


def _saved_run(tmp_path, preset: str, method: str | None = None, overrides=()) -> tuple[RunDir, object]:
    from raynas.config import load_config

    cfg = load_config(preset, list(overrides), method=method)
    return RunDir.create(tmp_path, f"{cfg.method}-run", config=cfg.to_dict(), seed=0, preset=preset,
                         device="cpu"), cfg


def _genotype(tmp_path, space: str, seed: int = 0):
    from raynas.spaces import get_space

    g = get_space(space).sample(random.Random(seed))
    path = tmp_path / f"{space}.json"
    g.save(path)
    return g, path


def _show(capsys, *argv) -> dict:
    code, out, err = run_cli(capsys, "arch", "show", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_eagan_search_genotypes_are_described_at_the_search_widths(tmp_path, capsys):
    from raynas.methods.eagan.setup import build_search_discriminator, build_search_generator
    from raynas.nn.profile import count_params

    run, cfg = _saved_run(tmp_path, "quickstart", overrides=["data.name=fashion-mnist"])
    g, g_path = _genotype(tmp_path, "eagan-g")
    d, d_path = _genotype(tmp_path, "eagan-d")
    shown = _show(capsys, str(g_path), "--from-run", str(run.path))
    # what the search's Evaluators count (trainables/eagan/actors.py) and write to the rows `raynas results` prints
    assert shown["params"] == count_params(build_search_generator(cfg, g))
    assert (shown["width"], shown["latent_dim"]) == (cfg.eagan.search_gf_dim, cfg.model.latent_dim)
    assert (shown["resolution"], shown["channels"]) == (cfg.data.resolution, cfg.data.channels)
    assert _show(capsys, str(d_path), "--from-run", str(run.path))["params"] == count_params(
        build_search_discriminator(cfg, d))
    code, text, err = run_cli(capsys, "arch", "show", str(g_path), "--from-run", str(run.path))
    assert code == 0, err
    assert text.splitlines()[0] == (f"eagan-g  32x32, 1 channel(s), width {cfg.eagan.search_gf_dim}, latent "
                                    f"{cfg.model.latent_dim}; sizes: the eagan search's widths, from the run "
                                    f"{run.location}")


def test_damgan_genotype_is_counted_as_its_search_counts_it(tmp_path, capsys):
    from raynas.methods.damgan.generator_search import derived_params

    run, cfg = _saved_run(tmp_path, "quickstart", method="damgan", overrides=["model.gf_dim=16"])
    g, path = _genotype(tmp_path, "damgan-g")
    assert _show(capsys, str(path), "--from-run", str(run.path))["params"] == derived_params(g, cfg)
    # --preset: the sizes a run of that preset builds (quickstart is an EAGAN preset, which does not search
    # damgan-g: the sizes fixed training builds it at)
    from raynas.config import load_config

    preset = load_config("quickstart")
    shown = _show(capsys, str(path), "--preset", "quickstart")
    assert (shown["width"], shown["latent_dim"]) == (preset.model.gf_dim, preset.model.latent_dim)
    assert shown["sizes_from"] == "sizes: model.gf_dim, model.latent_dim, from the preset quickstart"


def test_a_fixed_run_is_described_as_its_training_built_it(tmp_path, capsys):
    from raynas.build import build_generator
    from raynas.nn.profile import count_params

    g, path = _genotype(tmp_path, "eagan-g")
    run, cfg = _saved_run(tmp_path, "quickstart", method="train",
                          overrides=["model.generator=genotype", f"model.g_genotype={path}", "model.gf_dim=24",
                                     "model.latent_dim=30"])
    shown = _show(capsys, str(path), "--from-run", str(run.path))
    assert shown["params"] == count_params(build_generator(cfg.model, cfg.data))  # the one build path
    assert (shown["width"], shown["latent_dim"]) == (24, 30)


def test_without_a_run_the_summary_names_the_width_it_used(tmp_path, capsys):
    _, path = _genotype(tmp_path, "eagan-g")
    code, text, err = run_cli(capsys, "arch", "show", str(path))
    assert code == 0, err
    assert "width default" not in text and "width 256 (the builder's default), latent 120" in text.splitlines()[0]
    assert _show(capsys, str(path), "--width", "8")["width"] == 8


@pytest.mark.parametrize("extra", [["--width", "8"], ["--dataset", "mnist"], ["--preset", "quickstart"]])
def test_from_run_with_other_sizes_is_one_clear_error(tmp_path, capsys, extra):
    run, _ = _saved_run(tmp_path, "quickstart")
    _, path = _genotype(tmp_path, "eagan-g")
    code, _, err = run_cli(capsys, "arch", "show", str(path), "--from-run", str(run.path), *extra)
    assert_user_error(code, err, "--from-run", extra[0], "pass it alone")


def test_from_run_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    _, path = _genotype(tmp_path, "eagan-g")
    code, _, err = run_cli(capsys, "arch", "show", str(path), "--from-run", str(tmp_path))
    assert_user_error(code, err, "not a raynas run directory")
    code, _, err = run_cli(capsys, "arch", "show", "stylegan2", "--from-run", str(tmp_path))
    assert_user_error(code, err, "--from-run does not apply to stylegan2")
