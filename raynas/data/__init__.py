"""Datasets with offline-first resolution, the shipped Fashion-MNIST subset, and batch sources.

``load_images(name, split)`` gives a uint8 (N, C, H, W) tensor and ``load_labels`` its class indices;
``make_batch_source`` turns the images into random float batches in [-1, 1] on the training device.
ImageNet is an image folder (``folder_index``), read by ``raynas.classify.data`` through a DataLoader.
Data is found in this order: explicit root, $RAYNAS_DATA, system folders, a torchvision download
(unless RAYNAS_OFFLINE=1); otherwise a DatasetError says where it looked and how to fix it.
The "embedded" dataset needs nothing on disk; "folder" is your own images (``raynas.data.imagefolder``).
"""

from __future__ import annotations

from .folders import FolderIndex, folder_index
from .images import clear_cache, convert_chunk, dataset_classes, load_images, load_labels
from .locate import cache_dir, offline, resolve_root
from .sources import (
    BatchSource,
    DeviceBatchSource,
    ImageDataset,
    LoaderBatchSource,
    make_batch_source,
    to_float,
)
from .specs import ALL_DATASETS, CLASSIFY_DATASETS, DATASETS, DatasetSpec, get_spec

__all__ = [
    "ALL_DATASETS",
    "CLASSIFY_DATASETS",
    "DATASETS",
    "BatchSource",
    "DatasetSpec",
    "DeviceBatchSource",
    "FolderIndex",
    "ImageDataset",
    "LoaderBatchSource",
    "cache_dir",
    "clear_cache",
    "convert_chunk",
    "dataset_classes",
    "folder_index",
    "get_spec",
    "load_images",
    "load_labels",
    "make_batch_source",
    "offline",
    "resolve_root",
    "to_float",
]
