"""``raynas report A --compare B [C ...]`` across methods (issue 24): runs of any methods are drawn on the score they
share (IS/FID of GAN runs, test or validation accuracy of classifier runs) against epochs or rounds; what shares no
score is refused with one message. Read back by content: the plotted series, axis labels and legend entries."""

from __future__ import annotations

from conftest import assert_user_error, run_cli
from figures import capture_figures

from raynas.results import RunDir


def _classifier(tmp_path, name: str, method: str, accs: list[float], col: str = "val_acc", seeds=(0,)) -> RunDir:
    run = RunDir.create(tmp_path, name, config={"method": method, "task": "classify"}, seed=0, preset="p",
                        device="cpu")
    run.append([{"method": method, "stage": "search", "epoch": e + 1, "seed": s, "candidate_id": f"t{s}",
                 col: acc - 0.01 * s} for s in seeds for e, acc in enumerate(accs)])
    return run


def _gan_epochs(tmp_path, name: str, method: str, fids: list[float]) -> RunDir:
    run = RunDir.create(tmp_path, name, config={"method": method, "task": "gan"}, seed=0, preset="p", device="cpu")
    run.append([{"method": method, "stage": "search", "epoch": e + 1, "candidate_id": "t", "fid": f,
                 "is_mean": 10.0 - f / 10} for e, f in enumerate(fids)])
    return run


def _eagan(tmp_path, name: str) -> RunDir:
    run = RunDir.create(tmp_path, name, config={"method": "eagan", "eagan": {"stages": ["g"]}}, seed=0, preset="p",
                        device="cpu")
    for r in range(2):
        run.append([{"method": "eagan", "stage": "g", "round": r, "epoch": r + 1, "candidate_id": f"g{r}-{i}",
                     "is_mean": 2.0 + r + i, "fid": 80.0 - 5 * r - i} for i in range(2)], key=f"g-round{r}")
    return run


def test_classifier_methods_compare_on_their_accuracy_per_epoch(tmp_path, capsys, monkeypatch):
    darts = _classifier(tmp_path, "darts-run", "darts", [0.2, 0.4, 0.5], seeds=(0, 1))
    swd = _classifier(tmp_path, "swd-run", "swd-nas", [0.3, 0.35])
    rnd = _classifier(tmp_path, "random-run", "random", [0.1, 0.2, 0.3, 0.45])
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "report", str(darts.path), "--compare", str(swd.path), str(rnd.path))
    assert code == 0, err
    (ax,) = figures[(darts.plots_dir / "compare.png").resolve()].axes
    assert ax.legend == ["darts-run (darts)", "swd-run (swd-nas)", "random-run (random)"]
    assert (ax.title, ax.xlabel, ax.ylabel) == ("best validation accuracy", "epoch", "val_acc")
    darts_line, swd_line, rnd_line = ax.lines
    assert darts_line.x == [1.0, 2.0, 3.0] and darts_line.y == [0.2, 0.4, 0.5]  # the better seed per epoch
    assert swd_line.x == [1.0, 2.0] and rnd_line.x == [1.0, 2.0, 3.0, 4.0]
    assert rnd_line.y == [0.1, 0.2, 0.3, 0.45]
    assert len({line.color for line in ax.lines}) == 3


def test_test_accuracy_is_preferred_when_every_run_has_it(tmp_path, capsys, monkeypatch):
    a = _classifier(tmp_path, "a", "darts-gal", [0.5, 0.6], col="test_acc")
    b = _classifier(tmp_path, "b", "darts", [0.55], col="test_acc")
    figures = capture_figures(monkeypatch)
    code, _, err = run_cli(capsys, "report", str(a.path), "--compare", str(b.path))
    assert code == 0, err
    (ax,) = figures[(a.plots_dir / "compare.png").resolve()].axes
    assert ax.title == "best test accuracy" and [line.y for line in ax.lines] == [[0.5, 0.6], [0.55]]


def test_gan_methods_compare_on_is_and_fid_an_eagan_search_per_round(tmp_path, capsys, monkeypatch):
    eagan = _eagan(tmp_path, "eagan-run")
    damgan = _gan_epochs(tmp_path, "damgan-run", "damgan", [90.0, 70.0, 60.0])
    figures = capture_figures(monkeypatch)
    code, out, err = run_cli(capsys, "report", str(eagan.path), "--compare", str(damgan.path))
    assert code == 0, err
    is_ax, fid_ax = figures[(eagan.plots_dir / "compare.png").resolve()].axes
    for ax in (is_ax, fid_ax):
        assert ax.legend == ["eagan-run (eagan, per round)", "damgan-run (damgan)"]
        assert ax.xlabel == "epoch, or round (across stages) of a population search"
        assert all(float(t.replace("\u2212", "-")) % 1 == 0 for t in ax.xticklabels if t)
    assert (is_ax.title, fid_ax.title) == ("best IS", "best FID")
    assert fid_ax.lines[0].x == [0.0, 1.0] and fid_ax.lines[0].y == [79.0, 74.0]  # best FID of each round
    assert fid_ax.lines[1].x == [1.0, 2.0, 3.0] and fid_ax.lines[1].y == [90.0, 70.0, 60.0]
    assert is_ax.lines[0].y == [3.0, 4.0]


def test_what_shares_no_score_is_refused_in_one_message(tmp_path, capsys):
    darts = _classifier(tmp_path, "darts-run", "darts", [0.2])
    damgan = _gan_epochs(tmp_path, "damgan-run", "damgan", [90.0])
    code, out, err = run_cli(capsys, "report", str(darts.path), "--compare", str(damgan.path))
    assert_user_error(code, err, "different methods", "darts-run (darts) measured val_acc",
                      "damgan-run (damgan) measured is_mean, fid")
    assert len(err.strip().splitlines()) == 1
    assert not (darts.plots_dir / "compare.png").exists()
    # a classifier with only validation accuracy and one with only test accuracy measured different splits
    tested = _classifier(tmp_path, "tested", "darts", [0.3], col="test_acc")
    code, out, err = run_cli(capsys, "report", str(darts.path), "--compare", str(tested.path))
    assert_user_error(code, err, "share none", "tested (darts) measured test_acc")
