"""IS / FID / KID for GAN samples through torch-fidelity.

Entry points: :func:`compute_metrics` (any fake source vs a real source), :func:`evaluate_generator`
(a generator module), :func:`extract_features` and :func:`frechet_distance` (for checks and custom
analyses). Sources come from :func:`parse_source` ("dataset:cifar10:test", "folder:/path",
"checkpoint:/path.pt") or the Source classes. Protocols (``search``, ``paper``, ``quick``) fix sample
counts and splits; real statistics are cached per dataset/extractor/weights hash.
"""

from raynas.metrics.cache import CacheEntry, cache_entry, default_cache_dir
from raynas.metrics.compute import (
    MetricsResult,
    compute_metrics,
    evaluate_generator,
    extract_features,
    frechet_distance,
)
from raynas.metrics.extractors import (
    EXTRACTORS,
    FMNIST_CNN,
    FMNIST_CNN_WEIGHTS,
    INCEPTION,
    FeatureExtractorFMNISTCNN,
    FMNISTNet,
    ResolvedExtractor,
    build_inception_skeleton,
    file_sha256,
    fmnist_preprocess,
    resolve_extractor,
    resolve_inception_weights,
)
from raynas.metrics.protocols import PROTOCOLS, Protocol, get_protocol
from raynas.metrics.sources import (
    DatasetSource,
    FiniteSource,
    FolderSource,
    GeneratorSource,
    Source,
    TensorSource,
    parse_source,
    to_uint8,
)

__all__ = [
    "EXTRACTORS", "FMNIST_CNN", "FMNIST_CNN_WEIGHTS", "INCEPTION", "PROTOCOLS",
    "CacheEntry", "DatasetSource", "FMNISTNet", "FeatureExtractorFMNISTCNN", "FiniteSource", "FolderSource",
    "GeneratorSource", "MetricsResult", "Protocol", "ResolvedExtractor", "Source", "TensorSource",
    "build_inception_skeleton", "cache_entry", "compute_metrics", "default_cache_dir", "evaluate_generator",
    "extract_features", "file_sha256", "fmnist_preprocess", "frechet_distance", "get_protocol",
    "parse_source", "resolve_extractor", "resolve_inception_weights", "to_uint8",
]
