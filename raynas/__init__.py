"""raynas: Ray-based neural architecture search for GANs and image classifiers."""

import os as _os  # noqa: E402

from raynas.version import __version__  # noqa: F401  (the one place it is set: raynas/version.py)

# OpenMP threads that wait by spinning turn a busy machine's lost core into a 4-17x slowdown (every parallel
# region waits on a descheduled spinner); sleeping waiters slow a run in proportion to the cores it lost.
# Read once, when torch loads its OpenMP runtime: set here, before any raynas module imports torch, and
# inherited by the workers of an embedded Ray. A user's own OMP_WAIT_POLICY wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if _os.environ.get("RAYNAS_NUMERICS"):  # float64: this process (a CLI, a Ray worker) computes in float64
    from raynas.device import apply_numerics as _apply_numerics

    _apply_numerics()


def __getattr__(name: str):
    """``raynas.model`` loads torch only when asked for (``import raynas`` stays light)."""
    if name == "model":
        from raynas.export.api import model

        return model
    raise AttributeError(f"module 'raynas' has no attribute {name!r}")
