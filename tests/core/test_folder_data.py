"""data.name=folder: your own images, found recursively, resized and centre-cropped, 1 or 3 channels; the
classifier layout DIR/train/<class>, DIR/test/<class>; one clear DatasetError per problem; caches keyed by
the folder's content."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from raynas.classify.data import ClassifyData
from raynas.config import load_config
from raynas.data import clear_cache, dataset_classes, load_images, load_labels
from raynas.errors import ConfigError, DatasetError
from raynas.gan.trainer import GANTrainer
from raynas.metrics.sources import DatasetSource


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def write(path: Path, size: tuple[int, int] = (12, 8), color: tuple[int, int, int] = (200, 10, 10),
          mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(path)
    return path


def test_every_image_under_the_folder_recursively_resized_and_cropped(tmp_path):
    write(tmp_path / "a.png", (16, 8))
    write(tmp_path / "sub" / "deeper" / "b.jpg", (10, 30))
    write(tmp_path / "sub" / "c.webp", (8, 8), mode="L")
    write(tmp_path / "d.JPEG", (9, 9))
    (tmp_path / "notes.txt").write_text("not an image")
    x = load_images("folder", root=tmp_path, resolution=8, channels=3)
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 8, 8)
    assert torch.all(x[0, 0] >= 190) and torch.all(x[0, 2] <= 20)  # red, kept red by the resize
    gray = load_images("folder", root=tmp_path, resolution=4, channels=1)
    assert gray.shape == (4, 1, 4, 4)
    assert load_images("folder", root=tmp_path, resolution=8, channels=3, limit=2).shape[0] == 2


def test_shorter_side_resized_then_centre_cropped(tmp_path):
    # a 12 x 4 image: left third black, middle white, right third black -> at 4 px the centre square is white
    img = np.zeros((4, 12), dtype=np.uint8)
    img[:, 4:8] = 255
    Image.fromarray(img, mode="L").save(tmp_path / "wide.png")
    x = load_images("folder", root=tmp_path, resolution=4, channels=1)
    assert x.shape == (1, 1, 4, 4) and torch.all(x == 255)


def test_gan_split_reads_train_subfolder_when_there(tmp_path):
    write(tmp_path / "train" / "x" / "1.png")
    write(tmp_path / "test" / "x" / "2.png")
    write(tmp_path / "test" / "x" / "3.png")
    assert load_images("folder", "train", root=tmp_path, resolution=8).shape[0] == 1
    assert load_images("folder", "test", root=tmp_path, resolution=8).shape[0] == 2


def classifier_folder(root: Path) -> Path:
    for split, n in (("train", 3), ("test", 2)):
        for c, color in (("cat", (250, 0, 0)), ("dog", (0, 0, 250))):
            for i in range(n):
                write(root / split / c / f"{i}.png", (10, 10), color)
    return root


def test_classifier_classes_labels_and_data(tmp_path):
    root = classifier_folder(tmp_path)
    assert load_labels("folder", "train", root=root).tolist() == [0, 0, 0, 1, 1, 1]
    assert load_labels("folder", "test", root=root).tolist() == [0, 0, 1, 1]
    assert dataset_classes("folder", root) == 2
    data = ClassifyData("folder", root=root, resolution=8, channels=3, train_portion=0.5)
    assert data.num_classes == 2 and data.classes == ("cat", "dog")
    assert data.sizes["test"] == 4 and data.sizes["train"] + data.sizes["val"] == 6


@pytest.mark.parametrize("setup, fragment", [
    (lambda r: None, "does not exist"),
    (lambda r: r.mkdir(), "holds no images"),
    (lambda r: (r.mkdir(), (r / "x.png").write_bytes(b"not a png")), "cannot read image"),
])
def test_gan_folder_errors_name_the_folder(tmp_path, setup, fragment):
    root = tmp_path / "imgs"
    setup(root)
    with pytest.raises(DatasetError, match=fragment) as info:
        load_images("folder", root=root, resolution=8)
    assert str(root) in str(info.value)
    if fragment == "cannot read image":
        assert "x.png" in str(info.value)


def test_folder_without_root_says_how():
    with pytest.raises(DatasetError, match="data.root=DIR"):
        load_images("folder", resolution=8)


def test_classifier_folder_errors(tmp_path):
    one = tmp_path / "one"
    write(one / "train" / "cat" / "a.png")
    write(one / "test" / "cat" / "b.png")
    with pytest.raises(DatasetError, match=r"only the class 'cat'") as info:
        load_labels("folder", "train", root=one)
    assert str(one / "train") in str(info.value)
    missing = classifier_folder(tmp_path / "missing")
    for f in (missing / "test" / "dog").iterdir():
        f.unlink()
    (missing / "test" / "dog").rmdir()
    with pytest.raises(DatasetError, match="lacks the class folder.* dog"):
        load_labels("folder", "test", root=missing)
    extra = classifier_folder(tmp_path / "extra")
    write(extra / "test" / "bird" / "z.png")
    with pytest.raises(DatasetError, match="bird"):
        load_labels("folder", "test", root=extra)
    empty = classifier_folder(tmp_path / "empty")
    for f in (empty / "train" / "dog").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=f"{empty / 'train' / 'dog'}.*holds no images"):
        dataset_classes("folder", empty)
    notest = tmp_path / "notest"
    write(notest / "train" / "cat" / "a.png")
    write(notest / "train" / "dog" / "a.png")
    with pytest.raises(DatasetError, match="no test/ folder"):
        dataset_classes("folder", notest)


def test_content_changes_change_the_cache_identity_and_the_images(tmp_path):
    write(tmp_path / "a.png", color=(255, 0, 0))
    write(tmp_path / "b.png", color=(0, 255, 0))
    source = DatasetSource("folder", "train", root=str(tmp_path), resolution=8, channels=3)
    first = source.cache_identity()
    assert first == source.cache_identity()
    x1 = load_images("folder", root=tmp_path, resolution=8)
    write(tmp_path / "b.png", (14, 14), color=(0, 0, 255))   # same name, other content and size
    st = (tmp_path / "b.png").stat()
    os.utime(tmp_path / "b.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    second = source.cache_identity()
    assert second != first
    x2 = load_images("folder", root=tmp_path, resolution=8)
    assert not torch.equal(x1, x2) and torch.all(x2[1, 2] >= 250)
    write(tmp_path / "more" / "c.png")
    assert source.cache_identity() not in (first, second)


def test_config_accepts_folder_for_both_tasks(tmp_path):
    classifier_folder(tmp_path)
    cfg = load_config("quickstart", ["data.name=folder", f"data.root={tmp_path}"], method="train")
    assert cfg.data.name == "folder"
    with pytest.raises(ConfigError):
        load_config("quickstart", ["data.name=folder", "data.split=val"], method="train")


def test_tiny_gan_trains_on_a_folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    cfg = load_config("quickstart", ["data.name=folder", f"data.root={tmp_path}", "data.resolution=16",
                                     "model.gf_dim=8", "model.df_dim=8", "model.latent_dim=8",
                                     "train.iters_per_epoch=2", "train.gen_batch_size=4", "train.dis_batch_size=4",
                                     "train.epochs=1", "train.augment=diffaugment"], method="train")
    t = GANTrainer(cfg, device=torch.device("cpu"))
    assert t.num_images == 6
    assert np.isfinite(t.train_epoch()["d_loss"])


def test_preflight_finds_an_empty_folder_before_training(tmp_path):
    from raynas.gan.preflight import preflight

    (tmp_path / "sub").mkdir()
    cfg = load_config("quickstart", ["data.name=folder", f"data.root={tmp_path}"], method="train")
    with pytest.raises(DatasetError, match=f"{tmp_path}.*holds no images"):
        preflight(cfg, check_model=False)


def test_classifier_network_has_one_output_per_class_folder(tmp_path):
    from raynas.build import build_classifier

    classifier_folder(tmp_path)
    write(tmp_path / "train" / "eel" / "0.png")
    write(tmp_path / "test" / "eel" / "0.png")
    cfg = load_config("quickstart-classify", ["data.name=folder", f"data.root={tmp_path}", "data.resolution=16",
                                              "model.layers=3", "model.channels=4", "model.auxiliary=false"],
                      method="train")
    net = build_classifier(cfg).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, cfg.data.channels, 16, 16))
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (1, 3)


def test_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    img = np.zeros((4, 4), dtype=np.uint8)
    img[:, 0] = 255                                   # stored: white left column
    im = Image.fromarray(img, mode="L")
    exif = im.getexif()
    exif[0x0112] = 6                                  # "rotate 90° clockwise to view"
    im.save(tmp_path / "photo.png", exif=exif)
    x = load_images("folder", root=tmp_path, resolution=4, channels=1)[0, 0]
    assert torch.all(x[0] == 255) and torch.all(x[1:] == 0)       # viewed: white top row
