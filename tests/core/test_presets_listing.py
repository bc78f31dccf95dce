"""`raynas presets`: a table with each preset's method and task and its whole description, wrapped."""

from __future__ import annotations

from raynas.config import PRESET_DIR


def test_presets_table_names_method_and_task_and_does_not_cut_descriptions(capsys, monkeypatch):
    from conftest import run_cli

    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run_cli(capsys, "presets")
    table = out.split("\n\nshipped genotypes")[0]
    lines = table.splitlines()
    assert code == 0 and lines[0].split() == ["preset", "method", "task", "description"]
    assert max(len(line) for line in lines) <= 100
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:] if line and not line.startswith((" ", "("))}
    assert rows["quickstart"] == ["eagan", "gan"] and rows["quickstart-classify"] == ["darts", "classify"]
    assert rows["darts-imagenet"] == ["train", "classify"] and rows["sngan-cifar10"] == ["train", "gan"]
    assert rows["regan-sngan-cifar10"] == ["regan", "gan"]
    # the Re-GAN description runs over four comment lines; all of it is shown, up to its full stop
    flat = " ".join(" ".join(table.split()).split())
    assert "cycles of 5 sparse epochs at lr and 5 dense epochs at lr/10." in flat
    first = (PRESET_DIR / "sngan-cifar10.yaml").read_text().splitlines()[2].lstrip("# ")
    assert " ".join(first.split()) in flat  # SNGAN's third comment line, which the old listing cut
