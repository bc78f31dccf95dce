"""Hostile but fair input: poisoned checkpoints never run code, and every bad input exits 2 with one message
and leaves no run directory (one parametrised CLI test)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import assert_user_error, run_cli

FIXTURES = Path(__file__).parents[1] / "fixtures" / "old_runs"


class _Evil:
    """Unpickling this writes a marker file: what a crafted checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def poison(path: Path, marker: Path) -> Path:
    """A file with raynas' checkpoint marker around an object whose unpickling runs code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "raynas-checkpoint", "version": 1, "state": {"evil": _Evil(marker)}}, path)
    return path


def test_load_checkpoint_refuses_objects_before_they_run(tmp_path):
    from raynas.checkpoints import load_checkpoint
    from raynas.errors import CheckpointError

    marker = tmp_path / "marker"
    with pytest.raises(CheckpointError, match="holds Python objects"):
        load_checkpoint(poison(tmp_path / "state.pt", marker))
    assert not marker.exists()


def test_random_bytes_are_not_a_checkpoint_rather_than_python_objects(tmp_path):
    """An unknown opcode is garbage, not a pickled object: the message must not send a user hunting for code."""
    from raynas.checkpoints import load_checkpoint
    from raynas.errors import CheckpointError

    noise = tmp_path / "teacher.pt"
    noise.write_bytes(bytes(range(256)) * 3)
    with pytest.raises(CheckpointError, match=r"teacher\.pt is not a checkpoint: its bytes are not a file "
                                              r"torch\.save wrote") as info:
        load_checkpoint(noise)
    assert "Python objects" not in str(info.value)


def test_metrics_on_a_poisoned_checkpoint_exits_2_without_running_it(capsys, tmp_path):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "eagan-g-round0", run)
    state = poison(run / "tune" / "trial" / "checkpoint_000000" / "state.pt", marker)
    code, _, err = run_cli(capsys, "metrics", f"checkpoint:{state}", "dataset:embedded:test")
    assert_user_error(code, err, "holds Python objects")
    assert not marker.exists()


def test_eagan_resume_with_a_poisoned_or_wrong_search_state_exits_2(capsys, tmp_path):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "eagan-g-round0", run)
    poison(run / "search_state.pt", marker)
    code, _, err = run_cli(capsys, "search", "eagan", "--resume", str(run), "--num-cpus", "2")
    assert_user_error(code, err, "search_state.pt", "holds Python objects")
    assert not marker.exists()
    from raynas.checkpoints import save_checkpoint

    save_checkpoint(run / "search_state.pt", {"round": 3})  # plain data, but not a search state
    code, _, err = run_cli(capsys, "search", "eagan", "--resume", str(run), "--num-cpus", "2")
    assert_user_error(code, err, "is not an EAGAN search state")


def test_the_tune_searcher_restores_json_only(tmp_path):
    import pickle

    from raynas.errors import CheckpointError
    from searchers.tune_adapter import NSGA2TuneSearcher

    marker = tmp_path / "marker"
    path = tmp_path / "searcher.pkl"
    path.write_bytes(pickle.dumps(_Evil(marker)))
    searcher = NSGA2TuneSearcher(n_choices=[2, 2], to_config=lambda v: {"v": v}, metric=["x"], mode=["min"],
                                 pop_size=4)
    with pytest.raises(CheckpointError, match="not a JSON searcher state"):
        searcher.restore(str(path))
    assert not marker.exists()
    searcher.save(str(tmp_path / "ok.json"))
    json.loads((tmp_path / "ok.json").read_text())  # plain JSON on disk


@pytest.mark.slow
def test_train_resume_with_a_poisoned_tune_checkpoint_exits_2_inside_the_worker(ray_session, capsys, tmp_path):
    """The same refusal inside a Ray worker (train, retrain and DAMGAN resumes all restore through it)."""
    from raynas.cli.common import create_run
    from raynas.config import load_config
    from trainables.fixed_trial import train_fixed
    from trainables.launch import run_trainable

    cfg = load_config("quickstart", ["train.epochs=2", "train.iters_per_epoch=1", "model.gf_dim=8",
                                     "model.df_dim=8", "model.latent_dim=8", "data.limit=64", "eval.every=0",
                                     "eval.num_samples=32", "eval.batch_size=32", f"run.output_dir={tmp_path}"],
                      method="train")
    run = create_run(cfg, "train", name="poisoned")
    with pytest.raises(Exception, match="trial failed"):
        run_trainable(train_fixed, cfg, run, resources={"cpu": 1}, max_failures=0,
                      param_space={"_crash_after_epoch": 1, "_crash_marker": str(tmp_path / "crashed")})
    (state,) = list((run.path / "tune").rglob("state.pt"))
    marker = tmp_path / "marker"
    poison(state, marker)
    capsys.readouterr()  # forget the crash above
    code, _, err = run_cli(capsys, "train", "--resume", str(run.path))
    last = err.strip().splitlines()[-1]  # Tune's progress lines come first; then raynas' one message
    assert code == 2 and err.count("raynas: error:") == 1 and "Traceback" not in err, err
    assert last.startswith("raynas: error: ") and "holds Python objects" in last
    assert not marker.exists()


# ============================================================================ every bad input: exit 2, no run dir
def _binary(tmp_path: Path) -> str:
    p = tmp_path / "genotype.bin"
    p.write_bytes(bytes(range(256)) * 4)
    return str(p)


def _latin1(tmp_path: Path) -> str:
    p = tmp_path / "genotype.json"
    p.write_bytes('{"space": "eagan-g", "cells": ["caf\xe9"]}'.encode("latin-1"))
    return str(p)


def _resume_dir(tmp_path: Path, config: str | None) -> str:
    d = tmp_path / "resume-me"
    d.mkdir()
    (d / "run.json").write_text("{}")
    if config is not None:
        (d / "config.yaml").write_text(config)
    return str(d)


def _unknown_op(tmp_path: Path) -> str:
    g = json.loads((Path(__file__).parents[2] / "raynas" / "genotypes" / "eagan-cifar10-G.json").read_text())
    g["cells"][0]["normal"][0] = "conv_9x9"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(g))
    return str(p)


def _under_a_file(tmp_path: Path, name: str) -> str:
    """A path whose folder is a regular file: no user, root included, can write it."""
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / name)


def _run_copy(tmp_path: Path) -> str:
    run = tmp_path / "eagan-copy"
    if not run.exists():
        shutil.copytree(FIXTURES / "eagan-g-round0", run)
    return str(run)


def _damgan_run_with_a_darts_genotype(tmp_path: Path) -> str:
    """A finished-looking DAMGAN run whose best_G.json holds a classifier genotype."""
    from raynas.spaces import Genotype

    run = Path(_run_copy(tmp_path))
    Genotype.load("darts-v2").save(run / "best_G.json")
    (run / "alpha.json").write_text("{}")
    return str(run)


NO_GPU = not torch.cuda.is_available()
CASES = [
    # (id, argv builder, message fragments)
    ("unknown-preset", lambda t: ["train", "--preset", "nope"], ["unknown preset", "quickstart"]),
    ("unknown-key", lambda t: ["train", "--set", "train.epoch=2"], ["valid keys are", "epochs"]),
    ("wrong-type", lambda t: ["train", "--set", "train.epochs=many"], ["expected an integer"]),
    ("above-max", lambda t: ["train", "--set", "train.ema_decay=3"], ["above the maximum"]),
    ("nan", lambda t: ["train", "--set", "train.lr_g=.nan"], ["train.lr_g", "not a finite number"]),
    ("inf", lambda t: ["train", "--set", "train.lr_d=.inf"], ["train.lr_d", "not a finite number"]),
    ("eagan-nan", lambda t: ["search", "eagan", "--set", "eagan.mutation_prob=.nan"], ["eagan.mutation_prob"]),
    ("beta2-one", lambda t: ["train", "--set", "train.beta2=1.0"], ["train.beta2", "maximum itself is excluded"]),
    ("device-tpu", lambda t: ["train", "--set", "train.device=tpu"], ["train.device='tpu'", "cuda:N"]),
    ("epochs-1e23", lambda t: ["train", "--set", "train.epochs=1e23"], ["train.epochs", "expected an integer"]),
    ("epochs-1.0e+23", lambda t: ["train", "--set", "train.epochs=1.0e+23"], ["train.epochs", "above the maximum"]),
    ("duplicate-stage", lambda t: ["search", "eagan", "--set", "eagan.stages=[g,g]"], ["names a stage twice"]),
    ("odd-population", lambda t: ["search", "eagan", "--set", "eagan.population=5"], ["even population"]),
    ("objective-not-computed", lambda t: ["search", "eagan", "--set", "eval.metrics=fid"], ["eval.metrics"]),
    ("latent-not-divisible", lambda t: ["search", "eagan", "--set", "model.latent_dim=64"], ["multiple of 3"]),
    ("gpu-per-evaluator", lambda t: ["search", "eagan", "--resources", "gpu=2"], ["--resources gpu=2", "fraction"]),
    ("bad-resources-key", lambda t: ["train", "--resources", "tpu=1"], ["cpu=2,gpu=0.5"]),
    ("negative-resources", lambda t: ["train", "--resources", "cpu=-1"], ["must be >= 0"]),
    ("set-without-equals", lambda t: ["train", "--set", "train"], ["section.key=value"]),
    ("bad-split", lambda t: ["train", "--set", "data.split=tarin"], ["not a split of embedded"]),
    ("zero-fraction", lambda t: ["train", "--set", "data.fraction=0"], ["data.fraction", "minimum itself"]),
    ("gan-dataset-on-classifier", lambda t: ["search", "darts", "--set", "data.name=stl10"],
     ["data.name", "classify run"]),
    ("imagenet-on-gan", lambda t: ["train", "--set", "data.name=imagenet"], ["not allowed for a gan run"]),
    ("missing-dataset", lambda t: ["train", "--set", "data.name=cifar10", "--data-root", str(t / "none")],
     ["cifar-10-batches-py"]),
    ("other-methods-key", lambda t: ["search", "damgan", "--set", "eagan.population=8"],
     ["eagan.population", "does not apply"]),
    ("classifier-preset-on-gan", lambda t: ["search", "eagan", "--preset", "darts-cifar10"], ["classify preset"]),
    ("gan-preset-on-classifier", lambda t: ["search", "darts", "--preset", "eagan-cifar10"], ["gan preset"]),
    ("gan-genotype-classifier-preset", lambda t: ["retrain", "eagan-cifar10-G", "--preset", "darts-cifar10"],
     ["classify preset"]),
    ("kprime-not-divisor", lambda t: ["ablate", "damgan", "--grid", "kprime=1,2,3"], ["kprime=3", "1, 2, 4, 8, 16"]),
    ("unknown-grid-key", lambda t: ["ablate", "damgan", "--grid", "width=1,2"], ["--grid", "kprime"]),
    ("repeated-grid-value", lambda t: ["ablate", "damgan", "--grid", "kprime=2,2"], ["repeats a value"]),
    ("darts-too-shallow", lambda t: ["search", "darts", "--set", "darts.layers=2"], ["darts.layers"]),
    ("darts-no-validation-part", lambda t: ["search", "darts", "--set", "data.train_portion=1"],
     ["data.train_portion"]),
    ("seeds-zero", lambda t: ["search", "darts", "--seeds", "0"], ["--seeds", "at least 1"]),
    ("arch-binary", lambda t: ["arch", "show", _binary(t)], ["not a text JSON file"]),
    ("arch-latin1", lambda t: ["arch", "show", _latin1(t)], ["not a text JSON file"]),
    ("arch-missing", lambda t: ["arch", "show", str(t / "nope.json")], ["does not exist"]),
    ("arch-unknown-op", lambda t: ["arch", "show", _unknown_op(t)], ["unknown op 'conv_9x9'"]),
    ("arch-too-few-cells", lambda t: ["arch", "show", "darts-v2", "--layers", "2"], ["two reduction"]),
    ("retrain-binary", lambda t: ["retrain", _binary(t)], ["not a text JSON file"]),
    ("resume-no-config", lambda t: ["train", "--resume", _resume_dir(t, None)], ["no config.yaml"]),
    ("resume-unparsable-config", lambda t: ["train", "--resume", _resume_dir(t, "data: [unclosed")],
     ["not valid YAML"]),
    ("resume-tagged-config", lambda t: ["train", "--resume", _resume_dir(t, "data: !!python/object:os.system {}")],
     ["not valid YAML", "!!python"]),
    ("resume-not-a-run", lambda t: ["train", "--resume", str(t)], ["not a raynas run directory"]),
    ("resume-with-set", lambda t: ["train", "--resume", str(t), "--set", "train.epochs=3"], ["--resume", "--set"]),
    ("resume-other-method", lambda t: ["search", "damgan", "--resume", str(t / "eagan-run")], ["eagan run"]),
    ("metrics-missing-checkpoint", lambda t: ["metrics", f"checkpoint:{t / 'none'}", "dataset:embedded:test"],
     ["does not exist"]),
    ("results-missing-run", lambda t: ["results", str(t / "none")], ["is not a directory"]),
    ("report-out-without-compare", lambda t: ["report", str(t), "--out", str(t / "x.png")], ["--compare"]),
    # Ray would accept nan and wait forever for a node that has nan CPUs
    ("resources-nan", lambda t: ["train", "--resources", "cpu=nan"], ["--resources 'cpu=nan'", "not a finite"]),
    ("resources-inf-search", lambda t: ["search", "damgan", "--resources", "cpu=inf"], ["cpu=inf", "not a finite"]),
    ("num-cpus-negative", lambda t: ["train", "--num-cpus", "-1"], ["--num-cpus", "at least 1, got -1"]),
    ("num-cpus-zero", lambda t: ["search", "eagan", "--num-cpus", "0"], ["--num-cpus", "at least 1, got 0"]),
    ("arch-png-unwritable", lambda t: ["arch", "show", "darts-v2", "--png", _under_a_file(t, "d.png")],
     ["--png", "cannot create the folder", "a-file"]),
    ("arch-png-is-a-folder", lambda t: ["arch", "show", "eagan-cifar10-G", "--png", str(t)], ["--png", "is a folder"]),
    ("arch-png-in-proc", lambda t: ["arch", "show", "eagan-cifar10-G", "--png", "/proc/raynas-test.png"],
     ["--png /proc/raynas-test.png", "folder you can write to"]),
    ("report-out-unwritable", lambda t: ["report", _run_copy(t), "--compare", _run_copy(t), "--out",
                                         _under_a_file(t, "c.png")], ["--out", "cannot create the folder"]),
    ("report-out-in-proc", lambda t: ["report", _run_copy(t), "--compare", _run_copy(t), "--out",
                                      "/proc/raynas-test.png"], ["--out /proc/raynas-test.png", "write to"]),
    ("results-csv-unwritable", lambda t: ["results", _run_copy(t), "--csv", _under_a_file(t, "r.csv")],
     ["--csv", "cannot create the folder"]),
    ("darts-genotype-as-generator", lambda t: ["train", "--set", "model.generator=genotype", "--set",
                                               "model.g_genotype=darts-v2"],
     ["model.g_genotype=darts-v2 holds a 'darts' genotype, not a generator genotype", "classifier genotype"]),
    ("darts-genotype-as-discriminator", lambda t: ["retrain", "eagan-cifar10-G", "darts-v2", "--preset", "quickstart"],
     ["model.d_genotype=darts-v2", "not a discriminator genotype"]),
    ("generator-genotype-as-discriminator", lambda t: ["train", "--set", "model.discriminator=genotype", "--set",
                                                       "model.d_genotype=eagan-cifar10-G"],
     ["'eagan-g' genotype, not a discriminator", "pass it as model.g_genotype"]),
    ("darts-genotype-as-fixed-d", lambda t: ["search", "eagan", "--set", "eagan.fixed_d_genotype=darts-v2"],
     ["eagan.fixed_d_genotype=darts-v2", "'darts'"]),
    ("darts-genotype-as-damgan-search-run", lambda t: ["ablate", "damgan-edge", "--search-run",
                                                       _damgan_run_with_a_darts_genotype(t)],
     ["best_G.json holds a 'darts' genotype", "raynas search damgan"]),
    ("metrics-resolution-0", lambda t: ["metrics", "dataset:embedded:test", "dataset:embedded:train", "--resolution",
                                        "0"], ["--resolution", "at least 1, got 0"]),
    ("arch-width-zero", lambda t: ["arch", "show", "eagan-cifar10-G", "--width", "0"],
     ["--width", "at least 1, got 0"]),
    ("results-max-rows-negative", lambda t: ["results", _run_copy(t), "--max-rows", "-1"],
     ["--max-rows", "at least 0, got -1"]),
    ("regan-exclude-everything", lambda t: ["train", "--set", "regan.exclude=*"],
     ["regan.exclude=['*']", "selects no parameter"]),
    ("regan-exclude-everything-on", lambda t: ["train", "--set", "regan.enabled=true", "--set", "regan.exclude=re:."],
     ["regan.exclude=['re:.']", "selects no parameter"]),
    ("regan-prunes-nothing", lambda t: ["train", "--set", "regan.enabled=true", "--set", "regan.include=to_rgb.2.bias"],
     ["regan.sparsity=0.3 prunes no weight", "to_rgb.2.bias: 1 weights"]),
    ("storage-empty", lambda t: ["train", "--storage", ""], ["--storage is empty", "leave --storage out"]),
    ("storage-empty-search", lambda t: ["search", "darts", "--storage", ""], ["--storage is empty"]),
    ("output-dir-empty-key", lambda t: ["config", "show", "--set", "run.output_dir="], ["run.output_dir is empty"]),
    ("resume-with-empty-storage", lambda t: ["train", "--resume", str(t), "--storage", ""],
     ["--resume", "--storage would be ignored"]),
]
if NO_GPU:
    CASES += [
        ("cuda-without-gpu", lambda t: ["train", "--set", "train.device=cuda", "--num-cpus", "2"], ["has no GPU"]),
        ("gpu-trial-without-gpu", lambda t: ["train", "--resources", "gpu=1", "--num-cpus", "2"], ["0 GPU(s)"]),
    ]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_message_and_no_run_dir(case, capsys, tmp_path, monkeypatch):
    name, argv, fragments = case
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # where a relative default (runs/) would land
    if name == "resume-other-method":
        shutil.copytree(FIXTURES / "eagan-g-round0", tmp_path / "eagan-run")
    out = tmp_path / "runs"
    args = argv(tmp_path)
    if args[0] in ("train", "search", "ablate", "retrain") and "--resume" not in args:
        args += ["--output-dir", str(out)]
    code, _, err = run_cli(capsys, *args)
    assert_user_error(code, err, *fragments)
    assert len(err.strip().splitlines()) == 1 or err.count("raynas: error:") == 1
    assert not out.exists() or not any(out.iterdir()), "a bad input left a run directory"
    assert not any(cwd.iterdir()), "a bad input left a path in the working directory"


def test_the_bad_input_set_is_large():
    assert len(CASES) >= 40
