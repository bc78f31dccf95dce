"""The EAGAN search's checkpoint and resume state: ``search_state.pt`` (done stages, the last completed round,
the searcher's state, the best networks so far, the round's rows) beside the supernet's per-round checkpoints,
so a killed search resumes at the next round with its results in step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raynas.checkpoints import load_checkpoint, save_checkpoint
from raynas.errors import CheckpointError
from raynas.results import RunDir
from trainables.eagan.round_results import SPACE_OF_STAGE

STATE_FILE = "search_state.pt"


def round_key(stage: str, r: int) -> str:
    """The result part of a round: writing the round again replaces it."""
    return f"{stage}-round{r:03d}"


class SearchState:
    """The state half of :class:`trainables.eagan.driver.EaganSearch`: where the state and the supernet
    checkpoints live, reading and writing the state, and healing the rows of the last completed round."""

    run: RunDir
    state_path: Path
    ckpt_dir: Path

    def _fresh_state(self) -> dict[str, Any]:
        return {"done_stages": [], "stage": None, "round": -1, "searcher": None, "best_g": None,
                "best_d": None, "host_checkpoint": None, "last_rows": []}

    def _load_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return self._fresh_state()
        state = load_checkpoint(self.state_path)
        missing = sorted(set(self._fresh_state()) - set(state))
        stages = state.get("done_stages")
        if missing or not isinstance(stages, list) or not all(s in SPACE_OF_STAGE for s in stages):
            raise CheckpointError(f"{self.state_path} is not an EAGAN search state (missing or bad: "
                                  f"{', '.join(missing) or 'done_stages'}); resume a run directory written by "
                                  "`raynas search eagan`, or start a new search")
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.state_path, state)

    def _heal_rows(self, state: dict[str, Any]) -> None:
        """Every damaged round part is written again from the rows the state keeps of each completed round
        (``round_rows``; the last round's ``last_rows`` in runs of earlier versions); a damaged part the state
        does not cover stops the resume with a ``DamagedResultsError`` naming it."""
        if not self.run.damaged_parts():
            return
        journal = dict(state.get("round_rows") or {})
        if state.get("last_rows") and state.get("stage") is not None:
            journal.setdefault(round_key(state["stage"], state["round"]), state["last_rows"])
        for name in self.run.repair(journal):
            print(f"raynas: rebuilt the damaged results part {name} from {self.state_path.name}", flush=True)

    def _replay_rows(self, state: dict[str, Any]) -> None:
        """The last completed round's rows (the state keeps them), written again under the round's key if any
        is missing: runs of earlier raynas versions saved the state before the rows, so a kill in between
        left the rows out."""
        rows = state.get("last_rows") or []
        if not rows:
            return
        df = self.run.read()
        done = set(df["candidate_id"].dropna()) if "candidate_id" in df else set()
        if any(row["candidate_id"] not in done for row in rows):
            self.run.append(rows, key=round_key(state["stage"], state["round"]))

    def _host_checkpoint(self, state: dict[str, Any]) -> Path:
        """The last completed round's supernet checkpoint, in this run directory wherever it has moved (older
        runs stored an absolute path)."""
        return self.ckpt_dir / Path(str(state["host_checkpoint"])).name

    def _prune_checkpoints(self, stage: str, keep: str) -> None:
        old = list(self.ckpt_dir.glob(f"stage{stage}_round*.pt"))  # the name before stage-{stage}_round
        for p in [*self.ckpt_dir.glob(f"stage-{stage}_round*.pt"), *old]:
            if str(p) != keep:
                p.unlink(missing_ok=True)
