"""What a method is to raynas: one ``Method`` spec per method, registered by name.

A spec is plain data: its config section, its task, the spaces it searches, its execution shape, and
*dotted paths* (``"module:attribute"``) to the code that runs it. The CLI builds ``raynas search NAME``
and ``raynas ablate NAME`` from the registry and imports the runner only when the command runs, so this
package never imports Ray, the trainables or torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raynas.config import Section, register_section, register_upgrade
from raynas.errors import ConfigError
from raynas.export import register_run_outputs
from raynas.plugins import load_plugins

SHAPES = ("population", "differentiable", "pipeline", "schedule")


@dataclass(frozen=True)
class Flag:
    """An extra option of a method's commands. ``sets`` turns its value into that config override;
    otherwise the value reaches the runner in ``SearchRequest.options[dest]``."""

    name: str
    help: str
    sets: str | None = None
    choices: tuple[str, ...] | None = None
    kind: str = "str"  # str | int | switch (store_true) | path
    commands: tuple[str, ...] = ("search",)
    default: Any = None

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


THEN_RETRAIN = Flag("--then-retrain", "train the found network afterwards (train.*, model.*, in RUN_DIR/retrain)",
                    kind="switch")
RETRAIN_EPOCHS = Flag("--retrain-epochs", "epochs of each retrain (default: train.epochs)", kind="int",
                      commands=("search", "ablate"))


@dataclass(frozen=True)
class Ablation:
    """An ablation with a command of its own (``raynas ablate NAME``) besides the generic grid."""

    name: str
    help: str
    runner: str                     # "module:function(SearchRequest) -> SearchOutcome"
    check: str | None = None        # "module:function(cfg, options) -> options": validates before any run dir
    flags: tuple[Flag, ...] = ()


class _ShapeDefault:
    """Marks a ``Method`` field its execution shape (or task) fills in when the method does not set it."""

    def __repr__(self) -> str:
        return "SHAPE_DEFAULT"


SHAPE_DEFAULT: Any = _ShapeDefault()

# What a method of each execution shape gets unless it says otherwise: the shape's trainables and the stage whose
# rows are a grid cell's outcome. A new method of a known shape states only what is its own.
SHAPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "differentiable": {"runner": "trainables.search_trial:run_search",
                       "ablation_cell": "trainables.grid_cell:ablation_cell",
                       "flags": (THEN_RETRAIN, RETRAIN_EPOCHS)},
    "pipeline": {"runner": "trainables.pipeline:run_pipeline", "ablation_cell": "trainables.pipeline:ablation_cell",
                 "ablation_stage": "final"},
    "population": {"ablation_stage": "final"},
    "schedule": {"ablation_stage": "final"},
}
# ... and of each task: the scores a grid cell is ranked by, and the preset its commands start from
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "gan": {"ablation_metrics": (("is_mean", "max"), ("fid", "min")), "quickstart": "quickstart"},
    "classify": {"ablation_metrics": (("test_acc", "max"), ("params", "min")), "quickstart": "quickstart-classify"},
}
# what is left when neither names a field
_FALLBACK: dict[str, Any] = {"runner": None, "ablation_cell": None, "ablation_stage": "retrain", "flags": (),
                             "ablation_metrics": (("is_mean", "max"), ("fid", "min")), "quickstart": "quickstart"}


@dataclass(frozen=True)
class Method:
    name: str                       # `raynas search NAME`; the config's `method` value
    section: str                    # its config section and --set prefix
    task: str                       # gan | classify
    config: type                    # the section's frozen dataclass
    summary: str                    # one line for --help
    shape: str                      # see SHAPES; SHAPE_DEFAULTS and TASK_DEFAULTS fill the fields marked (*)
    spaces: tuple[str, ...] = ()    # genotype spaces the method searches or produces
    runner: str | None = SHAPE_DEFAULT  # (*) "module:function(SearchRequest) -> SearchOutcome" for `raynas search`
    ablation_cell: str | None = SHAPE_DEFAULT  # (*) "module:function(config)": one Tune trial of `raynas ablate NAME`
    ablation_runner: str | None = None  # "module:function(SearchRequest)": runs the grid's cells itself
    #                                     (options["cells"]) instead of Tune (population searches own actors)
    ablation_stage: str = SHAPE_DEFAULT  # (*) result rows of that stage are a cell's outcome
    ablation_metrics: tuple[tuple[str, str], ...] = SHAPE_DEFAULT  # (*) (column, min|max); the first ranks
    default_grid: tuple[str, ...] = ()  # `ablate NAME` without --grid
    grid_aliases: dict[str, str] = field(default_factory=dict)  # short grid keys: kprime -> damgan.kprime
    check: str | None = None        # "module:function(cfg)": raises RaynasError before anything is written
    search: str | None = None       # "module:Class(cfg)": the in-process search (differentiable shape)
    placement: str | None = None    # "module:function(cfg)": refuses actors that can never fit (population)
    resources_keys: tuple[str, str] = ("resources.cpu", "resources.gpu")  # what --resources cpu=,gpu= sets
    ablation_plots: str | None = None  # "module:function(cells, means, axes, plots_dir) -> [paths]"
    outputs: tuple[str, ...] = ()   # what a finished search leaves in its run directory
    flags: tuple[Flag, ...] = SHAPE_DEFAULT  # (*)
    ablations: tuple[Ablation, ...] = ()
    upgrades: tuple[Callable[[dict[str, Any]], None], ...] = ()  # saved-config upgrades (fill later keys)
    modifier: bool = False          # modifies every fixed run of its task (Re-GAN) instead of searching
    baseline: bool = False          # the reference `raynas compare` tests the other methods against (random)
    smoke: str | None = None        # "module:function(cfg) -> genotype": a one-epoch in-process search
    smoke_overrides: tuple[str, ...] = ()  # tiny settings for that (the contract test)
    quickstart: str = SHAPE_DEFAULT  # (*) the default --preset of its commands
    title: str = ""                 # how messages name it ("Re-GAN"); default: its name
    ablation_space: str | None = None  # "module:function(grid) -> Tune param_space": replaces the plain product
    #                                    of the --grid axes (e.g. to add baseline cells); seeds are added after
    ablation_group_by: tuple[str, ...] = ()  # result columns the ablation's tables also group by, besides the
    #                                          --grid keys (Re-GAN: enabled, whose baseline cells share the others')
    network_sizes: str | None = None  # "module:function(cfg, genotype) -> dict": the build_network sizes its searches
    #                                   build a genotype at (EAGAN: search widths); default: fixed training's
    home: str = ""                  # the module that registered it (set by register): Ray workers import it

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"{self.name}: shape {self.shape!r} is not one of {SHAPES}")
        defaults = {**_FALLBACK, **TASK_DEFAULTS.get(self.task, {}), **SHAPE_DEFAULTS[self.shape]}
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is SHAPE_DEFAULT:
                object.__setattr__(self, f.name, defaults[f.name])


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method (its module calls this once at import); the config learns its section. ``home`` records the
    calling module, which a Ray worker imports before it runs a trial (a method from outside the entry points)."""
    if not method.home:
        method = dataclasses.replace(method, home=sys._getframe(1).f_globals.get("__name__", ""))
    _METHODS[method.name] = method
    register_section(Section(method.section, method.config, method.task, method.name, method.modifier,
                             method.title or method.name))
    for upgrade in method.upgrades:
        register_upgrade(upgrade)
    register_run_outputs(method.name, method.outputs)  # raynas.model(RUN) / raynas export RUN find its network
    return method


def get_method(name: str) -> Method:
    if name not in _METHODS:
        load_plugins()
    if name not in _METHODS:
        raise ConfigError(f"unknown method {name!r}; methods: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def all_methods() -> list[Method]:
    load_plugins()
    return [_METHODS[k] for k in sorted(_METHODS)]


def load_object(path: str) -> Any:
    """``"package.module:attr"`` → the attribute (imported now, not when the spec was registered)."""
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class SearchRequest:
    """What the CLI hands a method's runner: a validated config, its run directory, the trial resources
    (``--resources`` parsed; None = the config's), the values of the method's own flags, and whether
    this continues a killed run."""

    cfg: Any
    run: Any
    resources: dict[str, float] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    progress: bool = True


@dataclass
class SearchOutcome:
    """What a runner leaves behind: files to name (genotypes, tables), an optional table to print, and
    the command that retrains the result."""

    outputs: dict[str, Path] = field(default_factory=dict)
    table: Any = None
    columns: tuple[str, ...] = ()
    retrain: str | None = None
    notes: tuple[str, ...] = ()
    text: str | None = None         # printed as it is after the table (a comparison's summary and tests)
    runs: tuple[Any, ...] = ()      # nested runs (a chained retrain) whose own report follows
