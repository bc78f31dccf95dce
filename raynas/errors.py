"""User-facing errors.

Every mistake a user can make (bad config, missing dataset, corrupt checkpoint, ...) raises a
``RaynasError`` subclass whose message says what was wrong and how to fix it. The CLI prints the
message without a traceback and exits with status 2.
"""

from __future__ import annotations


class RaynasError(Exception):
    """Base class for errors caused by user input rather than by a bug."""

    exit_code = 2


class ConfigError(RaynasError):
    """Unknown preset, unknown key, or a value of the wrong type or range."""


class DatasetError(RaynasError):
    """A dataset that cannot be found, read or resized as requested."""


class CheckpointError(RaynasError):
    """A checkpoint that is missing, truncated or from an incompatible model."""


class MetricsError(RaynasError):
    """A feature extractor or its weights that cannot be loaded, or an unusable image source."""


class GenotypeError(RaynasError, ValueError):
    """A genotype that names an unknown op, breaks a space constraint or has the wrong shape."""


class RunDirError(RaynasError):
    """A run directory that cannot be created or written, or that holds no results."""


class DamagedResultsError(RunDirError):
    """Result parts (``results/part-*.parquet``) that cannot be read: truncated, overwritten or not Parquet.
    ``parts`` names them as the user sees them (paths, or URIs for a run stored at one)."""

    def __init__(self, message: str, parts: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.parts = list(parts)


class StorageFullError(RunDirError):
    """The storage a run writes to has no space left (ENOSPC). What was written before stays; once space is
    free the run continues with ``--resume``."""


class ClusterError(RaynasError):
    """A Ray cluster address where nothing answers, or a cluster that refuses this client (token auth)."""


class TrainingDiverged(RaynasError):
    """A loss became NaN or infinite; earlier checkpoints and results are kept."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run: what was written stays, and the run resumes with ``--resume run_path``.
    ``signum`` is the signal that stopped it, where known (the exit status is 128 + it)."""

    def __init__(self, run_path: object = None, signum: int | None = None):
        super().__init__(str(run_path) if run_path is not None else "")
        self.run_path = run_path
        self.signum = signum


class ExportError(RaynasError):
    """A network that cannot be exported in the asked format (missing packages, an unsupported op, a check
    that found the exported program computing something else)."""
