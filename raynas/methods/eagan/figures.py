"""EAGAN's part in a run's figures: the order its stages ran in (``eagan.stages``), which its result parts do not
keep (they are read in file-name order, so ``d-round000`` comes before ``g-round000`` though g ran first); the
Pareto panels, the per-round curves and ``--compare`` follow it. Registers itself on import."""

from __future__ import annotations

from collections.abc import Sequence

from raynas.plots.registry import Run, register_stage_order


def run_stages(run: Run) -> Sequence[str] | str | None:
    """The run's ``eagan.stages`` (None for a run without them)."""
    return (run.config.get("eagan") or {}).get("stages")


register_stage_order("eagan", run_stages)
