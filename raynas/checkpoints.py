"""The one checkpoint module: atomic, versioned saves; safe loading; RNG capture for exact resume; and
finding a run's newest checkpoint outside Tune. Rebuilding a network from a checkpoint needs the run's config and
``raynas.build``: that is ``raynas.export.api`` (``load_generator`` for ``raynas metrics checkpoint:PATH``).

A checkpoint is written to a temporary file in the target directory, fsynced and renamed over the
target, so a crash mid-save leaves the previous checkpoint intact. Every file carries a format marker
so a foreign or corrupt file fails with a CheckpointError naming the path, never with a bare unpickling
traceback.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raynas.errors import CheckpointError

STATE_FILE = "state.pt"
FORMAT_MARKER = "raynas-checkpoint"
FORMAT_VERSION = 1


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open directories; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically to ``path`` (parent folders are created)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"Cannot create the checkpoint folder {path.parent}: {e}. Choose a writable "
                              "output directory (--set run.output_dir=...).") from e
    import io

    from raynas.results.storage import push, storage_full, write_atomic

    payload = {"format": FORMAT_MARKER, "version": FORMAT_VERSION, "state": state}
    buffer = io.BytesIO()  # serialised first: a full disk is then an OSError of the write, not a torch error
    torch.save(payload, buffer)
    try:
        write_atomic(path, lambda f: f.write(buffer.getbuffer()))
    except OSError as e:
        full = storage_full(e, path)
        if full is not None:
            raise full from None
        raise CheckpointError(f"Cannot write checkpoint {path}: {e}. Check free disk space and that the "
                              "folder is writable.") from e
    _fsync_dir(path.parent)
    push(path)  # a run stored at a URI: upload at once (an actor on any node may be writing it)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", *, weights_only: bool = True
                    ) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` and return its state dict.

    Always ``torch.load(weights_only=True)``, whatever ``weights_only`` says (the keyword stays for old
    callers): raynas checkpoints hold only tensors and plain data (numbers, strings, lists, dicts), so a file
    that holds any other Python object (which could run code while it is unpickled) is refused before
    anything in it executes."""
    import pickle

    from raynas.results.storage import pull

    path = Path(path)
    pull(path)  # a run stored at a URI: fetch a checkpoint another node wrote
    if not path.is_file():
        what = "is a directory, not a checkpoint file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"Checkpoint {path} {what}. Check the path, point --resume at a run "
                              "directory that has checkpoints/, or start a fresh run without --resume.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            raise CheckpointError(f"Refused to load {path}: it holds Python objects, which could run code when "
                                  "loaded; raynas checkpoints hold only tensors and plain data. Use a checkpoint "
                                  "written by raynas, or start a fresh run.") from None
        # random bytes or another program's pickle: an opcode the safe unpickler does not know
        raise CheckpointError(f"{path} is not a checkpoint: its bytes are not a file torch.save wrote, or it is "
                              "corrupt or truncated. Point at a file written by raynas (e.g. RUN_DIR/checkpoints/"
                              "last.pt), or resume from an earlier checkpoint.") from None
    except Exception as e:  # truncated zip, garbage bytes ...
        raise CheckpointError(f"Checkpoint {path} is corrupt or truncated ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200] if str(e) else ''}). Delete it and resume from an "
                              "earlier checkpoint, or start a fresh run.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_MARKER:
        raise CheckpointError(f"{path} is not a raynas checkpoint (no '{FORMAT_MARKER}' marker). Point "
                              "at a file written by raynas, e.g. RUN_DIR/checkpoints/last.pt.")
    version = payload.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"Checkpoint {path} has format version {version!r}, but this raynas reads "
                              f"versions up to {FORMAT_VERSION}. Upgrade raynas to resume it.")
    state = payload.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"Checkpoint {path} holds no state dict; it is damaged. Start a fresh run.")
    return state


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states, as tensors/plain types."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng_state``; CUDA states are restored for the devices present."""
    try:
        if "python" in state:
            random.setstate(_as_tuple(state["python"]))
        if "numpy" in state:
            ns = state["numpy"]
            key = ns["key"]
            key = key.cpu().numpy() if isinstance(key, torch.Tensor) else np.asarray(key)
            np.random.set_state({
                "bit_generator": ns["bit_generator"],
                "state": {"key": key.astype(np.uint32), "pos": int(ns["pos"])},
                "has_gauss": int(ns["has_gauss"]),
                "gauss": float(ns["gauss"]),
            })
        if "torch" in state:
            torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8).cpu())
        if state.get("cuda") and torch.cuda.is_available():
            cuda_states = list(state["cuda"])[: torch.cuda.device_count()]
            for i, s in enumerate(cuda_states):
                torch.cuda.set_rng_state(torch.as_tensor(s, dtype=torch.uint8).cpu(), device=i)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"The checkpoint's random-number state is malformed ({e}); it was not "
                              "written by this raynas version. Start a fresh run.") from e


def capture_sampling_state(real: Any = None) -> dict[str, Any]:
    """Everything that decides what a resumed run draws next: the global RNGs (latents, subnet choices)
    and the real-batch sampler's state when it has one."""
    return {"rng": capture_rng_state(),
            "data": real.state_dict() if hasattr(real, "state_dict") else None}


def restore_sampling_state(state: dict[str, Any], real: Any = None) -> None:
    restore_rng_state(state["rng"])
    if state.get("data") is not None and hasattr(real, "load_state_dict"):
        real.load_state_dict(state["data"])


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
