"""The training settings every differentiable cell search shares (DARTS, SWD-NAS and the next one): the search
network's shape, its SGD optimiser and the seed-selection retrain. A method's section inherits them and states
only its own fields; a field it writes again (``layers = setting(5, ...)``) changes that default in place."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from raynas.config.fields import MAX_EPOCHS, setting

CLOSING = ("select_epochs",)  # shared fields listed after a section's own ones


@dataclass(frozen=True)
class SearchTraining:
    layers: int = setting(8, lo=3, doc="cells of the search network")
    channels: int = setting(16, lo=1, doc="C of the search network")
    steps: int = setting(4, lo=1, doc="intermediate nodes per cell")
    multiplier: int = setting(4, lo=1, doc="nodes concatenated into a cell's output")
    epochs: int = setting(50, lo=1, hi=MAX_EPOCHS)
    batch_size: int = setting(64, lo=1)
    lr: float = setting(0.025, lo=0.0, hi=10.0, lo_open=True)
    lr_min: float = setting(0.001, lo=0.0, hi=10.0)
    momentum: float = setting(0.9, lo=0.0, hi=1.0)
    weight_decay: float = setting(3e-4, lo=0.0, hi=1.0)
    grad_clip: float = setting(5.0, lo=0.0, doc="global norm of the weight gradients; 0 = off")
    select_epochs: int = setting(100, lo=1, doc="--seeds N: epochs of the retrain on the validation split that "
                                                "picks the best of the N cells")


def search_section(*, lead: tuple[str, ...] = ()) -> Callable[[type], type]:
    """Decorator for a section that inherits ``SearchTraining``: a frozen dataclass whose fields read in the
    order users see them (``raynas config keys``, ``config show``, a run's ``config.yaml``): the ``lead`` fields
    first, then the shared training fields, then the section's other own fields, then ``select_epochs``.

    Plain dataclass inheritance would list every shared field before the section's own ones."""

    def wrap(cls: type) -> type:
        if not issubclass(cls, SearchTraining):
            raise TypeError(f"{cls.__name__} must inherit SearchTraining")
        cls = dataclass(frozen=True)(cls)
        fields = cls.__dataclass_fields__
        shared = list(SearchTraining.__dataclass_fields__)
        own = [name for name in fields if name not in shared]
        missing = [name for name in lead if name not in own]
        if missing:
            raise TypeError(f"{cls.__name__}: lead names {missing}, which are not its own fields")
        order = [*lead, *(n for n in shared if n not in CLOSING), *(n for n in own if n not in lead), *CLOSING]
        cls.__dataclass_fields__ = {name: fields[name] for name in order}
        cls.__match_args__ = tuple(name for name in order if fields[name].init)
        cls.__repr__ = _repr  # the generated ones follow the inherited order (so construct by keyword)
        return cls

    return wrap


def _repr(self: object) -> str:
    items = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
    return f"{type(self).__qualname__}({items})"
