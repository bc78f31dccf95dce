"""What each dataset is: native size, splits, defaults, where it lives on disk and how to get it."""

from __future__ import annotations

from dataclasses import dataclass

from raynas.errors import DatasetError


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about one dataset; the loaders and the error messages read them from here."""

    name: str
    title: str
    native_resolution: int
    native_channels: int
    splits: tuple[str, ...]
    default_resolution: int
    default_channels: int
    train_split: str = "train"      # the split GAN training uses (STL-10: unlabeled + train)
    test_split: str = "test"
    pad_to: int | None = None       # resolution reached by zero padding instead of resizing (28 -> 32)
    num_classes: int = 10
    classes: tuple[str, ...] = ()
    labelled_splits: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()   # folder names checked under every search location
    fix: str = ""                   # how a user gets the files, quoted in DatasetError messages
    url: str = ""                   # what torchvision downloads (checked for reachability first)

    def check_split(self, split: str) -> str:
        if split not in self.splits:
            raise DatasetError(f"dataset {self.name!r} has no split {split!r}; valid splits: "
                               f"{', '.join(self.splits)}")
        return split


_FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

DATASETS: dict[str, DatasetSpec] = {
    "embedded": DatasetSpec(
        name="embedded", title="Fashion-MNIST subset shipped with raynas",
        native_resolution=28, native_channels=1, splits=("train", "test"),
        default_resolution=32, default_channels=1, pad_to=32, classes=_FASHION_CLASSES,
        labelled_splits=("train", "test"),
        fix="reinstall raynas, or rebuild the file with "
            "'python scripts/build_embedded_dataset.py' (needs 'apt-get install dataset-fashion-mnist')",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist", title="Fashion-MNIST",
        native_resolution=28, native_channels=1, splits=("train", "test"),
        default_resolution=32, default_channels=1, pad_to=32, classes=_FASHION_CLASSES,
        labelled_splits=("train", "test"),
        aliases=("fashion-mnist", "fashion_mnist", "fashionmnist", "FashionMNIST"),
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        fix="run 'apt-get install dataset-fashion-mnist' (installs /usr/share/datasets/fashion-mnist), "
            "or put train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) "
            "and t10k-labels-idx1-ubyte(.gz) into ROOT/FashionMNIST/raw (torchvision layout) or directly "
            "into ROOT, then pass --data-root ROOT or set RAYNAS_DATA=ROOT",
    ),
    "cifar10": DatasetSpec(
        name="cifar10", title="CIFAR-10",
        native_resolution=32, native_channels=3, splits=("train", "test"),
        default_resolution=32, default_channels=3,
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        labelled_splits=("train", "test"),
        aliases=("cifar10", "cifar-10", "CIFAR10", "CIFAR-10", "cifar"),
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        fix="download the CIFAR-10 python version (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) "
            "and extract it so that ROOT/cifar-10-batches-py exists, then pass --data-root ROOT or set "
            "RAYNAS_DATA=ROOT",
    ),
    "stl10": DatasetSpec(
        name="stl10", title="STL-10",
        native_resolution=96, native_channels=3, splits=("train+unlabeled", "train", "test", "unlabeled"),
        default_resolution=48, default_channels=3, train_split="train+unlabeled",
        classes=("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"),
        labelled_splits=("train", "test"),
        aliases=("stl10", "stl-10", "STL10", "STL-10"),
        url="http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
        fix="download the STL-10 binary version (http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz) "
            "and extract it so that ROOT/stl10_binary exists, then pass --data-root ROOT or set "
            "RAYNAS_DATA=ROOT",
    ),
}

_ALIASES = {"cifar-10": "cifar10", "stl-10": "stl10", "fashion_mnist": "fashion-mnist",
            "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist"}


def get_spec(name: str) -> DatasetSpec:
    """Look a dataset up by name (case and '-'/'_' spelling forgiven)."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[key]
