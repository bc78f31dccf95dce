"""Task "classify": data (search split, on-device augmentation), the one CE step, top-k accuracy and the
trainer every classifier retrain uses (plain PyTorch, no Ray)."""

from raynas.classify.data import ClassifyData, EpochSampler, split_indices, subset_indices
from raynas.classify.metrics import accuracy, topk_correct
from raynas.classify.step import classify_loss, classify_train_step, evaluate_classifier, split_output
from raynas.classify.trainer import ClassifierTrainer

__all__ = [
    "ClassifierTrainer",
    "ClassifyData",
    "EpochSampler",
    "accuracy",
    "classify_loss",
    "classify_train_step",
    "evaluate_classifier",
    "split_indices",
    "split_output",
    "subset_indices",
    "topk_correct",
]
