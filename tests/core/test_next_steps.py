"""What a finished search or ablation prints last: one TensorBoard hint (the right one), each file once, and the
next steps after an ablation too."""

from __future__ import annotations

import pandas as pd

from raynas.methods import get_method
from raynas.methods.spec import SearchOutcome
from raynas.results import RunDir


def _run(tmp_path, name="r"):
    return RunDir.create(tmp_path, name, config={}, seed=0, preset="quickstart", device="cpu")


def test_a_search_prints_one_tensorboard_hint_the_methods_own(tmp_path, capsys, monkeypatch):
    import raynas.plots
    from raynas.cli.search import report_outcome

    run = _run(tmp_path)
    monkeypatch.setattr(raynas.plots, "draw_run_plots", lambda run, df=None: [])
    own = f"TensorBoard: tensorboard --logdir {run.where('tensorboard')}"  # EAGAN writes its own folder
    report_outcome("eagan search", run, SearchOutcome(notes=("Pareto front: raynas results X", own)))
    out = capsys.readouterr().out
    assert out.count("tensorboard --logdir") == 1 and own in out
    assert "Pareto front" in out
    report_outcome("darts search", run, SearchOutcome())
    out = capsys.readouterr().out
    assert out.count("tensorboard --logdir") == 1 and f"tensorboard --logdir {run.where()}" in out


def test_a_plot_the_outcome_names_is_listed_once(tmp_path, capsys, monkeypatch):
    import raynas.plots
    from raynas.cli.search import report_outcome

    run = _run(tmp_path)
    masks = run.plots_dir / "masks.png"
    monkeypatch.setattr(raynas.plots, "draw_run_plots", lambda run, df=None: [masks, run.plots_dir / "curves.png"])
    report_outcome("darts-gal search", run, SearchOutcome(outputs={"plot masks": masks}))
    out = capsys.readouterr().out
    assert out.count("masks.png") == 1 and out.count("curves.png") == 1


def test_an_ablation_prints_its_next_steps_like_a_search(tmp_path, capsys, monkeypatch):
    import raynas.methods.figures
    from raynas.cli.search import summarize_ablation

    run = _run(tmp_path, "ablation")
    run.append([{"method": "darts", "stage": "retrain", "order": o, "seed": 0, "test_acc": 0.5, "params": 10}
                for o in (1, 2)])
    monkeypatch.setattr(raynas.methods.figures, "draw_method_ablation", lambda *a, **k: [])
    summarize_ablation(get_method("darts"), run, ["darts.order"])
    out = capsys.readouterr().out
    assert f"raynas results {run.where()}" in out and f"raynas report {run.where()}" in out
    assert out.count("tensorboard --logdir") == 1
    assert isinstance(pd.read_parquet(run.path / "ablation_order.parquet"), pd.DataFrame)


def _search_rows(margins: list[float], seed: int = 0) -> list[dict]:
    return [{"method": "darts", "stage": "search", "epoch": e + 1, "candidate_id": f"t{seed}", "seed": seed,
             "val_acc": 0.086, "alpha_margin_mean": m} for e, m in enumerate(margins)]


def test_a_quickstart_search_says_it_is_a_smoke_test_and_warns_of_near_uniform_alpha(tmp_path):
    from raynas.cli.search import search_caveats

    run = RunDir.create(tmp_path, "q", config={"preset": "quickstart-classify"}, seed=0,
                        preset="quickstart-classify", device="cpu")
    run.append(_search_rows([0.001]))
    notes = search_caveats(run)
    assert any("α is still near uniform after 1 search epoch" in n and "0.001" in n for n in notes)
    assert any("quickstart-classify is a smoke test" in n and "not a result" in n for n in notes)
    # a paper preset whose search has decided (one of two seeds suffices, at its last epoch): no caveat
    run = RunDir.create(tmp_path, "p", config={"preset": "darts-cifar10"}, seed=0, preset="darts-cifar10",
                        device="cpu")
    run.append(_search_rows([0.01, 0.2]) + _search_rows([0.01, 0.02], seed=1))
    assert search_caveats(run) == []


def test_the_caveats_are_printed_with_the_search_outcome(tmp_path, capsys, monkeypatch):
    import raynas.plots
    from raynas.cli.search import report_outcome

    monkeypatch.setattr(raynas.plots, "draw_run_plots", lambda run, df=None: [])
    run = RunDir.create(tmp_path, "q", config={"preset": "quickstart-classify"}, seed=0,
                        preset="quickstart-classify", device="cpu")
    run.append(_search_rows([0.001]))
    report_outcome("darts search", run, SearchOutcome())
    out = capsys.readouterr().out
    assert "near uniform" in out and "smoke test" in out
