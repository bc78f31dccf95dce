"""``ray.tune`` Searcher around ``NSGA2Searcher`` (classic NSGA-II: one evaluation = one full trial).

Generation-synchronous: ``suggest`` hands out the individuals of the current generation one trial at a
time, returns ``None`` (Tune asks again later) once they are all out but not all finished, and calls
``tell`` when the last result of the generation is in. After ``max_generations`` generations it returns
``Searcher.FINISHED``. Use it with ``TuneConfig(search_alg=..., num_samples=-1)`` (or
``num_samples=pop_size * max_generations``): Tune stops asking after ``num_samples`` trials.

Each trial's config is ``to_config(vector)``; for a ``raynas.spaces`` SearchSpace the default is
``{"genotype": <genotype JSON by op names>}``, merged by Tune into the experiment's ``param_space``.
A trial that errors, or reports NaN, counts as worse than every other individual of its generation.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher
from ray.tune.search.sample import Domain

from raynas.errors import CheckpointError, ConfigError
from searchers.genotype_operators import RepairFn
from searchers.nsga2 import NSGA2Searcher

__all__ = ["NSGA2TuneSearcher"]

logger = logging.getLogger(__name__)
_STATE_VERSION = 1


def _as_list(x: str | Sequence[str] | None) -> list[str] | None:
    if x is None:
        return None
    return [x] if isinstance(x, str) else [str(m) for m in x]


def _has_search_domains(config: Any) -> bool:
    """True when ``config`` holds Tune sampling domains or grid searches, which this searcher ignores."""
    if isinstance(config, Domain):
        return True
    if isinstance(config, dict):
        return "grid_search" in config or any(_has_search_domains(v) for v in config.values())
    if isinstance(config, (list, tuple)):
        return any(_has_search_domains(v) for v in config)
    return False


def _default_to_config(space: Any, key: str) -> Callable[[list[int]], dict[str, Any]]:
    if hasattr(space, "decode"):
        def to_config(vector: list[int]) -> dict[str, Any]:
            g = space.decode(vector)
            return {key: g.to_json() if hasattr(g, "to_json") else g}
    else:
        def to_config(vector: list[int]) -> dict[str, Any]:
            return {key: list(vector)}
    return to_config


class NSGA2TuneSearcher(Searcher):
    """NSGA-II as a Tune ``Searcher`` over genotype vectors.

    ``space`` is a SearchSpace-like object (``n_choices()``, ``decode``, ``repair``); or pass
    ``n_choices`` and ``to_config`` (and optionally ``repair``) directly. ``metric``/``mode`` are
    lists (one ``"min"``/``"max"`` per metric); they may instead come from ``TuneConfig`` through
    ``set_search_properties``."""

    def __init__(self, space: Any = None, metric: str | Sequence[str] | None = None,
                 mode: str | Sequence[str] | None = None, *, n_choices: Sequence[int] | None = None,
                 to_config: Callable[[list[int]], dict[str, Any]] | None = None,
                 repair: RepairFn | None = None, pop_size: int = 32, max_generations: int | None = None,
                 crossover_prob: float = 0.3, mutation_prob: float = 0.5,
                 parent_selection: str | None = None, seed: int = 0, config_key: str = "genotype") -> None:
        metric_l, mode_l = _as_list(metric), _as_list(mode)
        self._check_metric_mode(metric_l, mode_l)
        super().__init__(metric=metric_l, mode=mode_l)
        if n_choices is None:
            if space is None:
                raise ConfigError("NSGA2TuneSearcher needs a search space (space=...) or n_choices=[...]")
            nc = space.n_choices
            n_choices = nc() if callable(nc) else nc
        if repair is None and space is not None and hasattr(space, "repair"):
            repair = space.repair
        if to_config is None:
            to_config = _default_to_config(space, config_key)
        if max_generations is not None and int(max_generations) < 1:
            raise ConfigError(f"max_generations={max_generations}; use a positive number or None")
        self._to_config = to_config
        self._searcher_kwargs = dict(n_choices=list(n_choices), pop_size=int(pop_size), repair=repair,
                                     crossover_prob=crossover_prob, mutation_prob=mutation_prob,
                                     reevaluate_survivors=False, parent_selection=parent_selection, seed=seed)
        self.max_generations = None if max_generations is None else int(max_generations)
        self._nsga: NSGA2Searcher | None = None
        self._generation: list[list[int]] | None = None   # vectors of the generation in flight
        self._next = 0                                     # next vector of it to hand out
        self._trial_index: dict[str, int] = {}             # trial id -> position in the generation
        self._results: dict[int, dict[str, float]] = {}
        if metric_l and mode_l:
            self._build()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _check_metric_mode(metric: list[str] | None, mode: list[str] | None) -> None:
        if metric is not None and mode is not None and len(metric) != len(mode):
            raise ConfigError(f"metric {metric} and mode {mode} must have the same length")
        if mode is not None and any(m not in ("min", "max") for m in mode):
            raise ConfigError(f"mode {mode}: NSGA2TuneSearcher supports only 'min' and 'max'")

    def _build(self) -> None:
        objectives = list(zip(self._metric, self._mode))
        self._nsga = NSGA2Searcher(objectives=objectives, **self._searcher_kwargs)

    @property
    def nsga(self) -> NSGA2Searcher | None:
        """The wrapped ask/tell searcher (None until metric and mode are known). Not called ``searcher``:
        Tune treats a searcher with a ``searcher`` attribute as a wrapper and descends into it."""
        return self._nsga

    def set_search_properties(self, metric: str | Sequence[str] | None, mode: str | Sequence[str] | None,
                              config: dict, **spec: Any) -> bool:
        """Adopt ``metric``/``mode`` from TuneConfig unless they contradict ours; refuse sampled params
        in ``param_space`` (genotypes come from NSGA-II; constants there are fine)."""
        metric_l, mode_l = _as_list(metric), _as_list(mode)
        if config and _has_search_domains(config):
            return False
        if (metric_l and self._metric and metric_l != self._metric) or (
                mode_l and self._mode and mode_l != self._mode):
            return False
        new_metric, new_mode = self._metric or metric_l, self._mode or mode_l
        try:
            self._check_metric_mode(new_metric, new_mode)
        except ConfigError:
            return False
        self._metric, self._mode = new_metric, new_mode
        if self._nsga is None and self._metric and self._mode:
            self._build()
        return True

    # ------------------------------------------------------------------ Tune protocol
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._nsga is None:
            raise ConfigError("NSGA2TuneSearcher has no objectives: pass metric=[...] and mode=[...] "
                              "(one 'min'/'max' per metric) to it or to TuneConfig")
        if self.max_generations is not None and self._nsga.round >= self.max_generations:
            return Searcher.FINISHED
        if self._generation is None:
            self._generation = self._nsga.ask()
            self._next = 0
            self._trial_index, self._results = {}, {}
        if self._next >= len(self._generation):
            return None   # wait until the whole generation has reported
        i = self._next
        self._next += 1
        self._trial_index[trial_id] = i
        return self._to_config(self._generation[i])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if self._generation is None or trial_id not in self._trial_index:
            logger.warning("NSGA2TuneSearcher: ignoring result of unknown trial %s", trial_id)
            return
        self._results[self._trial_index[trial_id]] = self._objective_values(result, error)
        if len(self._results) == len(self._generation):
            self._nsga.tell(self._generation, [self._results[i] for i in range(len(self._generation))])
            self._generation, self._next = None, 0
            self._trial_index, self._results = {}, {}

    def _objective_values(self, result: dict | None, error: bool) -> dict[str, float]:
        if error or result is None:
            return {m: math.nan for m in self._metric}
        missing = [m for m in self._metric if m not in result]
        if missing:
            raise ConfigError(f"trial result lacks metric(s) {missing} (it reports {sorted(result)[:20]}); "
                              "make the trainable report them or fix metric=[...]")
        out = {}
        for m in self._metric:
            try:
                out[m] = float(result[m])
            except (TypeError, ValueError):
                out[m] = math.nan
        return out

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "metric": self._metric, "mode": self._mode, "max_generations": self.max_generations,
            "nsga": None if self._nsga is None else self._nsga.state_dict(),
            "generation": self._generation, "next": self._next,
            "trial_index": dict(self._trial_index), "results": [[int(i), r] for i, r in self._results.items()],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise CheckpointError("not an NSGA2TuneSearcher state; restore from a file written by save()")
        self._metric, self._mode = state["metric"], state["mode"]
        self.max_generations = state["max_generations"]
        self._nsga = None
        if state["nsga"] is not None:
            self._build()
            self._nsga.load_state_dict(state["nsga"])
        self._generation = state["generation"]
        self._next = state["next"]
        self._trial_index = dict(state["trial_index"])
        self._results = {int(i): r for i, r in state["results"]}

    def save(self, checkpoint_path: str) -> None:
        """The state as JSON (plain data; restoring it can never run code)."""
        path = Path(checkpoint_path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.get_state()))
        tmp.replace(path)

    def restore(self, checkpoint_path: str) -> None:
        path = Path(checkpoint_path)
        if not path.is_file():
            raise CheckpointError(f"searcher checkpoint {path} does not exist; pass the file written by save()")
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"searcher checkpoint {path} is not a JSON searcher state ({type(exc).__name__}); "
                                  "restore from a file written by save() (older pickled states are refused: "
                                  "they could run code)") from None
        self.set_state(state)
