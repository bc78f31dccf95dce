"""raynas.data: dataset resolution, decoding, padding/resizing, errors, batch sources."""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from raynas.data import (
    DATASETS,
    BatchSource,
    DeviceBatchSource,
    ImageDataset,
    LoaderBatchSource,
    convert_chunk,
    get_spec,
    load_images,
    load_labels,
    locate,
    make_batch_source,
    resolve_root,
    sources,
)
from raynas.errors import ConfigError, DatasetError

DEBIAN_FM = Path("/usr/share/datasets/fashion-mnist")
needs_debian_fm = pytest.mark.skipif(not (DEBIAN_FM / "train-images-idx3-ubyte.gz").is_file(),
                                     reason="apt package dataset-fashion-mnist not installed")
EMBEDDED_NPZ = locate.EMBEDDED_DIR / locate.EMBEDDED_FILE


pytestmark = pytest.mark.usefixtures("hermetic_data")  # no network, no user data, a fresh cache


# ----------------------------------------------------------------------------- fake dataset writers
def write_cifar(root: Path, per_batch: int = 2, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A tiny cifar-10-batches-py in the real format: pickled dicts with a (N, 3072) uint8 'data'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    out: dict[str, list] = {"train": [[], []], "test": [[], []]}
    names = [(f"data_batch_{i}", "train") for i in range(1, 6)] + [("test_batch", "test")]
    for name, split in names:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        entry = {"batch_label": f"fake {name}", "labels": labels, "data": data,
                 "filenames": [f"img{i}.png" for i in range(per_batch)]}
        with (folder / name).open("wb") as f:
            pickle.dump(entry, f, protocol=2)
        out[split][0].append(data.reshape(-1, 3, 32, 32))
        out[split][1].append(np.array(labels))
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": list(DATASETS["cifar10"].classes), "num_vis": 3072}, f, protocol=2)
    return {s: (np.concatenate(x), np.concatenate(y)) for s, (x, y) in out.items()}


def write_stl(root: Path, counts: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny stl10_binary: column-major 3x96x96 planes, labels 1..10 as uint8."""
    rng = np.random.default_rng(seed)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    images = {}
    for split, n in counts.items():
        x = rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)   # (N, C, H, W)
        x.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")        # stored with W and H swapped
        if split != "unlabeled":
            (rng.integers(1, 11, size=n).astype(np.uint8)).tofile(folder / f"{split}_y.bin")
        images[split] = x
    (folder / "class_names.txt").write_text("\n".join(DATASETS["stl10"].classes) + "\n")
    return images


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_fashion(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = False) -> np.ndarray:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", x_train, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(n_train) % 10, gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28)), gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.arange(n_test) % 10, gz)
    return x_train


# ----------------------------------------------------------------------------- embedded
def _npz() -> dict[str, np.ndarray]:
    with np.load(EMBEDDED_NPZ) as z:
        return {k: z[k] for k in z.files}


def test_embedded_file_is_small_balanced_and_labelled():
    assert EMBEDDED_NPZ.stat().st_size < 8 * 2**20
    z = _npz()
    assert z["x_train"].shape == (10000, 28, 28) and z["x_train"].dtype == np.uint8
    assert z["x_test"].shape == (2000, 28, 28)
    assert np.bincount(z["y_train"], minlength=10).tolist() == [1000] * 10
    assert np.bincount(z["y_test"], minlength=10).tolist() == [200] * 10
    assert len(set(z["index_train"].tolist())) == 10000       # no image twice
    assert (locate.EMBEDDED_DIR / "README.md").read_text().count("MIT") >= 1


@pytest.mark.parametrize(("resolution", "channels"),
                         [(None, None), (28, 1), (32, 3), (48, 1), (48, 3), (16, 1)])
def test_embedded_shapes(resolution, channels):
    x = load_images("embedded", "test", resolution=resolution, channels=channels)
    r, c = resolution or 32, channels or 1
    assert x.shape == (2000, c, r, r) and x.dtype == torch.uint8
    assert x.is_contiguous()
    assert 0 < x.float().mean() < 255 and x.max() > 200          # real images, not blank
    if c == 3:
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])


def test_embedded_padding_and_native():
    raw = torch.from_numpy(_npz()["x_train"])
    native = load_images("embedded", resolution=28)
    assert torch.equal(native[:, 0], raw)
    padded = load_images("embedded")                             # default: 32 by zero padding
    assert padded.shape == (10000, 1, 32, 32)
    assert torch.equal(padded[:, 0, 2:30, 2:30], raw)
    border = padded.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.sum() == 0


def test_embedded_resize_matches_reference():
    raw = torch.from_numpy(_npz()["x_test"][:5]).float()[:, None]
    ref = F.interpolate(raw, size=(48, 48), mode="bilinear", align_corners=False).round().clamp(0, 255)
    got = load_images("embedded", "test", resolution=48, limit=5)
    assert torch.equal(got, ref.to(torch.uint8))
    small = load_images("embedded", "test", resolution=14, limit=5)  # shrinking is antialiased
    ref = F.interpolate(raw, size=(14, 14), mode="bilinear", antialias=True, align_corners=False)
    assert torch.equal(small, ref.round().clamp(0, 255).to(torch.uint8))
    flat = torch.full((1, 1, 28, 28), 77.0)                          # a constant stays that constant
    expect = torch.full((1, 3, 13, 13), 77, dtype=torch.uint8)
    assert torch.equal(convert_chunk(flat.to(torch.uint8), 13, 3), expect)


def test_embedded_labels_limit_and_cache():
    y = load_labels("embedded", "train", limit=100)
    assert y.dtype == torch.int64 and y.shape == (100,)
    assert torch.equal(y, torch.from_numpy(_npz()["y_train"][:100].astype(np.int64)))
    a = load_images("embedded", limit=100)
    assert a.shape[0] == 100
    assert load_images("embedded", limit=100) is a                # cached: same tensor, no work
    assert load_images("embedded", "test", limit=10**9).shape[0] == 2000  # limit beyond N keeps all


@needs_debian_fm
def test_embedded_images_are_the_upstream_ones_and_script_reproduces_them(tmp_path):
    z = _npz()
    upstream = load_images("fashion-mnist", "test", resolution=28)[:, 0]
    assert torch.equal(upstream[torch.from_numpy(z["index_test"]).long()], torch.from_numpy(z["x_test"]))
    out = tmp_path / "subset.npz"
    script = Path(__file__).resolve().parents[2] / "scripts" / "build_embedded_dataset.py"
    subprocess.run([sys.executable, str(script), "--source", str(DEBIAN_FM), "--out", str(out)],
                   check=True, capture_output=True)
    with np.load(out) as rebuilt:
        for k in z:
            assert np.array_equal(rebuilt[k], z[k]), k


# ----------------------------------------------------------------------------- fashion-mnist
@needs_debian_fm
def test_fashion_mnist_from_debian_package():
    assert resolve_root("fashion-mnist") == DEBIAN_FM
    x = load_images("fashion-mnist", "test")
    assert x.shape == (10000, 1, 32, 32) and x.dtype == torch.uint8
    assert x[:, :, :2].sum() == 0 and x[:, :, :, -2:].sum() == 0
    y = load_labels("fashion-mnist", "train")
    assert y.shape == (60000,) and torch.bincount(y).tolist() == [6000] * 10


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_torchvision_layout(tmp_path, gz):
    x_train = write_fashion(tmp_path / "FashionMNIST" / "raw", gz=gz)
    assert resolve_root("fashion-mnist", tmp_path) == tmp_path / "FashionMNIST" / "raw"
    x = load_images("fashion-mnist", root=tmp_path, resolution=28, channels=3)
    assert x.shape == (6, 3, 28, 28)
    assert torch.equal(x[:, 1], torch.from_numpy(x_train))
    assert load_labels("fashion-mnist", "test", root=tmp_path).tolist() == [0, 1, 2, 3]


def test_fashion_mnist_corrupt_file_is_named(tmp_path):
    folder = tmp_path / "fm"
    write_fashion(folder, gz=True)
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:200])                       # truncated gzip stream
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        load_images("fashion-mnist", root=folder)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x09\x03 not idx"))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz.*corrupt"):
        load_images("fashion-mnist", "test", root=folder)


# ----------------------------------------------------------------------------- CIFAR-10
def test_cifar10_fake_folder_matches_torchvision(tmp_path, monkeypatch):
    truth = write_cifar(tmp_path)
    x = load_images("cifar10", root=tmp_path)
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.uint8
    assert torch.equal(x, torch.from_numpy(truth["train"][0]))
    assert load_labels("cifar10", "test", root=tmp_path).tolist() == truth["test"][1].tolist()

    # The same files through torchvision's own reader (its MD5 check cannot pass for fakes).
    from torchvision.datasets import CIFAR10, cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    tv = CIFAR10(str(tmp_path), train=True, download=False)
    assert torch.equal(x, torch.from_numpy(tv.data).permute(0, 3, 1, 2))
    assert load_labels("cifar10", root=tmp_path).tolist() == list(tv.targets)


def test_cifar10_gray_and_resize(tmp_path):
    truth = write_cifar(tmp_path, per_batch=1)
    rgb = torch.from_numpy(truth["test"][0]).double()
    gray = load_images("cifar10", "test", root=tmp_path, channels=1)
    lum = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).round()
    assert (gray[:, 0].double() - lum).abs().max() <= 1           # float32 vs float64 rounding
    up = load_images("cifar10", "train", root=tmp_path, resolution=64, limit=3)
    assert up.shape == (3, 3, 64, 64)
    assert load_images("cifar10", root=tmp_path, limit=3).shape[0] == 3


def test_cifar10_corrupt_and_malicious_batches(tmp_path):
    write_cifar(tmp_path, per_batch=1)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(b"garbage, not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_images("cifar10", root=tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    batch.write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    with pytest.raises(DatasetError, match="refusing to load"):
        load_images("cifar10", root=tmp_path)


# ----------------------------------------------------------------------------- STL-10
def test_stl10_fake_binaries(tmp_path, monkeypatch):
    truth = write_stl(tmp_path, {"train": 3, "test": 2, "unlabeled": 4})
    native = load_images("stl10", "train", root=tmp_path, resolution=96)
    assert torch.equal(native, torch.from_numpy(truth["train"]))

    from torchvision.datasets import STL10, stl10

    monkeypatch.setattr(stl10, "check_integrity", lambda *a, **k: True)
    tv = STL10(str(tmp_path), split="train", download=False)
    assert torch.equal(native, torch.from_numpy(tv.data))
    assert load_labels("stl10", "train", root=tmp_path).tolist() == tv.labels.tolist()

    both = load_images("stl10", "train+unlabeled", root=tmp_path)   # default 48 px: the GAN training set
    assert both.shape == (7, 3, 48, 48)
    ref = F.interpolate(torch.from_numpy(np.concatenate([truth["train"], truth["unlabeled"]])).float(),
                        size=(48, 48), mode="bilinear", antialias=True, align_corners=False)
    assert torch.equal(both, ref.round().clamp(0, 255).to(torch.uint8))
    five = load_images("stl10", "train+unlabeled", root=tmp_path, resolution=96, limit=5)
    assert torch.equal(five[3:], torch.from_numpy(truth["unlabeled"][:2]))
    with pytest.raises(DatasetError, match="no labels"):
        load_labels("stl10", "unlabeled", root=tmp_path)


def test_stl10_wrong_size_file_is_named(tmp_path):
    write_stl(tmp_path, {"train": 1, "test": 1})
    (tmp_path / "stl10_binary" / "test_X.bin").write_bytes(b"\x00" * 1000)
    with pytest.raises(DatasetError, match="test_X.bin"):
        load_images("stl10", "test", root=tmp_path)
    # the split that is present loads; the absent unlabeled split is reported with its file name
    assert load_images("stl10", "train", root=tmp_path).shape == (1, 3, 48, 48)
    with pytest.raises(DatasetError, match="unlabeled_X.bin"):
        load_images("stl10", "train+unlabeled", root=tmp_path)


# ----------------------------------------------------------------------------- resolution order
def test_explicit_root_beats_env_and_env_is_used_without_root(tmp_path, monkeypatch):
    a = write_cifar(tmp_path / "a", per_batch=1, seed=1)
    b = write_cifar(tmp_path / "b", per_batch=1, seed=2)
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path / "a"))
    assert torch.equal(load_images("cifar10", root=tmp_path / "b"), torch.from_numpy(b["train"][0]))
    assert torch.equal(load_images("cifar10"), torch.from_numpy(a["train"][0]))
    assert resolve_root("cifar10") == tmp_path / "a" / "cifar-10-batches-py"
    # the inner folder itself is accepted as a root, and a collection folder with an alias subfolder too
    inner = tmp_path / "b" / "cifar-10-batches-py"
    assert resolve_root("cifar10", inner) == inner
    write_cifar(tmp_path / "coll" / "cifar-10", per_batch=1)
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path / "coll"))
    assert resolve_root("cifar10") == tmp_path / "coll" / "cifar-10" / "cifar-10-batches-py"


def test_explicit_root_without_dataset_does_not_fall_through(tmp_path, monkeypatch):
    write_cifar(tmp_path / "good", per_batch=1)
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path / "good"))
    with pytest.raises(DatasetError, match="does not exist") as e:
        load_images("cifar10", root=tmp_path / "typo")
    assert "cifar-10-batches-py" in str(e.value) and "--data-root" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not found under the given data root"):
        resolve_root("cifar10", tmp_path / "empty")


def test_missing_dataset_message_lists_places_and_fix(tmp_path, monkeypatch):
    assert locate.SYSTEM_DIRS == ("/usr/share/datasets", "~/.cache/raynas/data", "~/data", "/data",
                                  "/datasets")
    monkeypatch.setattr(locate, "SYSTEM_DIRS",
                        (str(tmp_path / "sys"), "~/.cache/raynas/data", str(tmp_path / "data")))
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path / "mine"))
    with pytest.raises(DatasetError, match=re.escape("dataset 'cifar10' (CIFAR-10, split 'train') not found. Looked "
                                                     "in")) as e:
        load_images("cifar10")
    msg = str(e.value)
    for place in (tmp_path / "mine", tmp_path / "sys", tmp_path / "data", locate.cache_dir()):
        assert f"{place}: does not exist" in msg, place
    assert "download: skipped because RAYNAS_OFFLINE is set" in msg
    assert "ROOT/cifar-10-batches-py" in msg and "RAYNAS_DATA=ROOT" in msg
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        resolve_root("fashion-mnist")
    with pytest.raises(DatasetError, match="stl10_binary"):
        resolve_root("stl10", split="test")


def test_partial_copy_is_reported(tmp_path):
    write_stl(tmp_path, {"test": 1})
    with pytest.raises(DatasetError, match="lacks train_X.bin"):
        resolve_root("stl10", tmp_path, split="train")
    assert resolve_root("stl10", tmp_path) == tmp_path / "stl10_binary"


def test_download_step(tmp_path, monkeypatch):
    monkeypatch.setattr(locate, "SYSTEM_DIRS", ())
    monkeypatch.delenv("RAYNAS_OFFLINE")
    monkeypatch.setattr(locate, "reachable", lambda url, timeout=2.0: False)
    with pytest.raises(DatasetError, match="www.cs.toronto.edu is unreachable"):
        resolve_root("cifar10")

    monkeypatch.setattr(locate, "reachable", lambda url, timeout=2.0: True)
    calls = []

    def fake_download(spec, root):
        calls.append((spec.name, root))
        write_cifar(root, per_batch=1)

    monkeypatch.setattr(locate, "_torchvision_download", fake_download)
    got = resolve_root("cifar10")
    assert calls == [("cifar10", locate.cache_dir())]
    assert got == tmp_path / "home" / ".cache" / "raynas" / "data" / "cifar-10-batches-py"

    def broken(spec, root):
        raise RuntimeError("HTTP Error 503")

    monkeypatch.setattr(locate, "_torchvision_download", broken)
    with pytest.raises(DatasetError, match="503"):
        resolve_root("stl10")


def test_unknown_name_and_split():
    with pytest.raises(DatasetError, match="cifar10, stl10"):
        load_images("imagenet")
    with pytest.raises(DatasetError, match="train\\+unlabeled, train, test, unlabeled"):
        load_images("stl10", "validation")
    with pytest.raises(DatasetError, match="resolution"):
        load_images("embedded", resolution=0)
    with pytest.raises(DatasetError, match="channels"):
        load_images("embedded", channels=2)
    assert get_spec("CIFAR-10").name == "cifar10" and get_spec("fashion_mnist").name == "fashion-mnist"
    assert load_images("Embedded", limit=1).shape == (1, 1, 32, 32)
    assert set(DATASETS) == {"embedded", "fashion-mnist", "cifar10", "stl10"}
    assert DATASETS["stl10"].train_split == "train+unlabeled" and DATASETS["stl10"].default_resolution == 48


# ----------------------------------------------------------------------------- batch sources
def _distinct_images(n: int) -> torch.Tensor:
    """Image i is constant i * 20, so a float batch tells which images it holds."""
    return (torch.arange(n, dtype=torch.uint8) * 20).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()


def _ids(batch: torch.Tensor) -> list[int]:
    return ((batch[:, 0, 0, 0] + 1) * 127.5 / 20).round().long().tolist()


def test_device_batch_source():
    images = load_images("embedded", "test", limit=64)
    src = DeviceBatchSource(images, torch.device("cpu"), seed=3)
    assert isinstance(src, BatchSource) and len(src) == 64
    x = src.sample(16)
    assert x.shape == (16, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1        # padding border is exactly -1
    rows = images.float().div(127.5).sub(1).flatten(1)
    assert all((rows == r).all(1).any() for r in x.flatten(1))       # every row is a dataset image
    again = DeviceBatchSource(images, "cpu", seed=3)
    assert torch.equal(again.sample(16), x)
    assert not torch.equal(DeviceBatchSource(images, "cpu", seed=4).sample(16), x)
    cl = DeviceBatchSource(images, "cpu", channels_last=True).sample(4)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    ends = DeviceBatchSource(torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1), "cpu").sample(50)
    assert set(ends.flatten().tolist()) == {-1.0, 1.0}


def test_loader_batch_source_epochs_and_rechunking():
    images = _distinct_images(12)
    src = LoaderBatchSource(images, "cpu", batch_size=4, num_workers=0, seed=5)
    assert len(src) == 12
    a = src.sample()
    assert a.shape == (4, 3, 4, 4) and a.min() >= -1 and a.max() <= 1
    b, c = src.sample(5), src.sample(3)                             # n != batch_size re-chunks
    assert sorted(_ids(a) + _ids(b) + _ids(c)) == list(range(12))  # exactly one epoch, no repeats
    again = LoaderBatchSource(images, "cpu", batch_size=4, num_workers=0, seed=5)
    assert torch.equal(again.sample(), a)
    assert src.sample(30).shape[0] == 30                           # spans several epochs
    tiny = LoaderBatchSource(images[:3], "cpu", batch_size=8, num_workers=0)
    assert sorted(_ids(tiny.sample(6))) == [0, 0, 1, 1, 2, 2]


def test_make_batch_source_and_dataset(monkeypatch):
    images = _distinct_images(6)
    assert isinstance(make_batch_source(images, "cpu", batch_size=2), DeviceBatchSource)
    monkeypatch.setattr(sources, "DEVICE_LIMIT_BYTES", 10)
    auto = make_batch_source(images, "cpu", batch_size=2, num_workers=0)
    assert isinstance(auto, LoaderBatchSource) and auto.sample(2).shape == (2, 3, 4, 4)
    with pytest.raises(ConfigError, match="auto, device, dataloader"):
        make_batch_source(images, "cpu", mode="gpu", batch_size=2)
    with pytest.raises(ValueError, match="uint8"):
        DeviceBatchSource(images.float(), "cpu")
    gray = load_images("embedded", limit=5)
    ds = ImageDataset(gray, channels=3)
    assert len(ds) == 5 and ds[2].shape == (3, 32, 32) and ds[2].dtype == torch.uint8
    assert torch.equal(ds[2][1], gray[2, 0])
