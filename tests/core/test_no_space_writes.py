"""No space left is a user error (issue 25): one message naming the storage, exit 2, nothing written so far lost,
the run kept for --resume. The disk is made full in-process (a file object whose writes fail with ENOSPC after a
few bytes), so no test needs root or a small filesystem."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from conftest import run_cli

from raynas.errors import ConfigError, StorageFullError
from raynas.results import RunDir, storage

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullFile:
    """A real file whose writes fail with ENOSPC once ``room`` bytes are written."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.room:
            self.file.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.fixture
def full_disk(monkeypatch):
    """Every file raynas.results.storage opens for writing has room for 10 bytes."""
    real_open = open

    def tiny_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return _FullFile(f, 10) if "w" in mode else f

    monkeypatch.setattr(storage, "open", tiny_open, raising=False)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


def test_storage_full_recognises_no_space_and_nothing_else(tmp_path, monkeypatch):
    wrapped = RuntimeError("Error writing bytes")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))
    assert "no space left on the storage at" in str(storage.storage_full(wrapped, tmp_path))
    assert storage.storage_full(OSError("[Errno 28] Error writing bytes to file. Detail: [errno 28] No space left "
                                        "on device")) is not None  # pyarrow's copy, as Tune raises it
    assert storage.storage_full(PermissionError(errno.EACCES, "Permission denied")) is None
    torch_error = RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing "
                               "file data/0: file write failed")
    assert storage.storage_full(torch_error, tmp_path) is None  # space left: some other failure
    monkeypatch.setattr(storage, "_nearly_full", lambda where, slack=1 << 20: True)
    assert storage.storage_full(torch_error, tmp_path) is not None


def test_an_atomic_tune_write_on_a_full_disk_keeps_the_old_file(tmp_path, full_disk):
    fs = storage.atomic_local_filesystem()
    dest = tmp_path / "tune"
    dest.mkdir()
    (dest / "experiment_state.json").write_text('{"old": 1}')
    src = tmp_path / "staging"
    src.mkdir()
    (src / "experiment_state.json").write_text('{"new": 2, "padding": "' + "x" * 1000 + '"}')
    with pytest.raises(OSError) as info:
        pafs.copy_files(str(src), str(dest), source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    assert storage.storage_full(info.value) is not None
    assert (dest / "experiment_state.json").read_text() == '{"old": 1}' and _leftovers(dest) == []


def test_a_checkpoint_on_a_full_disk_is_a_storage_error_and_the_old_one_stays(tmp_path, monkeypatch):
    from raynas.checkpoints import load_checkpoint, save_checkpoint

    path = save_checkpoint(tmp_path / "state.pt", {"epoch": 1})
    real_open = open
    monkeypatch.setattr(storage, "open", lambda p, mode="r", *a, **k: _FullFile(real_open(p, mode, *a, **k), 10),
                        raising=False)
    with pytest.raises(StorageFullError, match=f"no space left on the storage at {tmp_path}"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1} and _leftovers(tmp_path) == []


def test_result_rows_on_a_full_disk_keep_the_earlier_parts(tmp_path, monkeypatch):
    run = RunDir.create(tmp_path, "r", config={}, seed=0, preset="p", device="cpu")
    run.append([{"candidate_id": "a", "epoch": 1}])
    real_open = open
    monkeypatch.setattr(storage, "open", lambda p, mode="r", *a, **k: _FullFile(real_open(p, mode, *a, **k), 10),
                        raising=False)
    with pytest.raises(StorageFullError, match="no space left"):
        run.append([{"candidate_id": "a", "epoch": 2}])
    monkeypatch.undo()
    assert run.read()["epoch"].tolist() == [1] and _leftovers(run.path) == []


def test_no_space_anywhere_in_a_command_is_one_message_and_exit_2(capsys, monkeypatch):
    import raynas.cli

    def full(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/mnt/small/run/plots/x.png")

    monkeypatch.setattr(raynas.cli, "cmd_presets", full)
    code, _, err = run_cli(capsys, "presets")
    assert code == 2 and "Traceback" not in err and err.count("raynas: error:") == 1
    assert "no space left on the storage at /mnt/small/run/plots/x.png" in err and "--resume" in err


@pytest.mark.parametrize("error, kept", [(StorageFullError("no space left on the storage"), True),
                                         (ENOSPC, True), (ConfigError("a mistake"), False)])
def test_a_run_that_hit_a_full_disk_is_never_removed(tmp_path, error, kept):
    import argparse

    from raynas.cli import common
    from raynas.config import load_config

    cfg = load_config("quickstart", [f"run.output_dir={tmp_path}", "run.name=r"], method="train")
    args = argparse.Namespace(resume=None, address=None)
    with pytest.raises(type(error)), common.new_run_or_resume(args, "train", lambda: cfg):
        raise error  # before the run wrote anything
    common.CURRENT_RUN = None
    assert (tmp_path / "r" / "run.json").is_file() is kept
