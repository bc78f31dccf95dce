"""Where runs are stored: a folder (a local disk or a mount every node shares, such as NFS/EFS) or an
object-store URI (``s3://bucket/raynas``, ``gs://…``, ``file:///…``) reached through pyarrow's filesystems.

A plain path is used directly, as it always was. A run stored at a URI keeps a local **staging copy** at a
path derived from the URI alone (``staging_path``), so every process on every node maps the same URI to the
same local path and back (``remote_for``), without any shared state:

* result rows (Parquet parts) are written straight to the URI and read from it (never staged);
* ``config.yaml``, ``run.json``, checkpoints (``raynas.checkpoints``) and genotype files are written
  through: local file first, then uploaded at once; a read of a staged file that is missing locally (a
  checkpoint written by an actor on another node) downloads it first;
* everything else a run writes (plots, tables, TensorBoard events, summaries) is uploaded by
  ``RunDir.sync``, which the CLI calls every ``SYNC_SECONDS`` while a run is active and once at its end
  (also after an error or Ctrl-C);
* Tune keeps its own experiment state and trial checkpoints at ``URI/RUN/tune`` (``storage_path``).

Nothing here imports Ray.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from raynas.errors import RunDirError, StorageFullError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
SYNC_SECONDS = 30.0


def is_uri(spec: Any) -> bool:
    """``s3://…``, ``gs://…``, ``file://…``: anything with a URI scheme (a plain path has none)."""
    return isinstance(spec, str) and bool(_SCHEME.match(spec))


@functools.lru_cache(maxsize=64)
def _from_uri(uri: str):
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except (ValueError, OSError, ImportError) as e:
        raise RunDirError(f"cannot open the storage {uri!r}: {e}. Use a folder, a shared mount, or a URI that "
                          "pyarrow understands (s3://bucket/prefix, gs://bucket/prefix, file:///abs/path), with "
                          "the cloud credentials set on every node") from None


@dataclass(frozen=True)
class Location:
    """One place on a filesystem: ``uri`` as the user reads it, ``fs``/``path`` as pyarrow uses it."""

    uri: str
    fs: Any
    path: str

    @classmethod
    def parse(cls, spec: str | os.PathLike) -> Location:
        import pyarrow.fs

        spec = os.fspath(spec)
        if not is_uri(spec):
            path = os.path.abspath(os.path.expanduser(spec))
            return cls(path, pyarrow.fs.LocalFileSystem(), path)
        parts = urlsplit(spec)
        clean = parts._replace(path=parts.path.rstrip("/") or parts.path).geturl()
        fs, path = _from_uri(clean)
        return cls(clean, fs, path.rstrip("/") or "/")

    @property
    def is_uri(self) -> bool:
        return is_uri(self.uri)

    def child(self, *names: str) -> Location:
        rel = "/".join(n.strip("/") for n in names if n)
        if not self.is_uri:
            return Location(os.path.join(self.uri, rel), self.fs, os.path.join(self.path, rel))
        parts = urlsplit(self.uri)
        return Location(parts._replace(path=parts.path.rstrip("/") + "/" + rel).geturl(), self.fs,
                        self.path.rstrip("/") + "/" + rel)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.uri

    # ------------------------------------------------------------------ file operations
    def _info(self):
        return self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        import pyarrow.fs

        return self._info().type != pyarrow.fs.FileType.NotFound

    def is_file(self) -> bool:
        import pyarrow.fs

        return self._info().type == pyarrow.fs.FileType.File

    def is_dir(self) -> bool:
        import pyarrow.fs

        return self._info().type == pyarrow.fs.FileType.Directory

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as f:
            return f.read()

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def write_bytes(self, data: bytes) -> None:
        """Whole-object write. Object stores publish an object only when it is complete; on a local
        filesystem the bytes go to a temporary name that is then renamed, so readers never see half a file."""
        import pyarrow.fs

        parent = self.path.rsplit("/", 1)[0] or "/"
        self.fs.create_dir(parent, recursive=True)
        if isinstance(self.fs, pyarrow.fs.LocalFileSystem):
            write_atomic(Path(self.path), lambda f: f.write(data))
            return
        with self.fs.open_output_stream(self.path) as f:
            f.write(data)

    def files(self) -> list[str]:
        """Paths (on ``fs``) of every file below this directory; [] when it does not exist."""
        import pyarrow.fs

        infos = self.fs.get_file_info(pyarrow.fs.FileSelector(self.path, recursive=True, allow_not_found=True))
        return sorted(i.path for i in infos if i.type == pyarrow.fs.FileType.File)

    def delete(self) -> None:
        import pyarrow.fs

        info = self._info()
        if info.type == pyarrow.fs.FileType.Directory:
            self.fs.delete_dir(self.path)
        elif info.type == pyarrow.fs.FileType.File:
            self.fs.delete_file(self.path)

    def relative(self, fs_path: str) -> str:
        return fs_path[len(self.path.rstrip("/")) + 1:]


# ---------------------------------------------------------------------- staging copies of URI runs
def staging_root() -> Path:
    """Where URI runs keep their local copies: ``RAYNAS_STAGING``, else ``<tmp>/raynas-staging``. Nodes may
    differ in it (TMPDIR, RAYNAS_STAGING): a staged path names its URI itself (``remote_for``)."""
    return Path(os.environ.get("RAYNAS_STAGING") or Path(tempfile.gettempdir()) / "raynas-staging").absolute()


def staging_path(loc: Location) -> Path:
    """The local copy of ``loc``: the URI's scheme, host and query form one folder name, its path the rest."""
    parts = urlsplit(loc.uri)
    base = f"{parts.scheme}://{parts.netloc}" + (f"?{parts.query}" if parts.query else "")
    return staging_root() / quote(base, safe="") / parts.path.lstrip("/")


_STAGED_BASE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*%3A%2F%2F")  # a quoted "scheme://…" folder name


def remote_for(path: str | os.PathLike) -> Location | None:
    """The URI location that a staged path stands for (None for any other path). The path names its URI itself,
    below whichever staging root it was made under: a path the driver staged maps back on a node whose
    staging root differs (an actor writing a checkpoint of the driver's run there)."""
    parts = Path(os.path.abspath(path)).parts
    root = staging_root().parts
    start = len(root) if parts[:len(root)] == root else next(
        (i for i, p in enumerate(parts) if _STAGED_BASE.match(p)), None)
    if start is None or start >= len(parts):
        return None
    base = unquote(parts[start])
    if not is_uri(base):
        return None
    head, _, query = base.partition("?")
    uri = head + "/" + "/".join(parts[start + 1:]) + (f"?{query}" if query else "")
    return Location.parse(uri)


def user_location(path: str | os.PathLike) -> str:
    """Where a file of a run is, as the user named the storage: a path inside a URI run's staging copy is shown
    as its URI (the staging copy is a cache on one machine); any other path is returned unchanged."""
    remote = remote_for(path)
    return remote.uri if remote is not None else os.fspath(path)


def push(path: str | os.PathLike) -> None:
    """Upload a file just written inside a staging copy to its URI (nothing for any other path)."""
    remote = remote_for(path)
    if remote is not None:
        try:
            remote.write_bytes(Path(path).read_bytes())
        except OSError as e:
            raise RunDirError(f"cannot upload {path} to {remote.uri}: {e}. Check the storage credentials and "
                              "that every node can write there") from e


def upload_changed(local: Path, target: Location, synced: dict[str, tuple[int, int]],
                   skip: Any = lambda rel, path: False) -> list[str]:
    """Upload every file below ``local`` that changed since ``synced`` (relative path → size and mtime, updated
    here) to the same relative path below ``target``, except hidden files and those ``skip(rel, path)`` names;
    returns the relative paths uploaded."""
    uploaded = []
    for path in sorted(local.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = path.relative_to(local).as_posix()
        if skip(rel, path):
            continue
        try:
            st = path.stat()
        except OSError:
            continue  # removed meanwhile (a pruned checkpoint)
        stamp = (st.st_size, st.st_mtime_ns)
        if synced.get(rel) == stamp:
            continue
        try:
            target.child(rel).write_bytes(path.read_bytes())
        except FileNotFoundError:
            continue
        synced[rel] = stamp
        uploaded.append(rel)
    return uploaded


def write_atomic(path: Path, write: Any) -> None:
    """``write(f)`` into a temporary file beside ``path``, synced, then renamed over it: readers never see half
    a file, and a crash leaves the old one."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """A text file written as ``write_atomic`` writes: whole or not at all (a full disk keeps the old one)."""
    write_atomic(Path(path), lambda f: f.write(text.encode("utf-8")))


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def storage_full(exc: BaseException, where: str | os.PathLike | None = None) -> StorageFullError | None:
    """The ``StorageFullError`` that ``exc`` stands for, if it (or an exception it was raised from) says the
    storage has no space left: an ``OSError`` ENOSPC or EDQUOT, a message naming it (pyarrow, Ray), or torch's
    ``PytorchStreamWriter … file write failed`` where the storage at ``where`` is (nearly) full. None for any
    other error. ``where``: the run or file that was being written, named in the message."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    found = None
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, StorageFullError):
            return err
        text = str(err)
        if (isinstance(err, OSError) and err.errno in NO_SPACE) or "No space left on device" in text \
                or "Disk quota exceeded" in text or "errno 28]" in text:
            found = err
            break
        if "file write failed" in text and where is not None and _nearly_full(where):
            found = err
            break
        stack += [err.__cause__, err.__context__, getattr(err, "cause", None)]
    if found is None:
        return None
    target = where if where is not None else getattr(found, "filename", None)
    at = f" at {user_location(target)}" if target else ""
    return StorageFullError(f"no space left on the storage{at}: free some space there, then continue the run with "
                            "--resume; everything written before is kept")


def _nearly_full(where: str | os.PathLike, slack: int = 1 << 20) -> bool:
    import shutil

    if is_uri(os.fspath(where)):
        return False  # an object store: its own message says when it is full
    path = Path(where)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free < slack
    except OSError:
        return False


class _AtomicFile(io.RawIOBase):
    """A file written under a temporary name beside ``path`` and renamed over it on a clean close: a write that
    fails (a full disk) leaves the previous file, or none, never half of one."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        self.file = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()
        self.failed = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except BaseException:
            self.failed = True
            self.close()  # at once: the caller may never close a stream whose write failed
            raise

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self.failed:
                self.file.flush()
                os.fsync(self.file.fileno())
            self.file.close()
            if not self.failed:
                os.replace(self.tmp, self.path)
        except BaseException:
            self.failed = True
            raise
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
            super().close()


def _atomic_handler_class():
    import pyarrow.fs

    class AtomicLocalHandler(pyarrow.fs.FileSystemHandler):
        """The local filesystem, except that every output stream is an ``_AtomicFile``: what Tune writes into a
        run (its experiment state, trial checkpoints, results) is whole or absent after a full disk or a kill."""

        def __init__(self) -> None:
            self.fs = pyarrow.fs.LocalFileSystem()

        def __eq__(self, other: object) -> bool:
            return type(other) is type(self)

        def __ne__(self, other: object) -> bool:
            return not self == other

        def __reduce__(self):
            return (atomic_local_filesystem_handler, ())

        def get_type_name(self) -> str:
            return "raynas-atomic-local"

        def normalize_path(self, path):
            return self.fs.normalize_path(path)

        def get_file_info(self, paths):
            return self.fs.get_file_info(paths)

        def get_file_info_selector(self, selector):
            return self.fs.get_file_info(selector)

        def create_dir(self, path, recursive):
            self.fs.create_dir(path, recursive=recursive)

        def delete_dir(self, path):
            self.fs.delete_dir(path)

        def delete_dir_contents(self, path, missing_dir_ok=False):
            self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

        def delete_root_dir_contents(self):
            self.fs.delete_dir_contents("/", accept_root_dir=True)

        def delete_file(self, path):
            self.fs.delete_file(path)

        def move(self, src, dest):
            self.fs.move(src, dest)

        def copy_file(self, src, dest):
            with self.fs.open_input_stream(src) as f, self.open_output_stream(dest, None) as out:
                while chunk := f.read(1 << 22):
                    out.write(chunk)

        def open_input_stream(self, path):
            return self.fs.open_input_stream(path)

        def open_input_file(self, path):
            return self.fs.open_input_file(path)

        def open_output_stream(self, path, metadata):
            import pyarrow

            return pyarrow.PythonFile(_AtomicFile(path), mode="w")

        def open_append_stream(self, path, metadata):
            return self.fs.open_append_stream(path)

    return AtomicLocalHandler


def atomic_local_filesystem_handler():
    """The handler of ``atomic_local_filesystem`` (a module-level factory, so it pickles to Ray workers)."""
    return _atomic_handler_class()()


def atomic_local_filesystem():
    """A pyarrow filesystem over local paths whose every written file appears whole or not at all (Tune's
    ``storage_filesystem`` for a run stored in a folder: a full disk cannot leave its state half-written)."""
    import pyarrow.fs

    return pyarrow.fs.PyFileSystem(atomic_local_filesystem_handler())


def is_local_filesystem(fs: Any) -> bool:
    """A pyarrow filesystem of local paths: pyarrow's own, or ``atomic_local_filesystem``."""
    import pyarrow.fs

    return isinstance(fs, pyarrow.fs.LocalFileSystem) or (
        isinstance(fs, pyarrow.fs.PyFileSystem) and fs.type_name.endswith("raynas-atomic-local"))


def pull(path: str | os.PathLike) -> bool:
    """Make a staged file present locally, downloading it from its URI when it is missing; whether it is."""
    p = Path(path)
    if p.is_file():
        return True
    remote = remote_for(p)
    if remote is None or not remote.is_file():
        return False
    p.parent.mkdir(parents=True, exist_ok=True)
    data = remote.read_bytes()
    write_atomic(p, lambda f: f.write(data))
    return True


def read_text(spec: str | os.PathLike) -> str:
    """A text file at a path or URI (a staged path is fetched when missing)."""
    if is_uri(spec):
        return Location.parse(spec).read_text()
    pull(spec)
    return Path(spec).read_text(encoding="utf-8")


# ---------------------------------------------------------------------- Ray jobs
WORKING_DIR_COPY = ("runtime_resources", "working_dir_files")


def in_ray_job() -> bool:
    """Whether this process is the entrypoint of a job started with ``ray job submit`` (or the job SDK)."""
    return "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ or ray_working_dir_copy(os.getcwd()) is not None


def ray_working_dir_copy(path: str | os.PathLike) -> Path | None:
    """The Ray working-dir copy (``…/runtime_resources/working_dir_files/_ray_pkg_…``) holding ``path``."""
    parts = Path(os.path.abspath(path)).parts
    for i in range(len(parts) - 2):
        if parts[i:i + 2] == WORKING_DIR_COPY:
            return Path(*parts[:i + 3])
    return None


def check_storage(spec: str, *, source: str = "--storage") -> str:
    """``spec`` as an absolute path or a URI; refused where a run would be written into Ray's temporary
    working-dir copy (a relative path inside a ``ray job submit`` job, or any path inside the copy)."""
    if is_uri(spec):
        return spec
    expanded = os.path.expanduser(spec)
    absolute = os.path.abspath(expanded)
    copy = ray_working_dir_copy(absolute)
    if copy is not None or (in_ray_job() and not os.path.isabs(expanded)):
        raise RunDirError(
            f"{source} {spec!r} would put the run inside Ray's temporary copy of the job's working directory "
            f"({copy or os.getcwd()}), where nobody finds it and which is deleted with the cluster. A job "
            "started with `ray job submit` needs an absolute storage location: pass --storage with a folder "
            "every node shares (e.g. /mnt/efs/raynas) or an object-store URI (e.g. s3://bucket/raynas), or set "
            "RAYNAS_STORAGE on the cluster's nodes")
    return absolute
