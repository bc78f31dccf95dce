"""The CLI: every bad input exits with status 2 and a one-paragraph message, never a traceback."""

from __future__ import annotations

from raynas.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("raynas: error: ")
    for f in fragments:
        assert f in err, err


def test_presets_and_config_keys(capsys):
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0 and "quickstart" in out and "sngan-cifar10" in out
    code, out, _ = run_cli(capsys, "config", "show", "--preset", "quickstart", "--set", "train.epochs=9")
    assert code == 0 and "epochs: 9" in out


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
    assert_user_error(code, err)


def test_metrics_real_vs_real(capsys):
    code, out, err = run_cli(capsys, "metrics", "dataset:embedded:train", "dataset:embedded:test",
                             "--extractor", "raynas-fmnist-cnn", "--num-samples", "300", "--metrics", "fid,is",
                             "--device", "cpu")
    assert code == 0, err
    fid = float(next(line.split()[1] for line in out.splitlines() if line.startswith("fid ")))
    assert 0 <= fid < 50
