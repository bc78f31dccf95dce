"""The ``raynas`` command line, built from the method registry.

Every user mistake surfaces as a ``RaynasError``: printed as one clear message (no traceback) with exit
status 2. Heavy imports (torch, Ray) happen inside the commands so ``--help`` stays instant. This package
is the only part of ``raynas`` that reaches into ``trainables`` (and through it Ray).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from raynas import signals
from raynas.cli import common, compare, export, inspect, runs, search, train
from raynas.cli.common import absolute_paths, config_from_args, user_error_exit
from raynas.cli.compare import cmd_compare
from raynas.cli.export import cmd_export, cmd_sample
from raynas.cli.inspect import cmd_arch_show, cmd_config, cmd_metrics, cmd_presets, cmd_report, cmd_results
from raynas.cli.runs import cmd_runs
from raynas.cli.search import cmd_ablate, cmd_extra_ablation, cmd_search
from raynas.cli.train import cmd_retrain, cmd_train
from raynas.errors import RaynasError, StorageFullError

__all__ = ["absolute_paths", "build_parser", "config_from_args", "main"]


class _Parser(argparse.ArgumentParser):
    """Usage mistakes read like every other raynas error: one line, exit 2 (``--help`` shows the usage)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"raynas: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The parser, with each command bound to this module's ``cmd_*`` attribute at build time."""
    parser = _Parser(prog="raynas", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"raynas {_version()}")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Ray's own console output (Tune's trial configs and status tables, its "
                             "hints and routine log lines) besides raynas's progress line")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands = sys.modules[__name__]
    train.register(sub, commands)
    search.register(sub, commands)
    inspect.register(sub, commands)
    export.register(sub, commands)
    compare.register(sub, commands)
    runs.register(sub, commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage mistake (2, already printed)
        return int(exc.code or 0)
    except RaynasError as exc:  # the parser is built from the plugins' methods: one that cannot be imported
        return user_error_exit(exc)
    from raynas import progress

    progress.set_verbose(bool(getattr(args, "verbose", False)) or progress.verbose())
    try:
        with signals.stop_signals():  # SIGTERM (`ray job stop`, `kill`) ends a command as Ctrl-C does
            code = _run(args)
        sys.stdout.flush()  # a pipe's buffered output is written here, where a closed reader can be caught
        return code
    except BrokenPipeError:  # `raynas arch show ... | head`: the reader left; that is not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's final flush must not raise again
        return 0


def _version() -> str:
    """The installed distribution's version, else the package's own (a source checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("raynas")
    except PackageNotFoundError:
        from raynas import __version__

        return __version__


def _run(args: argparse.Namespace) -> int:
    from raynas.results.rows import skipping_damaged

    ok = False
    try:
        with skipping_damaged(bool(getattr(args, "skip_damaged", False))):
            code = int(args.func(args) or 0)
        ok = code == 0
        return code
    except StorageFullError as exc:
        return user_error_exit(_with_resume_hint(exc, args))
    except RaynasError as exc:
        return user_error_exit(exc)
    except (OSError, RuntimeError) as exc:  # a full disk is the user's to fix: one message, the run kept
        from raynas.results.storage import storage_full

        full = storage_full(exc, common.CURRENT_RUN.location if common.CURRENT_RUN else None)
        if full is None:
            raise
        return user_error_exit(_with_resume_hint(full, args))
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: exit 130 or 143, and how to continue
        signals.wind_down()
        run = getattr(exc, "run_path", None) or (common.CURRENT_RUN.location if common.CURRENT_RUN else None)
        how = "interrupted" if signals.exit_status(exc) == 130 else f"stopped by {_signal_name(exc)}"
        print(f"raynas: {how}; results and checkpoints written so far are kept. "
              f"{_resume_hint(args, run or getattr(args, 'resume', None))}", file=sys.stderr, flush=True)
        return signals.exit_status(exc)
    except BrokenPipeError:
        try:
            sys.stdout.flush()
        except BrokenPipeError:  # stdout piped into `head` and closed: stop quietly, as shell tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        raise
    finally:
        signals.wind_down()  # a second SIGTERM must not cut the last upload short
        common.end_of_command(ok)  # a URI run's last upload; where the run is stored, printed last


def _with_resume_hint(exc: StorageFullError, args: argparse.Namespace) -> StorageFullError:
    """A full disk during a run: the message ends with the command that continues it."""
    run = common.CURRENT_RUN.location if common.CURRENT_RUN else getattr(args, "resume", None)
    if run is None or getattr(args, "command", None) not in ("train", "retrain", "search", "ablate", "compare"):
        return exc
    return StorageFullError(f"{exc}. {_resume_hint(args, run)}")


def _signal_name(exc: BaseException) -> str:
    return signal.Signals(signals.exit_status(exc) - 128).name


def _resume_hint(args: argparse.Namespace, run) -> str:
    if run is None:
        return "Nothing was written."
    command = {"train": "train", "retrain": "train"}.get(args.command, args.command)
    if command in ("search", "ablate"):
        command += f" {getattr(args, 'ablation', None) if args.command == 'ablate' else args.method}"
    return f"Continue with: raynas {command} --resume {run}"


__all__ += ["cmd_ablate", "cmd_arch_show", "cmd_config", "cmd_extra_ablation", "cmd_metrics", "cmd_presets",
            "cmd_report", "cmd_results", "cmd_retrain", "cmd_search", "cmd_train"]
__all__ += ["cmd_compare", "cmd_export", "cmd_runs", "cmd_sample"]
