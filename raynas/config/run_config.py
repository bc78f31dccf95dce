"""The resolved config of one run: ``RaynasConfig`` (the sections every run holds) and the sections each task
adds. The class of a ``(task, method)`` run, with its method's section, is built by ``config_class``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raynas.config.classify import ClassifyModelConfig, ClassifyTrainConfig
from raynas.config.common import DataConfig, ResourcesConfig, RunConfig
from raynas.config.fields import setting, to_dict
from raynas.config.gan import EvalConfig, ModelConfig, TrainConfig

TASKS = ("gan", "classify")
FIXED = "train"  # the method value of a fixed-network run (train / retrain): no method section


@dataclass(frozen=True)
class RaynasConfig:
    """Base of every resolved config; ``config_class`` adds the task's and the method's sections.

    ``from_dict(RaynasConfig, data)`` builds the class that ``data``'s method and task call for."""

    preset: str = setting("custom")
    method: str = setting(FIXED, doc="the method this run runs (train = a fixed network, no method section)")
    task: str = setting("gan", choices=TASKS)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


TASK_SECTIONS: dict[str, dict[str, type]] = {
    "gan": {"model": ModelConfig, "train": TrainConfig, "eval": EvalConfig},
    "classify": {"model": ClassifyModelConfig, "train": ClassifyTrainConfig},
}
