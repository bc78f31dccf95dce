"""Finding and loading trainer checkpoints outside Tune (for ``raynas metrics checkpoint:PATH``)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from raynas.errors import CheckpointError

STATE_FILE = "state.pt"


def find_state_file(path: str | Path) -> Path:
    """A state.pt file, a Tune checkpoint folder, a trial folder or a run folder → the newest state.pt."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist; pass a run directory, a Tune checkpoint folder "
                              "or its state.pt file")
    candidates = sorted(p.rglob(STATE_FILE), key=lambda f: f.stat().st_mtime)
    if not candidates:
        raise CheckpointError(f"no {STATE_FILE} under {p}; checkpoints appear after the first "
                              "checkpointed epoch of a run")
    return candidates[-1]


def find_run_config(state_file: Path) -> Path:
    for parent in state_file.resolve().parents:
        if (parent / "config.yaml").is_file() and (parent / "run.json").is_file():
            return parent / "config.yaml"
    raise CheckpointError(f"cannot find the run's config.yaml above {state_file}; keep checkpoints inside "
                          "their run directory")


def load_generator(path: str | Path, device: torch.device | None = None) -> tuple[torch.nn.Module, int]:
    """The EMA generator saved in a trainer checkpoint, rebuilt from its run's config."""
    from raynas.build import build_generator, latent_dim_of
    from raynas.config import RaynasConfig, from_dict
    from raynas.gan.checkpoint import load_checkpoint

    state_file = find_state_file(path)
    cfg = from_dict(RaynasConfig, yaml.safe_load(find_run_config(state_file).read_text()))
    state = load_checkpoint(state_file)
    G = build_generator(cfg.model, cfg.data)
    weights = state.get("G_ema", {})
    weights = weights.get("module", weights) if isinstance(weights, dict) else weights
    try:
        G.load_state_dict(weights)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{state_file} does not hold a generator matching its run config: {exc}") from None
    G.eval()
    if device is not None:
        G = G.to(device)
    return G, latent_dim_of(G, cfg.model.latent_dim)
