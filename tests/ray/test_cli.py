"""The CLI: every bad input exits with status 2 and a one-paragraph message, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ROOT, assert_user_error, run_cli


def test_presets_and_config_keys(capsys):
    import yaml

    from raynas.config import load_config

    code, out, _ = run_cli(capsys, "presets")
    presets, genotypes = out.split("\n\nshipped genotypes (use the name wherever a genotype file is asked for):\n")
    root = Path(__file__).resolve().parents[2] / "raynas"
    # a table row per preset file, named first (descriptions wrap onto indented lines), then one line per
    # shipped genotype with its file
    rows = [line for line in presets.splitlines()[1:] if line and not line.startswith((" ", "("))]
    assert code == 0 and [line.split()[0] for line in rows] == sorted(
        p.stem for p in (root / "presets").glob("*.yaml"))
    assert [line.split() for line in genotypes.splitlines()] == [
        [p.stem, str(p)] for p in sorted((root / "genotypes").glob("*.json"))]
    code, out, _ = run_cli(capsys, "config", "show", "--preset", "quickstart", "--set", "train.epochs=9")
    shown = yaml.safe_load(out)
    assert code == 0 and shown["train"]["epochs"] == 9
    expected = load_config("quickstart", ["train.epochs=9"]).to_dict()
    expected["run"]["output_dir"] = str(Path(expected["run"]["output_dir"]).resolve())  # shown made absolute
    assert shown == expected


def test_unknown_preset(capsys):
    code, _, err = run_cli(capsys, "train", "--preset", "nope")
    assert_user_error(code, err, "unknown preset", "quickstart")


def test_unknown_config_key(capsys):
    code, _, err = run_cli(capsys, "train", "--set", "train.epoch=2")
    assert_user_error(code, err, "valid keys are", "epochs")


def test_wrong_type_and_range(capsys):
    code, _, err = run_cli(capsys, "train", "--set", "train.epochs=many")
    assert_user_error(code, err, "expected an integer")
    code, _, err = run_cli(capsys, "train", "--set", "train.ema_decay=3")
    assert_user_error(code, err, "above the maximum")


def test_missing_dataset(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--set", "data.name=cifar10", "--data-root", str(tmp_path / "none"),
                           "--output-dir", str(tmp_path))
    assert_user_error(code, err, "cifar-10-batches-py")


def test_bad_resources(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--resources", "tpu=1", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "cpu=2,gpu=0.5")


def test_unwritable_run_dir(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(capsys, "train", "--output-dir", str(blocker / "runs"))
    assert_user_error(code, err, str(blocker))


def test_inception_weights_that_do_not_load(capsys, tmp_path):
    bad = tmp_path / "inception.pth"
    bad.write_bytes(b"definitely not a state dict")
    code, _, err = run_cli(capsys, "train", "--set", "eval.extractor=inception-v3-compat",
                           "--inception-weights", str(bad), "--output-dir", str(tmp_path))
    assert_user_error(code, err, str(bad))


def test_missing_and_corrupt_checkpoint(capsys, tmp_path):
    code, _, err = run_cli(capsys, "metrics", f"checkpoint:{tmp_path / 'missing'}", "dataset:embedded:test",
                           "--extractor", "raynas-fmnist-cnn", "--protocol", "quick")
    assert_user_error(code, err, "does not exist")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("preset: quickstart\n")
    (run / "run.json").write_text("{}")
    (run / "state.pt").write_bytes(b"\x00garbage")
    code, _, err = run_cli(capsys, "metrics", f"checkpoint:{run / 'state.pt'}", "dataset:embedded:test",
                           "--extractor", "raynas-fmnist-cnn", "--protocol", "quick")
    assert_user_error(code, err, "state.pt")


def test_results_of_missing_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, "results", str(tmp_path / "nothing"))
    assert_user_error(code, err, str(tmp_path / "nothing"), "is not a directory", "printed when the run started")


def test_metrics_real_vs_real(capsys):
    code, out, err = run_cli(capsys, "metrics", "dataset:embedded:train", "dataset:embedded:test",
                             "--extractor", "raynas-fmnist-cnn", "--num-samples", "300", "--metrics", "fid,is",
                             "--device", "cpu")
    assert code == 0, err
    fid = float(next(line.split()[1] for line in out.splitlines() if line.startswith("fid ")))
    assert 0 <= fid < 50


def test_arch_show_json_and_png(capsys, tmp_path, monkeypatch):
    import json
    from collections import Counter

    from figures import capture_figures, is_png

    from raynas.nn.profile import count_params
    from raynas.nn.registry import build_network
    from raynas.spaces import get_space
    from raynas.spaces.eagan import EAGAN_CIFAR10_G

    path = tmp_path / "g.json"
    EAGAN_CIFAR10_G.save(path)
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "arch", "show", str(path), "--dataset", "cifar10", "--json",
                             "--png", str(tmp_path / "g.png"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["params"] == count_params(build_network(EAGAN_CIFAR10_G, resolution=32, channels=3))
    assert summary["params"] == 7_142_403  # the paper's 7.14M generator
    assert summary["flops"] > 0
    # the diagram: the latent z and every cell's four nodes, and one label per edge of the genotype's graph,
    # among them every op the genotype chose ('none' edges are not drawn)
    assert is_png(tmp_path / "g.png")
    (ax,) = figures[(tmp_path / "g.png").resolve()].axes
    nodes = ["z", *(f"c{c}.n{n}" for c in range(3) for n in range(4))]
    labels = [t for t in ax.text_strings() if t not in nodes]
    assert ax.title == "eagan-g genotype" and [t for t in ax.text_strings() if t in nodes] == nodes
    assert sorted(labels) == sorted(op for _, _, op in get_space("eagan-g").edge_list(EAGAN_CIFAR10_G)
                                    if op != "none")
    chosen = Counter(op for cell in EAGAN_CIFAR10_G.to_dict()["cells"] for group in cell.values() for op in group
                     if op != "none")
    assert not chosen - Counter(op.split(" ")[0] for op in labels)
    code, out, _ = run_cli(capsys, "arch", "show", str(path), "--dataset", "stl10")
    assert code == 0 and "params 11,550,723" in out  # 11.55M at 48x48, as the paper reports


def test_bad_genotypes(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"space": "eagan-g", "cells": [{"up": ["bilinear", "laser"], '
                   '"normal": ["none", "none", "none", "none", "none"]}]}')
    code, _, err = run_cli(capsys, "arch", "show", str(bad))
    assert_user_error(code, err, "eagan-g has 3 cells, the genotype has 1")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, err = run_cli(capsys, "arch", "show", str(broken))
    assert_user_error(code, err, "not valid JSON")
    code, _, err = run_cli(capsys, "arch", "show", str(tmp_path / "missing.json"))
    assert_user_error(code, err, "does not exist")
    code, _, err = run_cli(capsys, "retrain", str(bad), "--preset", "quickstart", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "eagan-g has 3 cells, the genotype has 1")


def test_eagan_latent_that_cannot_split_fails_before_ray(capsys, tmp_path):
    code, _, err = run_cli(capsys, "search", "eagan", "--set", "model.latent_dim=64", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "latent_dim=64", "multiple of 3")
    assert not list(tmp_path.iterdir()), "no run directory for a config that cannot run"


def test_trial_failures_become_one_clear_user_error(capsys, monkeypatch):
    """What Tune hands back (a diverged trial, a RaynasError inside a worker) reaches the user as exit 2."""
    from types import SimpleNamespace

    import pytest

    import raynas.cli as cli
    from raynas.errors import DatasetError, RaynasError
    from trainables.launch import raise_trial_errors

    diverged = SimpleNamespace(error=None, path="/x", metrics={"diverged": True, "error": "D loss is nan at step 7"})
    with pytest.raises(RaynasError, match="training diverged: D loss is nan at step 7"):
        raise_trial_errors([diverged])

    class Wrapped(Exception):  # how Ray wraps a worker's exception: the original is its cause
        pass

    wrapped = Wrapped("RayTaskError(DatasetError)")
    wrapped.__cause__ = DatasetError("dataset 'cifar10' not found; pass --data-root")
    with pytest.raises(DatasetError, match="pass --data-root"):
        raise_trial_errors([SimpleNamespace(error=wrapped, path="/x", metrics={})])

    def fake_train(args):
        raise_trial_errors([diverged])

    monkeypatch.setattr(cli, "cmd_train", fake_train)  # build_parser() binds it when main() runs
    code, _, err = run_cli(capsys, "train")
    assert_user_error(code, err, "training diverged", "D loss is nan")


def test_eagan_objectives_must_be_computed_and_population_even(capsys, tmp_path):
    code, _, err = run_cli(capsys, "search", "eagan", "--set", "eval.metrics=fid", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "eval.metrics", "is")
    code, _, err = run_cli(capsys, "search", "eagan", "--set", "eagan.population=5", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "even population")
    assert not list(tmp_path.iterdir())


def test_resume_refuses_changed_settings(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--resume", str(tmp_path), "--set", "train.epochs=10")
    assert_user_error(code, err, "--resume", "--set")


def test_gpu_trial_on_a_machine_without_gpus_is_refused_up_front(capsys, ray_session, tmp_path):
    import pytest

    if ray_session.cluster_resources().get("GPU"):
        pytest.skip("this machine has a GPU")
    code, _, err = run_cli(capsys, "train", "--resources", "gpu=1", "--output-dir", str(tmp_path))
    assert_user_error(code, err, "gpu=1 but this Ray has 0 GPU(s)", "--resources gpu=0")
    assert not list(tmp_path.iterdir()), "no run directory for a run that cannot start"


def test_damgan_resume_refuses_changed_settings_too(capsys, tmp_path):
    code, _, err = run_cli(capsys, "search", "damgan", "--resume", str(tmp_path), "--set", "damgan.kprime=2")
    assert_user_error(code, err, "--resume", "--set")


def test_shipped_generator_is_usable_by_name(capsys, tmp_path):
    import json

    from raynas.cli import absolute_paths
    from raynas.config import load_config
    from raynas.errors import GenotypeError
    from raynas.spaces.eagan import EAGAN_CIFAR10_G
    from raynas.spaces.genotype import Genotype, builtin_genotypes

    assert Genotype.load("eagan-cifar10-G") == EAGAN_CIFAR10_G
    code, out, err = run_cli(capsys, "arch", "show", "eagan-cifar10-G", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["params"] == 7_142_403
    # G* as the authors released it (issue 13; the earlier figure reading had three dead edges): cell 2's
    # up[0] node feeds only 'none' edges, so its nearest + 1x1 conv (256·256+256) never reaches the image.
    assert summary["dead_edges"] == ["cell2.up[0]"]
    assert summary["dead_params"] == 65_792
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0 and "eagan-cifar10-G" in out
    # The CLI makes paths absolute for Ray workers, but a shipped name must survive that.
    cfg = absolute_paths(load_config("eagan-cifar10", ["model.g_genotype=eagan-cifar10-G",
                                                       "model.d_genotype=rel/D.json"]))
    assert cfg.model.g_genotype == "eagan-cifar10-G"
    assert cfg.model.d_genotype == str(tmp_path.cwd() / "rel" / "D.json")
    with pytest.raises(GenotypeError, match="eagan-cifar10-Q does not exist.*shipped one: .*eagan-cifar10-G"):
        Genotype.load("eagan-cifar10-Q")
    assert set(builtin_genotypes()) == {"eagan-cifar10-G", "darts-v1", "darts-v2", "pc-darts-cifar",
                                        "pc-darts-imagenet", "swd-nas-cifar10"}


def test_review_fixes_for_names_paths_reports_and_old_configs(capsys, tmp_path):
    import json
    import random

    from raynas.cli import absolute_paths
    from raynas.config import RaynasConfig, from_dict, load_config, to_dict, upgrade_saved_config
    from raynas.spaces import get_space
    from raynas.spaces.eagan import EAGAN_CIFAR10_G
    from trainables.fixed_trial import _genotype_json

    # A retrain by a shipped name reaches the trainable as that genotype.
    assert _genotype_json("eagan-cifar10-G") == EAGAN_CIFAR10_G.to_json()
    # Only genotype keys may keep a shipped name; other paths still become absolute.
    cfg = absolute_paths(load_config("quickstart", ["run.output_dir=eagan-cifar10-G"]))
    assert cfg.run.output_dir == str(tmp_path.cwd() / "eagan-cifar10-G")
    # A config saved before the per-stage n_critic keys resumes as that version ran (train.n_critic).
    old = to_dict(load_config("quickstart", ["train.n_critic=5"]))
    del old["eagan"]["stage_g_n_critic"], old["eagan"]["stage_d_n_critic"]
    up = from_dict(RaynasConfig, upgrade_saved_config(old))
    assert (up.eagan.stage_g_n_critic, up.eagan.stage_d_n_critic) == (5, 5)
    # --out without --compare is a mistake, not silently ignored.
    code, _, err = run_cli(capsys, "report", str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert_user_error(code, err, "--compare")
    # A coupled pair is shown as its two halves; JSON sums them.
    pair = get_space("eagan-gd").sample(random.Random(0))
    pair.save(tmp_path / "gd.json")
    code, out, err = run_cli(capsys, "arch", "show", str(tmp_path / "gd.json"), "--json", "--width", "8")
    assert code == 0, err
    s = json.loads(out)
    assert s["space"] == "eagan-gd" and s["params"] == s["G"]["params"] + s["D"]["params"]
    assert s["G"]["space"] == "eagan-g" and s["D"]["space"] == "eagan-d"


def test_dead_edges_follow_the_networks_downsample_setting():
    import random

    from raynas.nn.profile import summarize
    from raynas.spaces import get_space

    d = get_space("eagan-d").sample(random.Random(0))
    default = summarize(d, resolution=32, channels=1, width=8)
    assert {"cell1.down[0]", "cell2.down[1]"} <= set(default["dead_edges"])
    every = summarize(d, resolution=32, channels=1, width=8, downsample=(True, True, True))
    assert not any(".down[" in e for e in every["dead_edges"])


def test_version_and_a_reader_that_leaves_early(capsys):
    """`raynas --version` answers; `raynas arch show ... | head` ends quietly when head stops reading."""
    import subprocess
    import sys

    from raynas import __version__

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"raynas {__version__}"
    command = [sys.executable, "-m", "raynas", "arch", "show", "darts-v2", "--dataset", "cifar10"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
