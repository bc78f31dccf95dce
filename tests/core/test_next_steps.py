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
