"""A live view of a running search in TensorBoard's HParams plugin.

Every evaluated candidate becomes one HParams session: its genotype summary (the op on every edge), its
parameter count, stage and round as hparams, its scores as metrics, so the population can be sorted and
filtered in TensorBoard (HPARAMS tab) while the search runs. Each EAGAN round's Pareto plot and the best
genotype's diagram go in as images; a differentiable search logs its derived genotype every epoch.

Sessions go to ``<writer's log dir>/hparams/<candidate>``: ``tensorboard --logdir RUN_DIR`` shows them.
"""

from __future__ import annotations

import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

SCORES = ("fid", "is_mean", "kid_mean", "val_acc", "val_loss", "test_acc", "train_loss", "train_acc",
          "rank", "alpha_entropy_mean", "alpha_margin_mean")
MAX_GENOTYPE_HPARAMS = 64


def genotype_hparams(genotype_json: str | None) -> dict[str, Any]:
    """A genotype as flat hparams: ``g/<path>`` → op name (or number), ``space`` → its space."""
    if not genotype_json:
        return {}
    try:
        data = json.loads(genotype_json)
    except (TypeError, ValueError):
        return {"genotype": str(genotype_json)[:200]}
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if len(out) >= MAX_GENOTYPE_HPARAMS:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            if all(not isinstance(v, (dict, list, tuple)) for v in value) and len(value) <= 3:
                out[f"g/{prefix}"] = ",".join(map(str, value))  # e.g. an edge (op, input)
            else:
                for i, v in enumerate(value):
                    walk(f"{prefix}/{i}" if prefix else str(i), v)
        elif prefix == "space":
            out["space"] = str(value)
        elif isinstance(value, (bool, int, float, str)):
            out[f"g/{prefix}"] = value
        else:
            out[f"g/{prefix}"] = str(value)

    walk("", data)
    return out


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def log_candidate(writer, name: str, row: dict[str, Any], step: int | None = None) -> None:
    """One candidate (a result row) as an HParams session ``hparams/<name>`` below ``writer``'s log dir."""
    hparams: dict[str, Any] = {k: row[k] for k in ("stage", "method") if isinstance(row.get(k), str)}
    for k in ("round", "epoch", "seed"):
        if _number(row.get(k)) is not None:
            hparams[k] = int(float(row[k]))
    if _number(row.get("params")) is not None:
        hparams["params"] = int(float(row["params"]))
    hparams.update(genotype_hparams(row.get("genotype")))
    metrics = {f"score/{k}": v for k in (*SCORES, "params") if (v := _number(row.get(k))) is not None}
    if not metrics:
        return
    writer.add_hparams(hparams, metrics, run_name=f"hparams/{name}", global_step=step)


def _figure_image(draw) -> Any | None:
    """An HWC image array of what ``draw(path)`` writes as a PNG (None when it draws nothing)."""
    import matplotlib.image

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        try:
            out = draw(path)
        except Exception:  # a plot that cannot be drawn must never stop the search
            return None
        if out is None or not Path(out).is_file():
            return None
        with open(out, "rb") as f:
            image = matplotlib.image.imread(io.BytesIO(f.read()), format="png")
    return image[..., :3] if image.ndim == 3 else image


def add_genotype_image(writer, tag: str, genotype_json: str | None, step: int) -> None:
    """The genotype's diagram (``raynas.spaces.draw``) as a TensorBoard image."""
    if not genotype_json:
        return
    from raynas.spaces import Genotype
    from raynas.spaces.draw import draw_genotype

    image = _figure_image(lambda p: draw_genotype(Genotype.from_json(genotype_json), p))
    if image is not None:
        writer.add_image(tag, image, step, dataformats="HWC")


def log_population(writer, stage: str, round_: int, rows: list[dict[str, Any]]) -> None:
    """An EAGAN round: every candidate as an HParams session, the round's Pareto plot and the best genotype's
    diagram as images. Never raises: TensorBoard is a view, the search goes on without it."""
    try:
        import pandas as pd

        from raynas.plots import draw_pareto

        for row in rows:
            log_candidate(writer, str(row.get("candidate_id")), row, step=round_)
        df = pd.DataFrame(rows)
        image = _figure_image(lambda p: draw_pareto(df, p))
        if image is not None:
            writer.add_image(f"stage_{stage}/pareto", image, round_, dataformats="HWC")
        best = next((r for r in rows if r.get("best")), None)
        if best is not None:
            add_genotype_image(writer, f"stage_{stage}/best_genotype", best.get("genotype"), round_)
        writer.flush()
    except Exception as exc:  # pragma: no cover - a view must not end a search
        print(f"raynas: warning: TensorBoard HParams logging failed: {exc}", flush=True)


def log_search_epoch(writer, trial: str, epoch: int, row: dict[str, Any]) -> None:
    """A differentiable search's epoch: the derived genotype as an HParams session (``<trial>/epoch_NNNN``) with
    its scores, and its diagram as an image."""
    try:
        log_candidate(writer, f"{trial}/epoch_{epoch:04d}", row, step=epoch)
        add_genotype_image(writer, "derived/genotype", row.get("genotype"), epoch)
        writer.flush()
    except Exception as exc:  # pragma: no cover - a view must not end a search
        print(f"raynas: warning: TensorBoard HParams logging failed: {exc}", flush=True)
