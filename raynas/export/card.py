"""The model card: what a network is, what it scored and under which protocol, and how to get it again.

``model_card.json`` (every field) and ``MODEL_CARD.md`` (a short human summary) are written into a run directory
when a retrain (any ``raynas train`` / ``retrain`` run) finishes, and beside the file ``raynas export`` writes.
Fields: the network (kind, family, input shape, sizes), the genotype, parameters, FLOPs per input (2 per
multiply-add, ``raynas.nn.profile.count_flops``), where its weights came from, the run's last scores with their
protocol (samples, feature extractor, the split compared against), preset, seed, versions and the command that
reproduces it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import torch

from raynas.export.api import Network

CARD_JSON = "model_card.json"
CARD_MD = "MODEL_CARD.md"
CARD_VERSION = 1
GAN_METRICS = ("is_mean", "is_std", "fid", "kid_mean", "kid_std")
CLASSIFIER_METRICS = ("test_acc", "test_top5", "test_loss", "val_acc", "val_top5", "val_loss")


def build_card(net: Network, *, command: str | None = None, export: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card of ``net`` (a run's network carries its run's scores, preset and seed)."""
    from raynas.nn.profile import count_flops, count_params
    from raynas.results.rundir import package_versions

    x = net.example_input(1)
    with torch.no_grad():
        y = net.module(x)
    y = y[0] if isinstance(y, tuple) else y
    card: dict[str, Any] = {
        "raynas_model_card": CARD_VERSION,
        "network": {"kind": net.kind, "family": net.family, "input_shape": list(net.input_shape),
                    "output_shape": list(y.shape[1:]), "sizes": _plain(net.sizes)},
        "genotype": json.loads(net.genotype.to_json()) if net.genotype is not None else None,
        "parameters": count_params(net.module),
        "flops": count_flops(net.module, x),
        "flops_note": "forward FLOPs per input, 2 per multiply-add (halve them to compare with MACs)",
        "weights": net.weights or f"untrained (freshly initialised){': the run ' + net.note if net.note else ''}",
        "source": net.source,
        "run": str(net.run) if net.run is not None else None,
        "metrics": {},
        "preset": None,
        "seed": None,
        "versions": package_versions(),
        "reproduce": command,
    }
    if net.run is not None and net.cfg is not None:
        card.update(_run_fields(net))
        if command is not None:
            card["reproduce"], card["trained_by"] = command, card["reproduce"]
    if export is not None:
        card["export"] = export
    return card


def _run_fields(net: Network) -> dict[str, Any]:
    from raynas.config import FIXED
    from raynas.results import RunDir

    cfg, run = net.cfg, RunDir.open(net.run)
    meta = run.meta
    fields: dict[str, Any] = {"preset": cfg.preset, "seed": cfg.train.seed, "method": cfg.method,
                              "device": meta.get("device"), "trained_versions": meta.get("versions")}
    config = shlex.quote(str(run.config_path))
    if cfg.method == FIXED:
        fields["reproduce"] = f"raynas train --preset {config} --name NEW_NAME"
        fields["metrics"] = last_scores(run, cfg) if net.kind != "discriminator" else {}
    else:
        fields["reproduce"] = f"raynas search {cfg.method} --preset {config} --name NEW_NAME"
        fields["metrics"] = {}
        fields["metrics_note"] = f"a {cfg.method} search: its candidates' scores are in `raynas results {net.run}`"
    return fields


def last_scores(run: Any, cfg: Any) -> dict[str, Any]:
    """The run's last scored epoch, with the protocol those scores were measured under."""
    df = run.read()
    names = GAN_METRICS if cfg.task == "gan" else CLASSIFIER_METRICS
    present = [c for c in names if c in df.columns]
    if df.empty or not present:
        return {}
    scored = df[df[present].notna().any(axis=1)]
    if scored.empty:
        return {}
    if "epoch" in scored:
        scored = scored.sort_values("epoch", kind="stable")
    row = scored.iloc[-1]
    out: dict[str, Any] = {k: _plain(row[k]) for k in present if row[k] == row[k] and row[k] is not None}
    out["epoch"] = _plain(row["epoch"]) if "epoch" in row else None
    if cfg.task == "gan":
        out["protocol"] = {"name": cfg.eval.protocol,
                           "samples": _plain(row["num_samples"]) if "num_samples" in row else cfg.eval.num_samples,
                           "extractor": _plain(row["extractor"]) if "extractor" in row else cfg.eval.extractor,
                           "split": f"{cfg.data.name}:{cfg.eval.real_split}"}
    else:
        limit = getattr(cfg.data, "test_limit", 0)
        out["protocol"] = {"name": "top-1/top-5 accuracy", "samples": limit or "all",
                           "extractor": None, "split": f"{cfg.data.name}:test"}
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        try:
            return value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def card_markdown(card: dict[str, Any]) -> str:
    """The short human summary of a card."""
    n = card["network"]
    lines = [f"# Model card: {n['family']} {n['kind']}", "",
             f"- source: `{card['source']}`" + (f" (run `{card['run']}`)" if card.get("run") else ""),
             f"- input {n['input_shape']} -> output {n['output_shape']}; sizes {json.dumps(n['sizes'])}",
             f"- parameters {card['parameters']:,}; FLOPs per input {card['flops']:,} (2 per multiply-add)",
             f"- weights: {card['weights']}"]
    if card.get("preset") is not None:
        lines.append(f"- preset {card['preset']}, seed {card['seed']}")
    metrics = dict(card.get("metrics") or {})
    protocol = metrics.pop("protocol", None)
    if metrics:
        scores = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        lines.append(f"- scores: {scores}")
    if protocol:
        lines.append(f"- protocol: {protocol['name']}, {protocol['samples']} samples, extractor "
                     f"{protocol['extractor']}, against {protocol['split']}")
    if card.get("export"):
        e = card["export"]
        lines.append(f"- exported as {e['format']} to `{e['file']}`; {e['check']}")
    versions = card.get("versions") or {}
    lines.append(f"- versions: raynas {versions.get('raynas')}, torch {versions.get('torch')}, python "
                 f"{versions.get('python')}")
    if card.get("reproduce"):
        lines.append(f"- reproduce: `{card['reproduce']}`")
    if card.get("trained_by"):
        lines.append(f"- trained by: `{card['trained_by']}`")
    if card.get("genotype") is not None:
        lines += ["", "## Genotype", "", "```json", json.dumps(card["genotype"], indent=2), "```"]
    return "\n".join(lines) + "\n"


def write_card(card: dict[str, Any], json_path: Path, md_path: Path) -> tuple[Path, Path]:
    """Both files, each written whole (temporary file, then renamed)."""
    from raynas.results.storage import write_atomic

    text = json.dumps(card, indent=2) + "\n"
    write_atomic(json_path, lambda f: f.write(text.encode()))
    md = card_markdown(card)
    write_atomic(md_path, lambda f: f.write(md.encode()))
    return json_path, md_path


def write_run_card(run: Any) -> Path | None:
    """The card of a finished fixed run, in its directory (a URI run: uploaded too). Provenance only: a card
    that cannot be made is a warning, never a failed run (its results and checkpoints are what count)."""
    import sys

    from raynas.export.api import resolve

    try:
        net = resolve(run.path, weights=False)  # the architecture: its checkpoint may not be on this node
        net.weights = "trained by this run: its final checkpoint under tune/ (a GAN generator: its EMA weights)"
        paths = write_card(build_card(net), run.path / CARD_JSON, run.path / CARD_MD)
        if run.remote is not None:
            for p in paths:
                run.remote.child(p.name).write_bytes(p.read_bytes())
    except Exception as exc:  # noqa: BLE001 - see the docstring
        print(f"raynas: warning: no model card for {run.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return paths[0]
