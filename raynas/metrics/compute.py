"""IS / FID / KID through torch-fidelity, with our sources, extractors, protocols and real-stats cache.

torch-fidelity does the feature extraction and the metric arithmetic; this module decides what goes in:
which images (a fixed subset of finite sources, a fixed z sequence for generators), which weights file,
which device (never torch-fidelity's default ``cuda=True``), and under which cache name the real
features are stored.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch_fidelity
from torch_fidelity.utils import (
    create_feature_extractor,
    get_featuresdict_from_dataset,
    get_featuresdict_from_generative_model,
)

from raynas.device import resolve_device
from raynas.errors import MetricsError
from raynas.metrics.cache import CacheEntry, cache_entry
from raynas.metrics.extractors import INCEPTION, ResolvedExtractor, resolve_extractor
from raynas.metrics.protocols import Protocol, get_protocol
from raynas.metrics.sources import NOISE_SEED, FiniteSource, GeneratorSource, Source

_METRIC_NAMES = {"is": "is", "isc": "is", "inception_score": "is", "fid": "fid", "kid": "kid"}


@dataclass
class MetricsResult:
    """One evaluation. Metrics that were not requested are None."""

    is_mean: float | None
    is_std: float | None
    fid: float | None
    kid_mean: float | None
    kid_std: float | None
    extractor: str
    num_samples: int
    seconds: float

    def as_row(self) -> dict[str, Any]:
        """Flat dict for a results row (one key per field)."""
        return asdict(self)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Uses tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2) with symmetric eigendecompositions, which stays real
    and accurate for the singular covariances that small sample sets produce (scipy's sqrtm does not).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"frechet_distance: shapes do not match: mu1 {mu1.shape}, sigma1 {s1.shape}, "
                         f"mu2 {mu2.shape}, sigma2 {s2.shape}")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ s2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def _metric_set(metrics: Iterable[str]) -> set[str]:
    if isinstance(metrics, str):
        metrics = [metrics]
    out = set()
    for m in metrics:
        key = _METRIC_NAMES.get(str(m).strip().lower())
        if key is None:
            raise MetricsError(f"unknown metric {m!r}; valid metrics: is, fid, kid")
        out.add(key)
    if not out:
        raise MetricsError("no metrics requested; pass some of: is, fid, kid")
    return out


def _device(device: torch.device | str | None) -> torch.device:
    dev = resolve_device("auto" if device is None else str(device))
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _extraction_device(dev: torch.device) -> torch.device:
    """torch-fidelity runs the extractor on CUDA or on the CPU; other accelerators extract on the CPU."""
    return dev if dev.type == "cuda" else torch.device("cpu")


def _weights_arg(extractor: str, inception_weights: str | None, extractor_weights: str | None) -> str | None:
    return (inception_weights or extractor_weights) if extractor == INCEPTION else extractor_weights


@contextlib.contextmanager
def _on(dev: torch.device):  # noqa: ANN202
    """Make ``dev`` the current CUDA device, so torch-fidelity's bare ``.cuda()`` calls land on it."""
    if dev.type == "cuda":
        with torch.cuda.device(dev):
            yield
    else:
        yield


@contextlib.contextmanager
def _fidelity_errors():  # noqa: ANN202
    """torch-fidelity reports bad inputs as ValueError (its ``vassert``); surface them as MetricsError."""
    try:
        yield
    except MetricsError:
        raise
    except ValueError as e:
        raise MetricsError(f"torch-fidelity rejected the inputs: {e}") from e


def compute_metrics(
    fake: Source,
    real: Source | None,
    *,
    metrics: Iterable[str] = ("is", "fid", "kid"),
    protocol: str | Protocol = "search",
    num_samples: int | None = None,
    extractor: str = INCEPTION,
    inception_weights: str | None = None,
    extractor_weights: str | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 100,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> MetricsResult:
    """IS of ``fake`` and FID/KID of ``fake`` against ``real``, computed by torch-fidelity.

    ``num_samples`` (default: the protocol's) is the number of fake images; a finite source contributes
    min(num_samples, its size) images, the same fixed subset every time. Real features/statistics are
    cached under a key that includes the extractor's weights hash (see :mod:`raynas.metrics.cache`).
    ``inception_weights`` (or ``RAYNAS_INCEPTION_WEIGHTS``) is the Inception weights file;
    ``extractor_weights`` overrides the weights of the other extractors. ``device`` None means auto.
    """
    start = time.perf_counter()
    wanted = _metric_set(metrics)
    proto = get_protocol(protocol)
    n = int(num_samples) if num_samples else proto.num_samples
    if n < 2:
        raise MetricsError(f"num_samples must be at least 2; got {num_samples}")
    if batch_size < 1:
        raise MetricsError(f"batch_size must be positive; got {batch_size}")
    need_real = bool(wanted & {"fid", "kid"})
    if need_real and real is None:
        raise MetricsError("FID and KID need a real image source (e.g. dataset:cifar10:train)")
    for role, src in (("fake", fake), ("real", real)):
        if src is not None and not isinstance(src, Source):
            raise MetricsError(f"the {role} source must be a raynas.metrics Source (see parse_source); got "
                               f"{type(src).__name__}")
    ext = resolve_extractor(extractor, _weights_arg(extractor, inception_weights, extractor_weights))
    dev = _device(device)
    xdev = _extraction_device(dev)
    cuda = xdev.type == "cuda"

    kwargs: dict[str, Any] = dict(
        cuda=cuda, batch_size=int(batch_size), isc="is" in wanted, fid="fid" in wanted, kid="kid" in wanted,
        feature_extractor=ext.name, feature_extractor_weights_path=str(ext.weights_path),
        kid_subsets=proto.kid_subsets, samples_shuffle=True, rng_seed=NOISE_SEED, save_cpu_ram=True,
        verbose=bool(progress), cache=bool(use_cache),
    )
    entry: CacheEntry | None = None
    with contextlib.ExitStack() as stack:
        stack.enter_context(_on(xdev))
        if isinstance(fake, GeneratorSource):
            kwargs["input1"] = stack.enter_context(fake.on_device(dev, xdev))
            kwargs["input1_model_num_samples"] = n
            n_fake = n
        elif isinstance(fake, FiniteSource):
            kwargs["input1"] = fake.dataset(n)
            n_fake = len(kwargs["input1"])
        else:
            raise MetricsError(f"unsupported fake source {fake.describe()}")
        if n_fake < 2:
            raise MetricsError(f"{fake.describe()} yields {n_fake} image(s); at least 2 are needed")
        n_real = None
        if need_real:
            n_real, entry = _prepare_real(real, n, ext, kwargs, cache_dir, use_cache)
        kwargs["isc_splits"] = max(1, min(proto.isc_splits, n_fake))
        if "kid" in wanted:
            kwargs["kid_subset_size"] = max(2, min(proto.kid_subset_size, n_fake, n_real))
        with _fidelity_errors():
            out = torch_fidelity.calculate_metrics(**kwargs)
    if entry is not None:
        entry.record(n_real)

    def get(key: str) -> float | None:
        return float(out[key]) if key in out else None

    return MetricsResult(
        is_mean=get(torch_fidelity.KEY_METRIC_ISC_MEAN), is_std=get(torch_fidelity.KEY_METRIC_ISC_STD),
        fid=get(torch_fidelity.KEY_METRIC_FID),
        kid_mean=get(torch_fidelity.KEY_METRIC_KID_MEAN), kid_std=get(torch_fidelity.KEY_METRIC_KID_STD),
        extractor=ext.name, num_samples=n_fake, seconds=time.perf_counter() - start,
    )


def _prepare_real(real: Source, n: int, ext: ResolvedExtractor, kwargs: dict[str, Any],
                  cache_dir: str | os.PathLike | None, use_cache: bool) -> tuple[int, CacheEntry | None]:
    """Set input2 (and its cache name); return the number of real images and the cache entry."""
    if isinstance(real, GeneratorSource):
        raise MetricsError("the real source must be a dataset, folder or tensor, not a generator")
    if not isinstance(real, FiniteSource):
        raise MetricsError(f"unsupported real source {real.describe()}")
    ds = real.dataset(n)
    kwargs["input2"] = ds
    identity = real.cache_identity() if use_cache else None
    entry = None
    n_real = None
    if identity is not None:
        entry = cache_entry(identity, ext, n, cache_dir)
        entry.directory.mkdir(parents=True, exist_ok=True)
        kwargs["input2_cache_name"] = entry.name
        kwargs["cache_root"] = str(entry.directory)
        n_real = entry.num_images()  # a hit: no need to load the dataset just to count it
    if n_real is None:
        n_real = len(ds)
    if n_real < 2:
        raise MetricsError(f"{real.describe()} yields {n_real} image(s); at least 2 are needed")
    return n_real, entry


def evaluate_generator(G: torch.nn.Module, latent_dim: int, real: Source | None, *, precision: Any = None,
                       **kwargs: Any) -> MetricsResult:
    """:func:`compute_metrics` for a generator module (eval mode, no grad, optional Precision autocast)."""
    return compute_metrics(GeneratorSource(G, latent_dim, precision=precision), real, **kwargs)


def extract_features(
    source: Source,
    extractor: str = INCEPTION,
    *,
    num_samples: int | None = None,
    protocol: str | Protocol = "search",
    layer: str = "fid",
    inception_weights: str | None = None,
    extractor_weights: str | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 100,
    progress: bool = False,
) -> np.ndarray:
    """Features of the images :func:`compute_metrics` would use, from the layer it uses for ``layer``
    (a metric name: fid, kid, is; or a raw torch-fidelity feature name). Shape (N, D), float32."""
    proto = get_protocol(protocol)
    n = int(num_samples) if num_samples else proto.num_samples
    ext = resolve_extractor(extractor, _weights_arg(extractor, inception_weights, extractor_weights))
    feat = ext.layer_for(layer) if layer in ("fid", "kid", "is", "isc") else layer
    dev = _device(device)
    xdev = _extraction_device(dev)
    cuda = xdev.type == "cuda"
    with _on(xdev), _fidelity_errors():
        fe = create_feature_extractor(ext.name, [feat], cuda=cuda, verbose=bool(progress),
                                      feature_extractor_weights_path=str(ext.weights_path))
        if isinstance(source, GeneratorSource):
            with source.on_device(dev, xdev) as model:
                out = get_featuresdict_from_generative_model(model, fe, n, int(batch_size), cuda, NOISE_SEED,
                                                             bool(progress))
        elif isinstance(source, FiniteSource):
            out = get_featuresdict_from_dataset(source.dataset(n), fe, int(batch_size), cuda, True,
                                                bool(progress))
        else:
            raise MetricsError(f"unsupported source {source.describe()}")
    return out[feat].numpy()
