"""Task classify, data: labelled datasets on disk, the search split, augmentation, resumable sampling."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data import write_cifar, write_idx

from raynas.classify.augment import NO_FLIP, augment_batch, cutout, normalization, random_crop
from raynas.classify.data import ClassifyData, EpochSampler, round_robin_limit, split_indices, subset_indices
from raynas.data import CLASSIFY_DATASETS, get_spec, load_images, load_labels, locate, resolve_root
from raynas.errors import ConfigError, DatasetError

pytestmark = pytest.mark.usefixtures("hermetic_data")  # no network, no user data, a fresh cache


# ----------------------------------------------------------------------------- fake datasets on disk
def write_cifar100(root: Path, n_train: int = 6, n_test: int = 3, seed: int = 0) -> dict[str, tuple]:
    """cifar-100-python/{train,test,meta} as torchvision has them: 'fine_labels' and 'coarse_labels'."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(20, 100, size=n)]
        entry = {"filenames": [f"{split}{i}.png" for i in range(n)], "batch_label": f"fake {split}",
                 "fine_labels": fine, "coarse_labels": [v // 5 for v in fine], "data": data}
        with (folder / split).open("wb") as f:
            pickle.dump(entry, f, protocol=2)
        out[split] = (data.reshape(-1, 3, 32, 32), np.array(fine))
    with (folder / "meta").open("wb") as f:
        pickle.dump({"fine_label_names": list(get_spec("cifar100").classes)}, f, protocol=2)
    return out


def write_mnist(folder: Path, n_train: int = 5, n_test: int = 3, gz: bool = False) -> np.ndarray:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
    sfx = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", x, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", (np.arange(n_train) * 3) % 10, gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", np.arange(n_test) % 10, gz)
    return x


def write_imagenet(root: Path, classes=("n01", "n02", "n03"), n_train: int = 4, n_val: int = 2) -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 24, 3), dtype=np.uint8)).save(
                    root / split / c / f"{c}_{i}.png")
            (root / split / c / "notes.txt").write_text("not an image")


# ----------------------------------------------------------------------------- datasets
def test_cifar100_fake_files_load_with_fine_labels(tmp_path):
    truth = write_cifar100(tmp_path)
    assert get_spec("CIFAR-100").num_classes == 100 and len(get_spec("cifar100").classes) == 100
    assert resolve_root("cifar100", tmp_path) == tmp_path / "cifar-100-python"
    x = load_images("cifar100", root=tmp_path)
    assert torch.equal(x, torch.from_numpy(truth["train"][0]))
    assert load_labels("cifar100", "test", root=tmp_path).tolist() == truth["test"][1].tolist()
    d = ClassifyData("cifar100", root=tmp_path, train_portion=0.5)
    assert d.num_classes == 100 and d.sizes == {"train": 3, "val": 3, "test": 3}
    assert d.flip and d.in_channels == 3
    _, y = next(d.eval_batches("test", 8))
    assert y.tolist() == truth["test"][1].tolist()
    assert max(y.tolist()) >= 20                       # fine labels, not the 20 coarse ones


@pytest.mark.parametrize(("layout", "gz"), [("MNIST/raw", True), ("MNIST/raw", False), ("", True)])
def test_mnist_idx_files_in_torchvision_layout_or_root(tmp_path, layout, gz):
    folder = tmp_path / layout if layout else tmp_path
    x_raw = write_mnist(folder, gz=gz) if layout else write_mnist(tmp_path / "m", gz=gz)
    root = tmp_path if layout else tmp_path / "m"
    x = load_images("mnist", root=root)
    assert x.shape == (5, 1, 32, 32)                   # 28 px padded to 32, like Fashion-MNIST
    assert torch.equal(x[:, 0, 2:30, 2:30], torch.from_numpy(x_raw)) and x[:, :, :2].sum() == 0
    assert load_labels("mnist", root=root).tolist() == [0, 3, 6, 9, 2]
    d = ClassifyData("mnist", root=root, train_portion=1.0)
    assert not d.flip and d.sizes == {"train": 5, "test": 3}
    assert torch.equal(d._tensors["train"][0], x)


def test_mnist_never_takes_a_fashion_mnist_folder(tmp_path):
    write_mnist(tmp_path / "fashion-mnist")            # same idx file names as MNIST
    assert load_images("fashion-mnist", root=tmp_path / "fashion-mnist").shape == (5, 1, 32, 32)
    with pytest.raises(DatasetError, match="named like a Fashion-MNIST folder"):
        resolve_root("mnist", tmp_path / "fashion-mnist")


def test_imagenet_image_folder(tmp_path):
    write_imagenet(tmp_path / "imagenet")
    with pytest.raises(DatasetError, match="too large to load as one tensor"):
        load_images("imagenet", root=tmp_path)
    d = ClassifyData("imagenet", root=tmp_path, resolution=16, num_workers=0, train_portion=0.5)
    assert d.classes == ("n01", "n02", "n03") and d.num_classes == 3
    assert d.sizes == {"train": 6, "val": 6, "test": 6}
    # split within each class: the first half of each class's files train
    train_files = sorted(Path(p).name for p in d._folders["train"].paths)
    assert train_files == sorted(f"{c}_{i}.png" for c in ("n01", "n02", "n03") for i in (0, 1))
    assert d._folders["test"].targets == [0, 0, 1, 1, 2, 2]
    x, y = next(d.train_batches(4, cutout_length=4))
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    xt, yt = next(d.eval_batches("test", 6))
    assert xt.shape == (6, 3, 16, 16) and yt.tolist() == [0, 0, 1, 1, 2, 2]
    again = ClassifyData("imagenet", root=tmp_path, resolution=16, num_workers=0, train_portion=0.5)
    assert torch.equal(next(again.train_batches(4, cutout_length=4))[0], x)   # seeded per image
    assert torch.equal(next(again.eval_batches("test", 6))[0], xt)
    gray = ClassifyData("imagenet", root=tmp_path, resolution=8, channels=1, num_workers=0, limit=3,
                        train_portion=1.0)
    assert sorted(gray._folders["train"].targets) == [0, 1, 2]              # limit: round-robin over classes
    assert next(gray.eval_batches("test", 2))[0].shape == (2, 1, 8, 8)


@pytest.mark.parametrize("name", ["cifar100", "mnist", "imagenet"])
def test_missing_dataset_is_one_error_naming_every_place_tried(tmp_path, monkeypatch, name):
    monkeypatch.setattr(locate, "SYSTEM_DIRS", (str(tmp_path / "sys"), "~/.cache/raynas/data"))
    monkeypatch.setenv("RAYNAS_DATA", str(tmp_path / "mine"))
    (tmp_path / "sys").mkdir()
    with pytest.raises(DatasetError, match=rf"^dataset '{name}' \(.*, split 'train'\) not found\. Looked in") as e:
        ClassifyData(name)
    msg = str(e.value)
    assert f"{tmp_path / 'mine'}: does not exist" in msg
    assert f"{tmp_path / 'sys'}: no " in msg and f"{locate.cache_dir()}: does not exist" in msg
    assert "RAYNAS_DATA=ROOT" in msg and "Fix:" in msg
    expected = {"cifar100": "cifar-100-python", "mnist": "MNIST/raw", "imagenet": "ROOT/train/<class>"}[name]
    assert expected in msg
    assert ("has no automatic download" if name == "imagenet" else "skipped because RAYNAS_OFFLINE") in msg


def test_unknown_or_unlabelled_dataset():
    assert set(CLASSIFY_DATASETS) >= {"embedded", "fashion-mnist", "mnist", "cifar10", "cifar100", "imagenet"}
    with pytest.raises(DatasetError, match="cifar100, mnist, imagenet"):
        ClassifyData("svhn")
    with pytest.raises(ConfigError, match="channels"):
        ClassifyData("embedded", channels=2, limit=4)


# ----------------------------------------------------------------------------- split and subsets
def test_search_split_is_darts_first_portion_disjoint_and_test_untouched():
    d = ClassifyData("embedded", limit=100, test_limit=0, train_portion=0.5)
    x, y = load_images("embedded", limit=100), load_labels("embedded", limit=100)
    assert d.sizes == {"train": 50, "val": 50, "test": 2000}
    assert torch.equal(d._tensors["train"][0], x[:50]) and torch.equal(d._tensors["train"][1], y[:50])
    assert torch.equal(d._tensors["val"][0], x[50:]) and torch.equal(d._tensors["val"][1], y[50:])
    assert torch.equal(d._tensors["test"][0], load_images("embedded", "test"))
    assert torch.equal(d._tensors["test"][1], load_labels("embedded", "test"))
    rows = {tuple(r.tolist()) for r in d._tensors["train"][0].flatten(1)}
    assert not rows & {tuple(r.tolist()) for r in d._tensors["val"][0].flatten(1)}   # disjoint images
    d7 = ClassifyData("embedded", limit=100, test_limit=10, train_portion=0.7)
    assert d7.sizes == {"train": 70, "val": 30, "test": 10}
    assert torch.equal(d7._tensors["val"][0], x[70:])
    whole = ClassifyData("embedded", limit=100, test_limit=10, train_portion=1.0)
    assert not whole.has("val")
    with pytest.raises(ConfigError, match="no 'val' part"):
        next(whole.eval_batches("val", 10))
    with pytest.raises(ConfigError, match="train_portion"):
        ClassifyData("embedded", limit=10, train_portion=0.0)
    with pytest.raises(ConfigError, match="leaves no image"):
        ClassifyData("embedded", limit=1, train_portion=0.5)


def test_fraction_subset_is_seeded_sized_and_ordered():
    a = subset_indices(200, 0.25, seed=3)
    assert len(a) == 50 and torch.equal(a, subset_indices(200, 0.25, seed=3))
    assert not torch.equal(a, subset_indices(200, 0.25, seed=4))
    assert torch.equal(a, a.sort().values) and len(a.unique()) == 50 and int(a.max()) < 200
    assert torch.equal(subset_indices(7, 1.0, 0), torch.arange(7))
    assert len(subset_indices(10, 0.01, 0)) == 1
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match="fraction"):
            subset_indices(10, bad, 0)
    d = ClassifyData("embedded", limit=200, test_limit=5, fraction=0.25, train_portion=0.5, seed=3)
    assert d.sizes == {"train": 25, "val": 25, "test": 5}
    x = load_images("embedded", limit=200)
    assert torch.equal(d._tensors["train"][0], x[a[:25]]) and torch.equal(d._tensors["val"][0], x[a[25:]])
    # the test split never shrinks with the fraction
    assert ClassifyData("embedded", limit=200, fraction=0.1).sizes["test"] == 2000


def test_grouped_split_and_round_robin_limit():
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    tr, va = split_indices(torch.arange(10), 0.5, groups=groups)
    assert tr.tolist() == [0, 1, 4, 6, 7] and va.tolist() == [2, 3, 5, 8, 9]
    assert round_robin_limit(groups, 4).tolist() == [0, 1, 4, 6]
    assert round_robin_limit(groups, 0).tolist() == list(range(10))


# ----------------------------------------------------------------------------- augmentation
def _shift(img: np.ndarray, dy: int, dx: int, pad: int = 4) -> np.ndarray:
    """What RandomCrop(padding=pad) returns for crop offset (dy, dx), by hand."""
    h, w = img.shape[-2:]
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            si, sj = i + dy - pad, j + dx - pad
            if 0 <= si < h and 0 <= sj < w:
                out[..., i, j] = img[..., si, sj]
    return out


def test_random_crop_shifts_content_within_4_px():
    img = np.arange(1, 101, dtype=np.uint8).reshape(1, 1, 10, 10)          # every pixel distinct and nonzero
    x = torch.from_numpy(img).repeat(3, 1, 1, 1)
    offsets = torch.tensor([[4, 4], [0, 8], [7, 2]])
    got = random_crop(x, 4, offsets)
    assert torch.equal(got[0], x[0])                                        # centre offset: unchanged
    for k, (dy, dx) in enumerate(offsets.tolist()):
        assert np.array_equal(got[k].numpy(), _shift(img[0], dy, dx)), (dy, dx)
    # random crops on a batch: each output is one of the 81 shifts of its input, and several differ
    gen = torch.Generator().manual_seed(0)
    mean, std = torch.zeros(1), torch.ones(1)
    out = augment_batch(x.repeat(10, 1, 1, 1), mean, std, gen, padding=4, flip=False)
    shifts = {(dy, dx): _shift(img[0], dy, dx).astype(np.float32) / 255 for dy in range(9) for dx in range(9)}
    found = set()
    for o in out.numpy():
        match = [s for s, ref in shifts.items() if np.allclose(o, ref)]
        assert match, "a crop that is no shift of at most 4 px"
        found.add(match[0])
    assert len(found) > 5


def test_flip_only_where_allowed():
    img = np.zeros((1, 1, 8, 8), dtype=np.uint8)
    img[..., 2, 1] = 200                                                   # asymmetric: a dot on the left
    x = torch.from_numpy(img).repeat(64, 1, 1, 1)
    mean, std = torch.zeros(1), torch.ones(1)
    out = augment_batch(x, mean, std, torch.Generator().manual_seed(1), padding=0, flip=True)
    mirrored = out[..., 2, 6] > 0
    assert 10 < int(mirrored.sum()) < 54                                   # about half mirrored
    assert torch.allclose(out[mirrored.flatten()][..., 2, 6], torch.full((int(mirrored.sum()), 1), 200 / 255))
    off = augment_batch(x, mean, std, torch.Generator().manual_seed(1), padding=0, flip=False)
    assert torch.allclose(off, x.float() / 255)                             # no image mirrored
    assert {"mnist", "fashion-mnist", "embedded"} == set(NO_FLIP)
    assert not ClassifyData("embedded", limit=4, test_limit=2).flip
    assert ClassifyData("embedded", limit=4, test_limit=2, flip=True).flip


def test_cutout_zeroes_a_16_square_fewer_at_borders():
    x = torch.ones(3, 2, 32, 32)
    got = cutout(x, 16, torch.tensor([[16, 16], [0, 0], [31, 10]]))
    zeros = (got == 0).all(1)                                             # all channels together
    assert int(zeros[0].sum()) == 256 and bool(zeros[0, 8:24, 8:24].all())
    assert int(zeros[1].sum()) == 64 and bool(zeros[1, :8, :8].all())    # clipped at the corner
    assert int(zeros[2].sum()) == 9 * 16 and bool(zeros[2, 23:, 2:18].all())  # rows 23..31
    assert torch.equal(got[(got != 0)], x[(got != 0)])
    # random centres through the data object: one square of at most 16 x 16 per image
    d = ClassifyData("embedded", limit=32, test_limit=2, train_portion=1.0)
    xb, _ = next(d.train_batches(32, cutout_length=16))
    for img in (xb[:, 0] == 0):
        rows, cols = img.any(1).nonzero().flatten(), img.any(0).nonzero().flatten()
        if len(rows):
            assert len(rows) <= 16 and len(cols) <= 16
            assert bool(img[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all())


def test_normalisation_uses_the_documented_mean_and_std(tmp_path):
    truth = write_cifar(tmp_path, per_batch=2)
    d = ClassifyData("cifar10", root=tmp_path, train_portion=1.0)
    x, _ = next(d.eval_batches("test", 8))
    raw = torch.from_numpy(truth["test"][0]).double() / 255
    mean = torch.tensor([0.49139968, 0.48215827, 0.44653124], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.24703233, 0.24348505, 0.26158768], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(x.double(), (raw - mean) / std, atol=1e-5)
    assert normalization("embedded", 1) == ((0.2860,), (0.3530,))
    assert normalization("mnist", 1) == ((0.1307,), (0.3081,))
    assert normalization("mnist", 3) == ((0.1307,) * 3, (0.3081,) * 3)
    assert normalization("imagenet", 3) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert normalization("cifar100", 3) == ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
    e = ClassifyData("embedded", limit=4, test_limit=4)
    xe, _ = next(e.eval_batches("test", 4))
    assert torch.allclose(xe[:, :, 0, 0], torch.full((4, 1), -0.2860 / 0.3530))  # the zero border


def test_train_batch_shapes_labels_and_channels():
    d = ClassifyData("embedded", limit=40, test_limit=8, channels=3, train_portion=0.5)
    assert d.in_channels == 3 and d.resolution == 32
    x, y = next(d.train_batches(8, cutout_length=16))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (8,) and y.dtype == torch.int64
    assert torch.equal(x[:, 0], x[:, 1])                                    # gray repeated
    batches = list(d.train_batches(8, part="val"))
    assert [len(b[1]) for b in batches] == [8, 8, 4]
    assert [len(b[1]) for b in d.train_batches(8, part="val", drop_last=True)] == [8, 8]
    assert d.num_batches("train", 8) == 3 and d.num_batches("train", 8, drop_last=True) == 2
    with pytest.raises(ConfigError, match="only for the final report"):
        next(d.train_batches(8, part="test"))


# ----------------------------------------------------------------------------- sampling state
def test_a_pass_is_a_seeded_permutation():
    s = EpochSampler(10, seed=5)
    seen = torch.cat(s.pending(4))
    assert sorted(seen.tolist()) == list(range(10))
    assert torch.equal(seen, torch.cat(EpochSampler(10, seed=5).pending(4)))
    assert not torch.equal(seen, torch.cat(EpochSampler(10, seed=6).pending(4)))
    stream = EpochSampler(10, seed=5)
    assert torch.equal(torch.cat([stream.take(4), stream.take(4), stream.take(2)]), seen)
    assert stream.passes == 1 and len(stream.take(15)) == 15 and stream.passes == 3


def test_restored_sampler_state_gives_the_same_batches():
    def make():
        return ClassifyData("embedded", limit=48, test_limit=4, train_portion=0.5, flip=True, seed=2)

    a = make()
    it = a.train_batches(5, cutout_length=8)
    for _ in range(2):
        next(it)
    a.next_batch(7, part="val")
    state = pickle.loads(pickle.dumps(a.state_dict()))
    rest = list(it) + list(a.train_batches(5, cutout_length=8))          # rest of this pass + the next
    val = a.next_batch(7, part="val")
    b = make()
    b.load_state_dict(state)
    rest_b = list(b.train_batches(5, cutout_length=8)) + list(b.train_batches(5, cutout_length=8))
    assert len(rest) == len(rest_b) == 3 + 5
    for (x1, y1), (x2, y2) in zip(rest, rest_b):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert torch.equal(b.next_batch(7, part="val")[0], val[0])
    with pytest.raises(ConfigError, match="same dataset"):
        ClassifyData("embedded", limit=40, test_limit=4, train_portion=0.5).load_state_dict(state)
