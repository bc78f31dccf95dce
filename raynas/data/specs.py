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
    url: str = ""                   # what torchvision downloads (checked for reachability first); "" = none
    in_memory: bool = True          # False: an image folder read through a DataLoader (ImageNet)

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

_CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

# Labelled datasets only the classifier task uses. They are kept out of DATASETS, which stays the set of
# image datasets GAN training accepts (data.name); get_spec and the loaders know both.
CLASSIFY_ONLY_DATASETS: dict[str, DatasetSpec] = {
    "cifar100": DatasetSpec(
        name="cifar100", title="CIFAR-100",
        native_resolution=32, native_channels=3, splits=("train", "test"),
        default_resolution=32, default_channels=3, num_classes=100, classes=_CIFAR100_CLASSES,
        labelled_splits=("train", "test"),
        aliases=("cifar100", "cifar-100", "CIFAR100", "CIFAR-100"),
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        fix="download the CIFAR-100 python version (https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz) "
            "and extract it so that ROOT/cifar-100-python/train and ROOT/cifar-100-python/test exist, then pass "
            "--data-root ROOT or set RAYNAS_DATA=ROOT",
    ),
    "mnist": DatasetSpec(
        name="mnist", title="MNIST",
        native_resolution=28, native_channels=1, splits=("train", "test"),
        default_resolution=32, default_channels=1, pad_to=32, classes=tuple(str(d) for d in range(10)),
        labelled_splits=("train", "test"),
        aliases=("mnist", "MNIST"),
        url="https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        fix="put train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and "
            "t10k-labels-idx1-ubyte(.gz) into ROOT/MNIST/raw (torchvision layout) or directly into ROOT (there "
            "is no Debian package for MNIST), then pass --data-root ROOT or set RAYNAS_DATA=ROOT",
    ),
    "imagenet": DatasetSpec(
        name="imagenet", title="ImageNet (ILSVRC 2012) image folder",
        native_resolution=0, native_channels=3, splits=("train", "val"),
        default_resolution=224, default_channels=3, test_split="val", num_classes=1000,
        labelled_splits=("train", "val"),
        aliases=("imagenet", "ImageNet", "imagenet1k", "ILSVRC2012", "ilsvrc2012"),
        in_memory=False,
        fix="download ILSVRC 2012 from https://image-net.org (registration required; there is no automatic "
            "download) and arrange it as ROOT/train/<class>/*.JPEG and ROOT/val/<class>/*.JPEG (the "
            "torchvision ImageFolder layout, one folder per class, the same class folders in both), then pass "
            "--data-root ROOT or set RAYNAS_DATA=ROOT",
    ),
}

# Your own images (raynas.data.imagefolder): what and how many classes there are is read from the folder.
FOLDER_DATASETS: dict[str, DatasetSpec] = {
    "folder": DatasetSpec(
        name="folder", title="your image folder",
        native_resolution=0, native_channels=3, splits=("train", "test"),
        default_resolution=32, default_channels=3, num_classes=0,
        labelled_splits=("train", "test"),
        fix="pass the folder as --set data.root=DIR (or --data-root DIR): every png/jpg/jpeg/webp image under DIR "
            "trains a GAN; a classifier reads DIR/train/<class>/... and DIR/test/<class>/...",
    ),
}

ALL_DATASETS: dict[str, DatasetSpec] = {**DATASETS, **CLASSIFY_ONLY_DATASETS, **FOLDER_DATASETS}

# Datasets with labelled train and test splits, i.e. what task "classify" accepts.
CLASSIFY_DATASETS: tuple[str, ...] = tuple(
    n for n, s in ALL_DATASETS.items() if "train" in s.labelled_splits and s.test_split in s.labelled_splits)

_ALIASES = {"cifar-10": "cifar10", "stl-10": "stl10", "fashion_mnist": "fashion-mnist",
            "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist", "cifar-100": "cifar100",
            "imagenet1k": "imagenet", "ilsvrc2012": "imagenet"}


def get_spec(name: str) -> DatasetSpec:
    """Look a dataset up by name (case and '-'/'_' spelling forgiven)."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ALL_DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(ALL_DATASETS)}")
    return ALL_DATASETS[key]
