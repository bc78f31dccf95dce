"""Scores recounted by hand from what a run left on disk, so tests compare a reported number with an independent
count instead of only checking that it is finite or in range."""

from __future__ import annotations

from pathlib import Path

import torch


def recount_accuracy(run_path: Path, part: str = "test") -> tuple[int, int]:
    """(correct, total) of the classifier in ``run_path``'s newest checkpoint on ``part`` of its data: the argmax
    of the main logits against the labels, in eval mode."""
    from raynas.checkpoints import find_state_file, load_checkpoint
    from raynas.classify.trainer import ClassifierTrainer
    from raynas.config import RaynasConfig, from_dict
    from raynas.results import RunDir

    cfg = from_dict(RaynasConfig, RunDir.open(run_path).config)
    trainer = ClassifierTrainer.for_config(cfg, device=torch.device("cpu"), holdout=part == "val")
    trainer.model.load_state_dict(load_checkpoint(find_state_file(Path(run_path) / "tune"))["model"])
    model = trainer.model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in trainer.data.eval_batches(part, 64):
            out = model(x)
            logits = out[0] if isinstance(out, (tuple, list)) else out
            correct += int((logits.argmax(dim=1) == y).sum())
            total += len(y)
    return correct, total
