"""``raynas runs [STORAGE]``: every run stored below a folder or URI, one line each, so a run can be found again
(and passed to ``raynas results``, ``report --compare``, ``retrain``) without remembering its name."""

from __future__ import annotations

import argparse
import json
import os


def default_storage() -> str:
    """Where runs go unless told otherwise: ``RAYNAS_STORAGE``, else the config's ``run.output_dir`` default."""
    from raynas.cli.common import STORAGE_ENV
    from raynas.config.common import RunConfig

    return os.environ.get(STORAGE_ENV) or RunConfig().output_dir


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _best(best: dict | None) -> str:
    if not best:
        return "-"
    value = best["value"]
    return f"{best['metric']}={value:.4g}" if isinstance(value, (int, float)) else f"{best['metric']}={value}"


def format_runs(infos) -> str:
    """The runs as an aligned table (header first)."""
    header = ("name", "method", "preset", "status", "started", "duration", "best", "stored at")
    lines = [header]
    for i in infos:
        status = i.status
        started = (i.started or "-").replace("T", " ").replace("+00:00", "Z")
        lines.append((i.name, i.method or "-", i.preset or "-", status, started, _duration(i.seconds), _best(i.best),
                      i.location))
    widths = [max(len(str(row[k])) for row in lines) for k in range(len(header) - 1)]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) + "  " + str(row[-1])
                     for row in lines)


def cmd_runs(args: argparse.Namespace) -> int:
    from raynas.errors import RunDirError
    from raynas.results.runs import find_runs
    from raynas.results.storage import Location, is_uri

    storage = args.storage or default_storage()
    if not is_uri(storage) and not os.path.isdir(os.path.expanduser(storage)):
        raise RunDirError(f"{storage} is not a folder; pass the storage your runs went to (--storage of the run, "
                          "a folder or a URI such as s3://bucket/raynas)")
    if is_uri(storage):
        loc = Location.parse(storage)
        try:
            there = loc.exists()
        except OSError as e:
            raise RunDirError(f"cannot read {storage}: {e}") from None
        if not there:
            raise RunDirError(f"nothing is stored at {storage}")
    try:
        infos = find_runs(storage, depth=args.depth)
    except OSError as e:
        raise RunDirError(f"cannot list the runs in {storage}: {e}") from None
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    if not infos:
        print(f"no raynas runs in {storage}")
        return 0
    print(format_runs(infos))
    for i in infos:  # what is damaged, below the table so that its lines stay readable
        if i.problem:
            print(f"{i.location}: damaged: {i.problem}")
    return 0


def register(sub: argparse._SubParsersAction, commands) -> None:
    p = sub.add_parser("runs", help="list the runs stored in a folder or URI (name, method, status, best score)")
    p.add_argument("storage", nargs="?", metavar="STORAGE",
                   help="folder or URI holding runs (default: RAYNAS_STORAGE, else runs)")
    p.add_argument("--depth", type=int, default=4,
                   help="levels below STORAGE to look for runs (default 4: a comparison's arms, a grid's cells)")
    p.add_argument("--json", action="store_true", help="print the runs as a JSON list")
    p.set_defaults(func=commands.cmd_runs)
