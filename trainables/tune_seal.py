"""Seals on Ray Tune's own state files, so that ``--resume`` never unpickles a file raynas did not verify.

``Tuner.restore`` unpickles files from the run's Tune experiment folder (``tuner.pkl``; cloudpickled values
inside ``experiment_state-*.json``; the search algorithm's ``basic-variant-state-*.json``,
``search_gen_state-*.json`` and ``searcher-state-*.pkl``; ``callback-states-*.pkl``). Unpickling runs code, and a
run folder on shared storage or in an object store is a place where others can write. So raynas seals every
such file (each top-level ``*.json``/``*.pkl`` of the experiment folder) with an HMAC-SHA256 whose key lives
*outside* the run folder, and ``verify`` checks them all before a resume restores anything.

* The key: ``RAYNAS_SEAL_KEY_FILE``, else ``$XDG_CONFIG_HOME/raynas/seal.key`` (``~/.config/raynas/seal.key``),
  32 random bytes created mode 0600 on first use. Only the driver (the process that runs ``tuner.fit``) uses
  it. A run resumed on another machine needs the same key there (point ``RAYNAS_SEAL_KEY_FILE`` at a copy).
* The seals: ``SEAL_FILE`` in the experiment folder, one list of MACs per file name. No ``.json``/``.pkl``
  suffix: Tune neither downloads it into its staging folder nor uploads a stale copy back over it.
* When: ``tuner.pkl`` right after the Tuner writes it; every other file each time Tune saves its state
  (``TuneStateSeal.get_state`` runs inside Tune's save, after its state files are written to the local staging
  folder and *before* Tune uploads them), so a driver killed at any moment leaves only sealed versions behind.
  The last ``KEEP`` versions of each file stay accepted, since an upload may still be on its way when the
  driver dies: rolling back to an earlier version Tune itself wrote runs no foreign code.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raynas.errors import RaynasError, RunDirError
from raynas.results.storage import Location

KEY_ENV = "RAYNAS_SEAL_KEY_FILE"
SEAL_FILE = "raynas-seal.txt"
TUNER_FILE = "tuner.pkl"
STATE_PATTERN = ("experiment_state-", ".json")
KEEP = 16  # versions of each file accepted: uploads in flight when a driver dies lag a few saves at most
_VERSION = 1
TRUST_COMMAND = "python -m trainables.tune_seal trust"


def key_file() -> Path:
    """Where the seal key lives: ``RAYNAS_SEAL_KEY_FILE``, else the user's config folder (never the run's)."""
    named = os.environ.get(KEY_ENV)
    if named:
        return Path(named).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "raynas" / "seal.key"


def _key(create: bool) -> bytes:
    path = key_file()
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another raynas made it meanwhile
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise RunDirError(f"the seal key {path} does not exist on this machine, so raynas cannot check the Tune "
                          f"state of this run: resume it where it was started, or point {KEY_ENV} at a copy of "
                          "that machine's key") from None
    except OSError as exc:
        raise RunDirError(f"cannot read the seal key {path} ({exc.strerror or exc}); {KEY_ENV} names another "
                          "file") from None
    if len(key) < 16:
        raise RunDirError(f"the seal key {path} holds {len(key)} bytes, too few to be a key; remove it (raynas "
                          "makes a new one, and runs sealed with the old one can no longer be resumed) or point "
                          f"{KEY_ENV} at the right file")
    return key


def _mac(key: bytes, name: str, data: bytes) -> str:
    return hmac.new(key, name.encode() + b"\0" + data, hashlib.sha256).hexdigest()


def is_state_file(name: str) -> bool:
    """A file of the experiment folder that Tune's restore may read (and unpickle): its top-level ``.json``
    and ``.pkl`` files. Dot files are Tune's temporary names, which none of its readers match."""
    return not name.startswith(".") and name.endswith((".json", ".pkl"))


def _state_files(exp: Location) -> dict[str, str]:
    """Name → path on ``exp.fs`` of each state file in the experiment folder."""
    import pyarrow.fs

    infos = exp.fs.get_file_info(pyarrow.fs.FileSelector(exp.path, recursive=False, allow_not_found=True))
    return {i.base_name: i.path for i in infos if i.type == pyarrow.fs.FileType.File and is_state_file(i.base_name)}


def _read(loc: Location) -> bytes:
    with loc.fs.open_input_stream(loc.path) as f:
        return f.read()


def _seals(exp: Location) -> dict[str, list[str]] | None:
    """The seals stored in ``exp`` (None: there are none). A seal file that is not raynas's is refused."""
    seal = exp.child(SEAL_FILE)
    if not seal.is_file():
        return None
    try:
        data = json.loads(_read(seal).decode("utf-8"))
        files = data["files"]
        if data.get("version") != _VERSION or not isinstance(files, dict) or not all(
                isinstance(v, list) and all(isinstance(m, str) for m in v) for v in files.values()):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise RunDirError(f"{seal.uri} is damaged (not a raynas seal file), so the Tune state beside it cannot be "
                          "checked; the run cannot be resumed safely") from None
    return files


def seal(exp: Location, contents: dict[str, bytes]) -> None:
    """Add the MACs of ``contents`` (file name → bytes) to the seals in ``exp``; earlier versions stay
    accepted up to ``KEEP`` per name."""
    if not contents:
        return
    key = _key(create=True)
    files = _seals(exp) or {}
    for name, data in contents.items():
        mac = _mac(key, name, data)
        files[name] = [mac, *[m for m in files.get(name, []) if m != mac]][:KEEP]
    exp.child(SEAL_FILE).write_bytes(json.dumps({"version": _VERSION, "files": files}, indent=1,
                                                sort_keys=True).encode())


def seal_stored(location: str, names: Iterable[str]) -> None:
    """Seal the files ``names`` as they are now stored in the experiment folder ``location`` (path or URI)."""
    exp = Location.parse(location)
    seal(exp, {name: _read(exp.child(name)) for name in names if exp.child(name).is_file()})


def newest_state(names: Iterable[str]) -> str | None:
    """The experiment state file Tune restores from: the newest session's (the largest name, as Tune picks)."""
    states = [n for n in names if n.startswith(STATE_PATTERN[0]) and n.endswith(STATE_PATTERN[1])]
    return max(states) if states else None


def verify(location: str) -> str:
    """Refuse (``RunDirError``, naming the file) a resume whose Tune state raynas cannot vouch for: a state
    file without a matching seal, a missing ``tuner.pkl`` or experiment state, or a run without seals. Reads
    nothing but bytes. Returns the name of the experiment state file Tune will restore from."""
    exp = Location.parse(location)
    stored = _state_files(exp)
    newest = newest_state(stored)
    for needed in (TUNER_FILE, newest or "experiment_state-<session>.json"):
        if needed not in stored:
            raise RunDirError(f"{exp.child(needed).uri} is missing, so Tune cannot restore this run; it was "
                              "deleted, or the run was stopped before Tune saved its state (then start it anew)")
    files = _seals(exp)
    if files is None:
        raise RunDirError(f"the Tune state in {exp.uri} carries no raynas seal (a run started before raynas "
                          "sealed it, or its seal file was removed), and resuming unpickles it, which can run "
                          "code. If nobody else can have written there, vouch for it once with `"
                          f"{TRUST_COMMAND} {exp.uri}` and resume again")
    key = _key(create=False)
    for name in sorted(stored, key=lambda n: (n != newest, n)):  # the file a resume needs most is named first
        macs = files.get(name)
        if not macs:
            raise RunDirError(f"{exp.child(name).uri} was not written by this run's Tune (raynas never sealed it), "
                              "and resuming would unpickle it, which can run code; remove it if you did not put "
                              "it there on purpose")
        if not any(hmac.compare_digest(_mac(key, name, _read(exp.child(name))), m) for m in macs):
            raise RunDirError(f"{exp.child(name).uri} is damaged or was changed after Tune wrote it (it does not "
                              f"match raynas's seal), so the run cannot be resumed safely from it; if this run was "
                              f"started on another machine, point {KEY_ENV} at that machine's seal key")
    _check_json(exp, newest)
    return newest


def _check_json(exp: Location, name: str) -> None:
    """An experiment state that is not JSON would make Tune start a new experiment instead (it logs "Failed to
    restore the run state" and goes on): refuse it here, naming it."""
    try:
        state = json.loads(_read(exp.child(name)).decode("utf-8"))
        if not isinstance(state, dict) or not state.get("trial_data"):
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise RunDirError(f"{exp.child(name).uri} is damaged (not a Tune experiment state with trials), so "
                          "the run cannot be resumed from it") from None


class TuneStateSeal(Callback):
    """Seals Tune's state files each time Tune saves them (see the module docstring). Holds no settings: it
    learns the staging and storage folders from the saving Tune controller (or its trials), so a run moved
    elsewhere seals its new place, and its pickle in ``tuner.pkl`` carries neither the key nor a path."""

    def __init__(self) -> None:
        self._where: tuple[str, Any, str] | None = None  # (staging folder, storage fs, storage path)

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._where = None

    def _learn(self, trials: Iterable[Any]) -> None:
        for trial in trials:
            self._remember(getattr(trial, "storage", None))

    def _remember(self, storage: Any) -> None:
        if storage is not None:
            self._where = (storage.experiment_driver_staging_path, storage.storage_filesystem,
                           storage.experiment_fs_path)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._where is None:
            self._learn(trials)

    def get_state(self) -> None:
        """Called by Tune's save after it wrote its state files to the staging folder, before it uploads them:
        seal them in the storage now. Returns None, so Tune writes no callback state for it."""
        self._remember(_saving_storage())  # Tune saves once before it hands any trial to a callback
        if self._where is None:
            return None
        staging, fs, path = self._where
        folder, exp = Path(staging), Location(path, fs, path)
        names = [p.name for p in folder.iterdir() if p.is_file() and is_state_file(p.name)] if folder.is_dir() else []
        contents = {name: (folder / name).read_bytes() for name in names}
        if TUNER_FILE not in contents and TUNER_FILE not in (_seals(exp) or {}) and exp.child(TUNER_FILE).is_file():
            contents[TUNER_FILE] = _read(exp.child(TUNER_FILE))  # a Tuner of the user's own: its first save
        seal(exp, contents)
        return None


def _saving_storage() -> Any:
    """The StorageContext of the Tune controller whose ``save_to_dir`` is running (our caller's caller): the
    Callback API hands no storage to ``get_state``, and the first save comes before any trial does."""
    from ray.train._internal.storage import StorageContext

    frame = sys._getframe(2)
    while frame is not None:
        storage = getattr(frame.f_locals.get("self"), "_storage", None)
        if isinstance(storage, StorageContext):
            return storage
        frame = frame.f_back
    return None


def with_seal(callbacks: list | None) -> list:
    """``callbacks`` with one ``TuneStateSeal`` in it."""
    callbacks = list(callbacks or [])
    if not any(isinstance(c, TuneStateSeal) for c in callbacks):
        callbacks.append(TuneStateSeal())
    return callbacks


def add_to_restored(tuner: Any) -> None:
    """A restored Tuner gets its run config from ``tuner.pkl``: one written before raynas sealed (a run the
    user vouched for) lacks the seal callback, so add it."""
    internal = getattr(tuner, "_local_tuner", None)
    run_config = internal.get_run_config() if internal is not None else None
    if run_config is not None:
        run_config.callbacks = with_seal(run_config.callbacks)


class _RestoreFailed(logging.Filter):
    """Tune's controller logs "Failed to restore the run state" and starts a *new* experiment in the run's
    place: turn that log record into an error that ends ``fit`` before any trial starts."""

    def __init__(self, state: str) -> None:
        super().__init__()
        self.state = state

    def filter(self, record: logging.LogRecord) -> bool:
        if str(record.msg).startswith("Failed to restore the run state"):
            cause = record.exc_info[1] if record.exc_info else None
            why = f" ({type(cause).__name__}: {str(cause).splitlines()[0][:200] if str(cause) else ''})" \
                if cause is not None else ""
            raise RunDirError(f"Tune could not restore the run from {self.state}{why}; it is damaged, so the run "
                              "cannot be resumed from it")
        return True


@contextlib.contextmanager
def restore_must_succeed(state: str) -> Iterator[None]:
    """During ``fit`` of a restored Tuner: a failed restore of ``state`` is an error, not a fresh start."""
    log = logging.getLogger("ray.tune.execution.tune_controller")
    watch = _RestoreFailed(state)
    log.addFilter(watch)
    try:
        yield
    finally:
        log.removeFilter(watch)


def trust(location: str) -> str:
    """Seal the Tune state of a run as it is now (the user vouches for it): for runs started before raynas
    sealed. ``location`` is a raynas run or a Tune experiment folder. Returns the experiment folder sealed."""
    from raynas.results import RunDir

    exp = Location.parse(location)
    if not exp.child(TUNER_FILE).is_file():  # a raynas run: its Tune experiment is inside
        run = RunDir.open(location)
        exp = run.remote.child(run.experiment_name) if run.remote is not None else Location.parse(run.tune_dir)
    stored = _state_files(exp)
    newest = newest_state(stored)
    if TUNER_FILE not in stored or newest is None:
        raise RunDirError(f"{exp.uri} holds no Tune state (tuner.pkl and experiment_state-*.json) to vouch for")
    _check_json(exp, newest)
    seal(exp, {name: _read(exp.child(name)) for name in stored})
    return exp.uri


def main(argv: list[str] | None = None) -> int:
    """``python -m trainables.tune_seal trust RUN``: vouch for an unsealed run's Tune state."""
    parser = argparse.ArgumentParser(prog="python -m trainables.tune_seal",
                                     description="Vouch for the Tune state of a raynas run started before raynas "
                                                 "sealed it, so that --resume accepts it. Only for runs nobody else "
                                                 "can have written to: resuming unpickles these files.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("trust", help="seal the run's Tune state files as they are now").add_argument(
        "run_dir", help="the raynas run (or the Tune experiment folder inside it)")
    args = parser.parse_args(argv)
    try:
        where = trust(args.run_dir)
    except RaynasError as exc:
        print(f"raynas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"raynas: sealed the Tune state in {where} with the key {key_file()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
