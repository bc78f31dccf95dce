"""Taking a network away: ``raynas.model`` for every family, ``raynas export`` round trips (pt2, ONNX, state dict),
a pt2 file loaded where raynas cannot be imported, ``raynas sample`` reproducible per seed, model cards against
their run, and the errors of each."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import assert_user_error, run_cli

from raynas.config import FIXED, load_config
from raynas.export.api import resolve
from raynas.export.card import CARD_JSON, CARD_MD
from raynas.export.formats import TOLERANCES, export_network
from raynas.results import RunDir

# every family raynas builds, at tiny sizes (MNIST-shaped images: 32x32, one channel)
FAMILIES = {
    "darts": ("darts-v2", {"layers": 3, "channels": 4}, "classifier"),
    "swd-nas": ("swd-nas-cifar10", {"layers": 5, "channels": 4}, "classifier"),
    "darts-gal": ("{pruned}", {}, "classifier"),
    "eagan-g": ("eagan-cifar10-G", {"width": 8, "latent_dim": 9}, "generator"),
    "eagan-d": ("{eagan_d}", {"width": 8}, "discriminator"),
    "damgan-g": ("{damgan_g}", {"width": 8, "latent_dim": 8}, "generator"),
    "sngan": ("sngan", {"width": 8, "latent_dim": 8}, "generator"),
    "autogan": ("autogan", {"width": 8}, "discriminator"),
}


@pytest.fixture(scope="module")
def genotype_files(tmp_path_factory):
    """Genotypes no file ships: a DARTS-GAL pruned network, a DAMGAN generator, an EAGAN discriminator."""
    from raynas.methods.dartsgal.genotype import DartsGalGenotype, load_source
    from raynas.spaces import get_space

    d = tmp_path_factory.mktemp("genotypes")
    full = DartsGalGenotype.full(load_source("darts-v2"), 3, 4, 1, reduction_positions=[1])
    full.with_masks([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]]).save(d / "pruned.json")
    get_space("damgan-g").sample(random.Random(3)).save(d / "damgan_g.json")
    get_space("eagan-d").sample(random.Random(3)).save(d / "eagan_d.json")
    return {"pruned": str(d / "pruned.json"), "damgan_g": str(d / "damgan_g.json"), "eagan_d": str(d / "eagan_d.json")}


def family(name, files):
    source, sizes, kind = FAMILIES[name]
    return source.format(**files), {"dataset": "mnist", **sizes}, kind


def randomised(net):
    """Non-trivial BN statistics, so an export that dropped them would compute something else."""
    gen = torch.Generator().manual_seed(5)
    for m in net.module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return net


def test_import_raynas_stays_torch_free_and_model_is_lazy():
    code = ("import sys, raynas; assert 'torch' not in sys.modules, 'import raynas loaded torch'; "
            "m = raynas.model; assert 'torch' in sys.modules and callable(m); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("name", list(FAMILIES))
def test_model_builds_every_family_in_eval_mode(name, genotype_files):
    import raynas

    source, sizes, kind = family(name, genotype_files)
    module = raynas.model(source, **sizes)
    net = resolve(source, **sizes)
    assert type(module) is type(net.module) and not module.training and net.kind == kind
    with torch.no_grad():
        y = module(net.example_input(2))
    y = y[0] if isinstance(y, tuple) else y
    expected = {"classifier": (2, 10), "generator": (2, 1, 32, 32), "discriminator": (2, 1)}[kind]
    assert tuple(y.shape) == expected
    if kind == "generator":
        assert net.input_shape == (sizes["latent_dim"],)


def test_a_coupled_eagan_pair_gives_either_half(tmp_path):
    from raynas.spaces import get_space

    get_space("eagan-gd").sample(random.Random(1)).save(tmp_path / "gd.json")
    g = resolve(tmp_path / "gd.json", dataset="mnist", width=8, latent_dim=9)
    d = resolve(tmp_path / "gd.json", part="discriminator", dataset="mnist", width=8)
    assert (g.family, g.kind, d.family, d.kind) == ("eagan-g", "generator", "eagan-d", "discriminator")
    with pytest.raises(Exception, match="generator or discriminator"):
        resolve(tmp_path / "gd.json", part="classifier")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_pt2_and_state_dict_round_trip_every_family(name, genotype_files, tmp_path):
    source, sizes, _ = family(name, genotype_files)
    net = randomised(resolve(source, **sizes))
    check = export_network(net, "pt2", tmp_path / "m.pt2")
    rtol, atol = TOLERANCES["pt2"]
    assert check.max_abs_diff <= atol + rtol * check.max_abs_output
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    x = net.example_input(5, seed=7)  # another batch size than traced or checked: the batch is dynamic
    with torch.no_grad():
        eager = net.module(x)
        eager = eager[0] if isinstance(eager, tuple) else eager
        torch.testing.assert_close(program(x), eager, rtol=rtol, atol=atol)
    # a plain state dict loads into the same network built again, and it computes the same (exactly)
    export_network(net, "state_dict", tmp_path / "m.pt")
    again = resolve(source, **sizes).module
    again.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    with torch.no_grad():
        y = again.eval()(x)
    assert torch.equal(y[0] if isinstance(y, tuple) else y, eager)


@pytest.mark.parametrize("name,runtime", [("eagan-g", "onnxruntime"), ("darts-gal", "onnx.reference")])
def test_onnx_round_trip(name, runtime, genotype_files, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    if runtime == "onnxruntime":
        pytest.importorskip("onnxruntime")
    else:  # the fallback when onnxruntime is not installed: onnx's reference evaluator
        import importlib.util

        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a))
    source, sizes, _ = family(name, genotype_files)
    net = randomised(resolve(source, **sizes))
    check = export_network(net, "onnx", tmp_path / "m.onnx")
    rtol, atol = TOLERANCES["onnx"]
    assert check.runtime == runtime
    assert check.max_abs_diff <= atol + rtol * check.max_abs_output
    import onnx

    onnx.checker.check_model(str(tmp_path / "m.onnx"))


def test_cli_export_pt2_loads_where_raynas_cannot_be_imported(tmp_path, capsys):
    """The issue's command at tiny sizes; the file then runs in a Python that refuses to import raynas."""
    out = tmp_path / "m.pt2"
    code, stdout, err = run_cli(capsys, "export", "darts-v2", "--dataset", "cifar10", "--layers", "3", "--channels",
                                "4", "--format", "pt2", "--out", str(out))
    assert code == 0, err
    assert "checked: the pt2 output" in stdout and "equals the eager network's" in stdout
    net = resolve("darts-v2", dataset="cifar10", layers=3, channels=4)
    x = net.example_input(4, seed=3)
    with torch.no_grad():
        expected = net.module(x)[0]
    torch.save({"x": x, "y": expected}, tmp_path / "io.pt")
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        class NoRaynas(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("raynas", "searchers", "trainables"):
                    raise ImportError("raynas is not importable here")
        sys.meta_path.insert(0, NoRaynas())
        import torch
        io = torch.load({str(tmp_path / 'io.pt')!r})
        y = torch.export.load({str(out)!r}).module()(io["x"])
        torch.testing.assert_close(y, io["y"], rtol=1e-4, atol=1e-5)
        assert not any(m.split(".")[0] == "raynas" for m in sys.modules)
        print("loaded without raynas")
    """)
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded without raynas" in done.stdout
    # the model card beside the file: the network, its cost, and the command that reproduces it
    card = json.loads((tmp_path / f"m.{CARD_JSON}").read_text())
    from raynas.nn.profile import count_flops, count_params

    assert card["parameters"] == count_params(net.module)
    assert card["flops"] == count_flops(net.module, net.example_input(1))
    assert card["genotype"]["space"] == "darts" and card["network"]["kind"] == "classifier"
    assert card["network"]["sizes"]["layers"] == 3 and card["network"]["sizes"]["channels"] == 4
    assert card["versions"]["torch"] == torch.__version__.split("+")[0] or card["versions"]["torch"]
    assert card["reproduce"].startswith("raynas export darts-v2 --format pt2")
    assert card["export"]["format"] == "pt2" and card["weights"].startswith("untrained")
    assert "# Model card: darts classifier" in (tmp_path / f"m.{CARD_MD}").read_text()


# ============================================================================ runs: weights, cards, sample
def fake_fixed_run(tmp_path, preset, overrides, state, name="run"):
    """A fixed run's directory as `raynas train` leaves it: config, run.json, a checkpoint under tune/, results."""
    from raynas.checkpoints import save_checkpoint

    cfg = load_config(preset, [*overrides, f"run.output_dir={tmp_path}"], method=FIXED)
    run = RunDir.create(tmp_path, name, config=cfg.to_dict(), seed=cfg.train.seed, preset=cfg.preset, device="cpu")
    save_checkpoint(run.path / "tune" / "train_fixed_0" / "checkpoint_000000" / "state.pt", state)
    return run, cfg


def test_classifier_run_loads_its_trained_weights_and_refuses_sizes(tmp_path):
    import raynas

    overrides = ["model.layers=3", "model.channels=4"]
    cfg = load_config("quickstart-classify", [*overrides, f"run.output_dir={tmp_path}"], method=FIXED)
    from raynas.build import build_classifier

    torch.manual_seed(1)
    trained = build_classifier(cfg)
    run, _ = fake_fixed_run(tmp_path, "quickstart-classify", overrides, {"model": trained.state_dict(), "epoch": 1})
    net = resolve(run.path)
    assert net.kind == "classifier" and net.weights.endswith(":model")
    for (k, a), b in zip(trained.state_dict().items(), net.module.state_dict().values()):
        assert torch.equal(a, b), k
    assert type(raynas.model(str(run.path))) is type(trained)
    with pytest.raises(Exception, match="fixes its network's sizes"):
        resolve(run.path, layers=5)
    # the card a finished classifier retrain writes: its last test scores, on the test split
    from raynas.export.card import write_run_card

    run.append([{"run_id": "run", "method": "train", "stage": "train", "epoch": e, "test_acc": acc, "test_top5": 0.9,
                 "test_loss": 1.0} for e, acc in ((1, 0.25), (2, 0.5))])
    assert write_run_card(run) == run.path / CARD_JSON
    card = json.loads((run.path / CARD_JSON).read_text())
    assert card["metrics"]["test_acc"] == 0.5 and card["metrics"]["epoch"] == 2
    assert card["metrics"]["protocol"]["split"] == "embedded:test" and card["metrics"]["protocol"]["samples"] == 1000
    assert card["network"]["sizes"]["layers"] == 3 and card["genotype"]["space"] == "darts"
    assert card["parameters"] == sum(p.numel() for p in trained.parameters())


def test_search_runs_give_the_network_they_found(tmp_path, genotype_files, capsys):
    """A DARTS search found a cell (its weights were a supernet's: the network comes untrained and says so, and
    `sample`-like callers that need weights are refused); a DARTS-GAL run retrained its pruned network: those
    weights come with it."""
    from raynas.checkpoints import save_checkpoint
    from raynas.methods.dartsgal.genotype import DartsGalGenotype
    from raynas.spaces import Genotype

    cfg = load_config("quickstart-classify", ["model.layers=3", "model.channels=4"], method="darts")
    run = RunDir.create(tmp_path, "darts", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    with pytest.raises(Exception, match="without a network found yet"):
        resolve(run.path)
    Genotype.load("darts-v2").save(run.path / "best.json")
    net = resolve(run.path)
    assert net.kind == "classifier" and net.weights is None and "raynas retrain" in net.note
    assert net.sizes["layers"] == 3 and net.sizes["channels"] == 4
    code, out, err = run_cli(capsys, "export", str(run.path), "--format", "state_dict", "--out",
                             str(tmp_path / "d.pt"))
    assert code == 0, err
    assert "untrained weights: the run its search trained a supernet" in out
    with pytest.raises(Exception, match="no trained weights"):
        resolve(run.path, weights=True)

    # an EAGAN search kept its found generator's weights (best_G.pt): they come along where the sizes match
    from raynas.nn.registry import build_network

    for gf_dim, loads in ((16, True), (32, False)):
        e = load_config("quickstart", [f"model.gf_dim={gf_dim}"], method="eagan")
        erun = RunDir.create(tmp_path, f"eagan{gf_dim}", config=e.to_dict(), seed=0, preset=e.preset, device="cpu")
        g = Genotype.load("eagan-cifar10-G")
        g.save(erun.path / "best_G.json")
        searched = build_network(g, resolution=32, channels=1, width=16, latent_dim=60)
        save_checkpoint(erun.path / "best_G.pt", {"genotype": g.to_json(), "G": searched.state_dict()})
        net = resolve(erun.path)
        assert (net.weights == f"{erun.path / 'best_G.pt'}:G") == loads, net.weights
        if not loads:
            assert f"raynas retrain {erun.path / 'best_G.json'}" in net.note

    cfg = load_config("quickstart-classify", [], method="darts-gal")
    pruned = DartsGalGenotype.load(genotype_files["pruned"])
    gal = RunDir.create(tmp_path, "gal", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    pruned.save(gal.path / "pruned.json")
    torch.manual_seed(2)
    trained = resolve(genotype_files["pruned"], dataset="embedded").module
    for p in trained.parameters():
        p.data.normal_()
    save_checkpoint(gal.path / "tune" / "t" / "checkpoint_000002" / "state.pt",
                    {"phase": "done", "pruned": pruned.to_json(), "trainer": {"model": trained.state_dict()}})
    net = resolve(gal.path)
    assert net.family == "darts-gal" and net.weights.endswith(":trainer.model"), net.weights
    for k, v in trained.state_dict().items():
        assert torch.equal(net.module.state_dict()[k], v), k


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """A trained GAN run, made as a retrain makes it: `raynas train` through Ray at tiny sizes, one epoch."""
    pytest.importorskip("ray")
    from trainables.fixed_trial import train_fixed
    from trainables.launch import run_trainable

    tmp = tmp_path_factory.mktemp("gan-run")
    cfg = load_config("quickstart", ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=16", "train.epochs=1",
                                     "train.iters_per_epoch=2", "train.gen_batch_size=8", "train.dis_batch_size=8",
                                     "eval.num_samples=120", "eval.batch_size=60", "data.limit=200",
                                     f"run.output_dir={tmp}"], method=FIXED)
    run = RunDir.create(tmp, "gan", config=cfg.to_dict(), seed=cfg.train.seed, preset=cfg.preset, device="cpu")
    run_trainable(train_fixed, cfg, run, resources={"cpu": 1})
    return run, cfg


@pytest.mark.slow
def test_retrain_writes_a_model_card_matching_the_run(ray_session, gan_run):
    from raynas.nn.profile import count_flops, count_params

    run, cfg = gan_run
    card = json.loads((run.path / CARD_JSON).read_text())
    assert (run.path / CARD_MD).read_text().startswith("# Model card: sngan generator")
    net = resolve(run.path)
    assert card["parameters"] == count_params(net.module)
    assert card["flops"] == count_flops(net.module, net.example_input(1))
    assert (card["preset"], card["seed"], card["method"]) == ("quickstart", cfg.train.seed, FIXED)
    last = run.read().sort_values("epoch").iloc[-1]
    metrics = card["metrics"]
    assert metrics["fid"] == pytest.approx(float(last["fid"])) and metrics["epoch"] == 1
    assert metrics["protocol"] == {"name": "quick", "samples": 120, "extractor": "raynas-fmnist-cnn",
                                   "split": "embedded:test"}
    assert card["network"]["sizes"]["width"] == 8 and card["network"]["sizes"]["latent_dim"] == 16
    assert card["versions"]["raynas"] and card["versions"]["torch"]
    assert card["reproduce"] == f"raynas train --preset {run.path / 'config.yaml'} --name NEW_NAME"


@pytest.mark.slow
def test_gan_run_gives_its_ema_generator_and_discriminator(ray_session, gan_run):
    from raynas.checkpoints import find_state_file, load_checkpoint

    run, _ = gan_run
    state = load_checkpoint(find_state_file(run.path))
    g = resolve(run.path)
    assert g.weights.endswith(":G_ema.module") and g.kind == "generator"
    for k, v in state["G_ema"]["module"].items():
        assert torch.equal(g.module.state_dict()[k], v), k
    d = resolve(run.path, part="discriminator")
    assert d.kind == "discriminator" and d.weights.endswith(":D")


@pytest.mark.slow
def test_sample_is_reproducible_per_seed(ray_session, gan_run, tmp_path, capsys):
    run, _ = gan_run
    paths = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths[name] = tmp_path / f"{name}.png"
        code, out, err = run_cli(capsys, "sample", str(run.path), "--n", "10", "--seed", str(seed), "--out",
                                 str(paths[name]))
        assert code == 0, err
        assert "grid of 10 images" in out and "G_ema" in out
    assert paths["a"].read_bytes() == paths["b"].read_bytes()
    assert paths["a"].read_bytes() != paths["c"].read_bytes()
    from PIL import Image

    assert Image.open(paths["a"]).size == (8 * 34 + 2, 2 * 34 + 2)  # 8 a row, 32 px + 2 px padding
    code, out, err = run_cli(capsys, "sample", str(run.path), "--n", "5", "--seed", "3", "--folder",
                             str(tmp_path / "imgs"))
    assert code == 0, err
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
    assert Image.open(files[0]).size == (32, 32)


# ============================================================================ errors
def test_export_errors_are_one_clear_message(tmp_path, capsys, genotype_files, monkeypatch):
    export = ("export", "--format", "state_dict")
    code, _, err = run_cli(capsys, *export, str(tmp_path / "nowhere.json"), "--out", str(tmp_path / "m.pt"))
    assert_user_error(code, err, "nowhere.json", "neither a run directory")
    code, _, err = run_cli(capsys, *export, str(tmp_path), "--out", str(tmp_path / "m.pt"))
    assert_user_error(code, err, "not a raynas run directory")
    code, _, err = run_cli(capsys, "export", "darts-v2", "--format", "tflite", "--out", str(tmp_path / "m"))
    assert_user_error(code, err, "tflite")
    code, _, err = run_cli(capsys, *export, "darts-v2", "--out", str(tmp_path))
    assert_user_error(code, err, "is a folder")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, *export, "darts-v2", "--out", str(blocker / "m.pt"))
    assert_user_error(code, err, "--out")
    code, _, err = run_cli(capsys, *export, "darts-v2", "--width", "8", "--out", str(tmp_path / "m.pt"))
    assert_user_error(code, err, "--width", "classifier")
    code, _, err = run_cli(capsys, *export, "sngan", "--layers", "3", "--out", str(tmp_path / "m.pt"))
    assert_user_error(code, err, "--layers")
    code, _, err = run_cli(capsys, *export, "darts-v2", "--dataset", "svhn", "--out", str(tmp_path / "m.pt"))
    assert_user_error(code, err, "svhn")
    # ONNX without its packages: says what to install
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnxscript" else real(n, *a))
    code, _, err = run_cli(capsys, "export", "sngan", "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert_user_error(code, err, "onnxscript", "raynas[export]")


def test_sample_errors(tmp_path, capsys):
    # a run without trained weights (no checkpoint yet) cannot be sampled
    cfg = load_config("quickstart", [f"run.output_dir={tmp_path}"], method=FIXED)
    run = RunDir.create(tmp_path, "fresh", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    code, _, err = run_cli(capsys, "sample", str(run.path), "--out", str(tmp_path / "s.png"))
    assert_user_error(code, err, "no trained weights", "no checkpoint yet")
    # a classifier run has no generator
    c = load_config("quickstart-classify", [f"run.output_dir={tmp_path}"], method=FIXED)
    crun = RunDir.create(tmp_path, "cls", config=c.to_dict(), seed=0, preset=c.preset, device="cpu")
    code, _, err = run_cli(capsys, "sample", str(crun.path), "--out", str(tmp_path / "s.png"))
    assert_user_error(code, err, "classifier", "generator")
    code, _, err = run_cli(capsys, "sample", str(run.path), "--out", str(tmp_path / "s.png"), "--folder",
                           str(tmp_path / "d"))
    assert_user_error(code, err, "--out", "--folder")
    code, _, err = run_cli(capsys, "sample", "darts-v2", "--out", str(tmp_path / "s.png"))
    assert_user_error(code, err, "darts-v2 is a genotype, not a run")
    code, _, err = run_cli(capsys, "sample", str(tmp_path / "gone"), "--out", str(tmp_path / "s.png"))
    assert_user_error(code, err, "gone is neither a run directory")


@pytest.mark.parametrize("family", ["stylegan2", "progan"])
@pytest.mark.parametrize("part", ["generator", "discriminator"])
@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_stylegan2_and_progan_export_for_any_batch(family, part, fmt, tmp_path):
    """StyleGAN2's G exports with its noise fixed and its modulated convs unfused (no batch-sized group count);
    its D takes batches that are multiples of its minibatch-std group; ProGAN exports as it is."""
    if fmt == "onnx":
        pytest.importorskip("onnxscript")
    latent = {"latent_dim": 16} if part == "generator" else {}
    net = resolve(family, part=part, width=8, dataset="fashion-mnist", **latent)
    check = export_network(net, fmt, tmp_path / f"m.{fmt}")
    assert check.batch == (12 if (family, part) == ("stylegan2", "discriminator") else 3)
    rtol, atol = TOLERANCES[fmt]
    assert check.max_abs_diff <= atol + rtol * check.max_abs_output


def test_unfused_modulated_convs_and_fixed_noise_compute_the_generator():
    """What the export holds is the generator: the unfused form equals the grouped one, and the fixed noise is
    the generator's own noise input."""
    from raynas.export.formats import FixedNoise
    from raynas.nn.stylegan2 import ModulatedConv2d

    torch.manual_seed(0)
    for upsample in (False, True):
        for demodulate in (True, False):
            conv = ModulatedConv2d(3, 5, 3, 7, demodulate=demodulate, upsample=upsample)
            x, style = torch.randn(4, 3, 8, 8), torch.randn(4, 7)
            fused = conv(x, style)
            conv.fused = False
            torch.testing.assert_close(conv(x, style), fused, rtol=1e-5, atol=1e-5)
    G = resolve("stylegan2", width=8, latent_dim=16).module
    wrapped = FixedNoise(G).eval()
    z = torch.randn(3, 16)
    noise = [getattr(wrapped, f"noise{k}").expand(3, -1, -1, -1) for k in range(G.num_noises)]
    with torch.no_grad():
        torch.testing.assert_close(wrapped(z), G(z, noise=noise), rtol=1e-5, atol=1e-5)
    assert all(m.fused for m in G.modules() if isinstance(m, ModulatedConv2d))  # the caller's G is untouched
