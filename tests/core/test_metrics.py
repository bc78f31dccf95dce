"""raynas.metrics: IS / FID / KID through torch-fidelity, extractors, weights errors, the real-stats cache."""

from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn as nn
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

import raynas.data
from raynas.errors import MetricsError
from raynas.metrics import (
    FMNIST_CNN,
    FMNIST_CNN_WEIGHTS,
    INCEPTION,
    PROTOCOLS,
    DatasetSource,
    FMNISTNet,
    FolderSource,
    GeneratorSource,
    MetricsResult,
    TensorSource,
    build_inception_skeleton,
    cache_entry,
    compute_metrics,
    evaluate_generator,
    extract_features,
    frechet_distance,
    get_protocol,
    parse_source,
    resolve_extractor,
    resolve_inception_weights,
    to_uint8,
)
from raynas.metrics.extractors import load_fmnist_state_dict

CNN = dict(extractor=FMNIST_CNN, device="cpu")


class TinyG(nn.Module):
    """z -> (B, C, 32, 32) in [-1, 1]."""

    def __init__(self, latent_dim: int = 8, channels: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.fc = nn.Linear(latent_dim, channels * 32 * 32)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(z)).view(-1, self.channels, 32, 32)


def noise_images(n: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, 32, 32), dtype=torch.uint8, generator=g)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test reads or writes the user's caches or depends on their environment."""
    monkeypatch.setenv("RAYNAS_CACHE", str(tmp_path / "raynas-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("RAYNAS_OFFLINE", "1")
    monkeypatch.delenv("RAYNAS_INCEPTION_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory) -> str:
    """A torch-fidelity Inception state dict with Kaiming-initialised convs (default init collapses)."""
    torch.manual_seed(0)
    net = build_inception_skeleton("cpu")
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return str(path)


# ----------------------------------------------------------------------------- results and protocols


def test_as_row_has_exactly_the_result_fields():
    r = MetricsResult(is_mean=2.0, is_std=0.1, fid=12.5, kid_mean=0.01, kid_std=0.001,
                      extractor=INCEPTION, num_samples=5000, seconds=3.5)
    row = r.as_row()
    assert list(row) == ["is_mean", "is_std", "fid", "kid_mean", "kid_std", "extractor", "num_samples",
                         "seconds"]
    assert row["fid"] == 12.5 and row["extractor"] == INCEPTION and row["num_samples"] == 5000


def test_protocols():
    assert PROTOCOLS["search"].num_samples == 5_000 and PROTOCOLS["search"].isc_splits == 10
    assert PROTOCOLS["paper"].num_samples == 50_000 and PROTOCOLS["paper"].isc_splits == 10
    assert PROTOCOLS["quick"].num_samples < PROTOCOLS["search"].num_samples
    assert get_protocol("paper") is PROTOCOLS["paper"]
    with pytest.raises(MetricsError, match="search"):
        get_protocol("fast")


# ----------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_matches_closed_forms():
    # 1-D: (m1-m2)^2 + s1 + s2 - 2 sqrt(s1 s2)
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + 4 + 1 - 2 * 2)
    # diagonal covariances: sum over dimensions of the 1-D formula
    v1, v2 = np.array([1.0, 2.0, 9.0]), np.array([4.0, 2.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = np.sum((mu1 - mu2) ** 2 + v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    s = a @ a.T
    assert abs(frechet_distance(np.ones(5), s, np.ones(5), s)) < 1e-8
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def _scipy_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    f1, f2 = f1.astype(np.float64), f2.astype(np.float64)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _few_sample_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID exactly, for n samples of d >> n features (no d x d matrix square root, ~10 s at d=2048 on one busy
    core, and inexact for singular covariances). With centred features A1, A2 (n x d) and S = AᵀA / (n-1),
    the nonzero eigenvalues of S1 S2 are those of M Mᵀ / (n-1)², M = A1 A2ᵀ (n x n), so tr sqrt(S1 S2) is the sum
    of M's singular values over n-1."""
    f1, f2 = f1.astype(np.float64), f2.astype(np.float64)
    assert len(f1) == len(f2)
    a1, a2 = f1 - f1.mean(0), f2 - f2.mean(0)
    n = len(f1)
    s1, s2 = np.einsum("ij,ij->", a1, a1) / (n - 1), np.einsum("ij,ij->", a2, a2) / (n - 1)  # the traces
    covmean = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / (n - 1)
    return float(((f1.mean(0) - f2.mean(0)) ** 2).sum() + s1 + s2 - 2 * covmean)


def _hand_is(logits: np.ndarray) -> float:
    """IS over one split: exp of the mean KL between each image's class probabilities and their mean."""
    z = logits.astype(np.float64)
    log_p = z - z.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    p = np.exp(log_p)
    return float(np.exp((p * (log_p - np.log(p.mean(0, keepdims=True)))).sum(1).mean()))


def _hand_kid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic kernel (x.y/d + 1)^3 over all samples (KID when each subset is the whole set)."""
    f1, f2 = f1.astype(np.float64), f2.astype(np.float64)
    m, d = len(f1), f1.shape[1]

    def k(a, b):
        return (a @ b.T / d + 1) ** 3

    kxx, kyy = k(f1, f1), k(f2, f2)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * k(f1, f2).sum() / m**2)


def test_hand_is_and_kid_on_known_values():
    # uniform predictions: IS 1; confident one-hot predictions spread evenly over k classes: IS k
    assert _hand_is(np.zeros((6, 10))) == pytest.approx(1.0)
    assert _hand_is(np.repeat(np.eye(3) * 60.0, 2, axis=0)) == pytest.approx(3.0)
    # within-set kernels (1+1)^3 = 8, cross-set kernels (-1+1)^3 = 0: MMD^2 = 8 + 8 - 2*0
    assert _hand_kid(np.ones((2, 1)), -np.ones((2, 1))) == pytest.approx(16.0)
    assert _hand_kid(np.zeros((3, 2)), np.zeros((3, 2))) == pytest.approx(0.0)
    rng = np.random.default_rng(0)  # the few-sample FID is the full computation's, where that one is exact
    f1, f2 = rng.normal(size=(40, 12)), rng.normal(0.5, 2.0, size=(40, 12))
    assert _few_sample_fid(f1, f2) == pytest.approx(_scipy_fid(f1, f2), rel=1e-9)


def test_fid_equals_independent_scipy_computation(tmp_path):
    fake, real = DatasetSource("embedded", "train"), DatasetSource("embedded", "test")
    res = compute_metrics(fake, real, metrics=("fid",), num_samples=600, cache_dir=tmp_path, **CNN)
    f_fake = extract_features(fake, num_samples=600, **CNN)
    f_real = extract_features(real, num_samples=600, **CNN)
    assert f_fake.shape == f_real.shape == (600, 128)
    ref = _scipy_fid(f_fake, f_real)
    assert ref > 0
    assert abs(res.fid - ref) / ref < 1e-4
    assert res.is_mean is None and res.kid_mean is None and res.num_samples == 600
    mu1, mu2 = f_fake.mean(0), f_real.mean(0)
    ours = frechet_distance(mu1, np.cov(f_fake, rowvar=False), mu2, np.cov(f_real, rowvar=False))
    assert abs(ours - ref) / ref < 1e-4


# ----------------------------------------------------------------------------- the shipped CNN extractor


def test_shipped_cnn_weights_are_small_and_load():
    assert FMNIST_CNN_WEIGHTS.is_file() and FMNIST_CNN_WEIGHTS.stat().st_size < 1_000_000
    ext = resolve_extractor(FMNIST_CNN)
    assert ext.weights_path == FMNIST_CNN_WEIGHTS and len(ext.weights_sha256) == 64
    assert (ext.isc_layer, ext.fid_layer) == ("logits", "features")


def test_cnn_tells_real_data_from_noise(tmp_path):
    test = DatasetSource("embedded", "test")
    real = compute_metrics(DatasetSource("embedded", "train"), test, num_samples=500, protocol="quick",
                           cache_dir=tmp_path, **CNN)
    noise = compute_metrics(TensorSource(noise_images(500)), test, num_samples=500, protocol="quick",
                            cache_dir=tmp_path, **CNN)
    assert 0 <= real.fid < noise.fid / 5
    assert abs(real.kid_mean) < noise.kid_mean / 20
    # ten balanced, confidently classified classes give IS close to 10; noise falls in few classes
    assert real.is_mean > 6 and real.is_mean > 2 * noise.is_mean
    assert real.is_std == 0.0  # the quick protocol uses one IS split


def test_cnn_accepts_gray_rgb_and_native_28px():
    gray = raynas.data.load_images("embedded", "test", limit=16)
    f_gray = extract_features(TensorSource(gray), num_samples=16, **CNN)
    f_rgb = extract_features(TensorSource(gray.repeat(1, 3, 1, 1)), num_samples=16, **CNN)
    f_28 = extract_features(TensorSource(gray[:, :, 2:30, 2:30].contiguous()), num_samples=16, **CNN)
    np.testing.assert_allclose(f_rgb, f_gray, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f_28, f_gray, rtol=1e-5, atol=1e-5)
    f_64 = extract_features(TensorSource(torch.nn.functional.interpolate(gray.float(), size=64).to(torch.uint8)),
                            num_samples=16, **CNN)
    # larger images are resized to 32x32 (antialiased bilinear) before the CNN: the features of that by hand
    big = torch.nn.functional.interpolate(gray.float(), size=64).to(torch.uint8)
    x = torch.nn.functional.interpolate(big.float() / 255.0, size=(32, 32), mode="bilinear", align_corners=False,
                                        antialias=True)
    net = FMNISTNet().eval()
    net.load_state_dict(load_fmnist_state_dict(FMNIST_CNN_WEIGHTS))
    with torch.no_grad():
        by_hand = net.forward_features((x - 0.5) / 0.5)[0].numpy()
    assert f_64.shape == (16, 128)
    np.testing.assert_allclose(f_64, by_hand, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- generators


def test_generator_source_uint8_and_state_restored(tmp_path):
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0, 3.0, -7.0])).tolist() == [0, 128, 255, 255, 0]
    torch.manual_seed(0)
    G = TinyG(channels=1).train()
    src = GeneratorSource(G, 8)
    batches = list(src.sample(10, batch_size=4, device="cpu"))
    assert [b.shape[0] for b in batches] == [4, 4, 2]
    assert batches[0].dtype == torch.uint8 and batches[0].shape[1:] == (3, 32, 32)
    assert G.training  # eval mode only for the duration
    again = torch.cat(list(src.sample(10, batch_size=5, device="cpu")))
    assert torch.equal(torch.cat(batches), again)  # fixed z sequence
    res = evaluate_generator(G, 8, TensorSource(noise_images(64)), num_samples=64, protocol="quick",
                             cache_dir=tmp_path, **CNN)
    assert res.num_samples == 64 and res.is_std == 0.0  # the quick protocol: one IS split
    assert G.training and next(G.parameters()).device.type == "cpu"
    # Each score by hand from the features of the same 64 generated images (the same fixed z sequence) and of
    # the 64 real ones; KID's subsets hold all 64 images, so KID is the unbiased MMD over the whole sets.
    fake, real = GeneratorSource(G, 8), TensorSource(noise_images(64))
    f_fake, f_real = (extract_features(s, num_samples=64, **CNN) for s in (fake, real))
    logits = extract_features(fake, num_samples=64, layer="is", **CNN)
    assert logits.shape == (64, 10) and f_fake.shape == (64, 128)
    assert res.fid == pytest.approx(_scipy_fid(f_fake, f_real), rel=1e-4)
    assert res.is_mean == pytest.approx(_hand_is(logits), rel=1e-5)
    assert res.kid_mean == pytest.approx(_hand_kid(f_fake, f_real), rel=1e-4)
    assert res.kid_std == pytest.approx(0.0, abs=1e-4 * abs(res.kid_mean))


def test_generator_with_bad_output_shape_is_a_metrics_error(tmp_path):
    class Flat(nn.Module):
        def forward(self, z):
            return z

    with pytest.raises(MetricsError, match="generator must return images"):
        evaluate_generator(Flat(), 4, None, metrics=("is",), num_samples=8, **CNN)


def test_inception_end_to_end_with_random_weights(tmp_path, random_inception_weights):
    torch.manual_seed(0)
    G = TinyG(channels=1)
    # 4 + 4 images: Inception runs at 299x299 (~0.5 s per image on a busy CPU; each image passes 5 times) and
    # raynas's FID takes 2048x2048 eigendecompositions, so this is a slow test even so small
    real = TensorSource(raynas.data.load_images("embedded", "test", limit=4))
    res = evaluate_generator(G, 8, real, num_samples=4, protocol="quick", extractor=INCEPTION,
                             inception_weights=random_inception_weights, device="cpu", batch_size=8,
                             cache_dir=tmp_path)
    assert res.extractor == INCEPTION and res.num_samples == 4 and res.is_std == 0.0  # one IS split
    # By hand from the same Inception's features: FID and KID (each KID subset is all 4 images) on the
    # 2048-d pool features, IS on the logits.
    weights = dict(extractor=INCEPTION, inception_weights=random_inception_weights, device="cpu", batch_size=8)
    fake = GeneratorSource(G, 8)
    f_fake, f_real = (extract_features(s, num_samples=4, **weights) for s in (fake, real))
    logits = extract_features(fake, num_samples=4, layer="is", **weights)
    assert f_fake.shape == (4, 2048) and logits.shape == (4, 1008)
    assert res.is_mean == pytest.approx(_hand_is(logits), rel=1e-5)
    assert res.kid_mean == pytest.approx(_hand_kid(f_fake, f_real), rel=1e-4)
    # 4 samples in 2048 dimensions: both covariances are singular, so raynas's matrix square root is less exact
    assert res.fid == pytest.approx(_few_sample_fid(f_fake, f_real), rel=1e-3)


# ----------------------------------------------------------------------------- bad inputs


def test_missing_inception_weights_path(tmp_path, monkeypatch):
    missing = tmp_path / "nope.pth"
    with pytest.raises(MetricsError, match="nope.pth.*does not exist"):
        compute_metrics(TensorSource(noise_images(4)), None, metrics=("is",), inception_weights=str(missing))
    monkeypatch.setenv("RAYNAS_INCEPTION_WEIGHTS", str(missing))
    with pytest.raises(MetricsError, match="RAYNAS_INCEPTION_WEIGHTS"):
        resolve_inception_weights()


def test_offline_without_inception_weights_fails_fast_with_instructions():
    t0 = time.perf_counter()
    with pytest.raises(MetricsError, match="^the Inception-v3 weights are not available offline: download ") as info:
        compute_metrics(TensorSource(noise_images(4)), None, metrics=("is",), extractor=INCEPTION)
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert URL_INCEPTION_V3 in msg and "--inception-weights" in msg and "RAYNAS_INCEPTION_WEIGHTS" in msg


def test_corrupt_weights_files(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(MetricsError, match="garbage.pth"):
        resolve_inception_weights(str(garbage))
    wrong = tmp_path / "wrong-shapes.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(MetricsError, match="wrong-shapes.pth.*does not match"):
        resolve_inception_weights(str(wrong))
    with pytest.raises(MetricsError, match="garbage.pth"):
        resolve_extractor(FMNIST_CNN, str(garbage))
    sd = torch.load(FMNIST_CNN_WEIGHTS, weights_only=True)["state_dict"]
    sd["head.weight"] = torch.zeros(5, 128)
    torch.save(sd, wrong)
    with pytest.raises(MetricsError, match=r"wrong shape \(e\.g\. head\.weight"):
        resolve_extractor(FMNIST_CNN, str(wrong))


def test_folders(tmp_path):
    from PIL import Image

    with pytest.raises(MetricsError, match="does not exist"):
        FolderSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricsError, match="no png/jpg/jpeg/webp images"):
        parse_source(f"folder:{tmp_path / 'empty'}")
    folder = tmp_path / "imgs"
    folder.mkdir()
    imgs = noise_images(6, channels=3)
    for i, im in enumerate(imgs):
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    Image.fromarray(imgs[0, 0].numpy()).save(folder / "gray.png")
    src = parse_source(f"folder:{folder}")
    assert isinstance(src, FolderSource) and len(src.files) == 7
    got = src.images(100)
    assert got.shape == (7, 3, 32, 32) and got.dtype == torch.uint8
    assert torch.equal(got[0], imgs[0])  # lossless png round trip, sorted order 0.png, 1.png, ...
    assert torch.equal(got[6], imgs[0, :1].expand(3, 32, 32))  # gray repeated to RGB
    assert len(src.dataset(3)) == 3


def test_unknown_extractor_and_metric():
    with pytest.raises(MetricsError, match=f"{INCEPTION}.*{FMNIST_CNN}"):
        compute_metrics(TensorSource(noise_images(4)), None, metrics=("is",), extractor="vgg-42")
    with pytest.raises(MetricsError, match="valid metrics"):
        compute_metrics(TensorSource(noise_images(4)), None, metrics=("lpips",), **CNN)
    with pytest.raises(MetricsError, match="real image source"):
        compute_metrics(TensorSource(noise_images(4)), None, metrics=("fid",), **CNN)


def test_parse_source():
    ds = parse_source("dataset:embedded:test")
    assert isinstance(ds, DatasetSource) and (ds.name, ds.split, ds.resolution, ds.channels) == (
        "embedded", "test", 32, 1)
    assert parse_source("dataset:embedded", channels=3).channels == 3
    for bad, message in (("embedded", "cannot parse image source 'embedded'; use dataset:NAME"),
                         ("zip:/x", "unknown image source kind 'zip' in 'zip:/x'"),
                         ("dataset:", "cannot parse image source 'dataset:'"),
                         ("dataset:nope", "unknown dataset 'nope'; valid names: embedded"),
                         ("dataset:embedded:val", "dataset 'embedded' has no split 'val'; valid splits: train, test")):
        with pytest.raises(MetricsError, match=re.escape(message)):
            parse_source(bad)
    with pytest.raises(MetricsError, match="checkpoint loader"):
        parse_source("checkpoint:/x/ckpt.pt")


def test_parse_checkpoint_source_uses_the_loader(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"x")
    G = TinyG()
    src = parse_source(f"checkpoint:{ckpt}", checkpoint_loader=lambda p: (G, 8))
    assert isinstance(src, GeneratorSource) and src.G is G and src.latent_dim == 8
    with pytest.raises(MetricsError, match="does not exist"):
        parse_source(f"checkpoint:{tmp_path / 'other.pt'}", checkpoint_loader=lambda p: (G, 8))


# ----------------------------------------------------------------------------- the real-statistics cache


def test_cache_key_follows_the_weights_file(tmp_path):
    ident = DatasetSource("embedded", "test").cache_identity()
    shipped = resolve_extractor(FMNIST_CNN)
    copy = tmp_path / "copy.pt"
    shutil.copy(FMNIST_CNN_WEIGHTS, copy)
    same = resolve_extractor(FMNIST_CNN, str(copy))
    assert cache_entry(ident, same, 100, tmp_path).name == cache_entry(ident, shipped, 100, tmp_path).name
    obj = torch.load(copy, weights_only=True)
    obj["state_dict"]["head.bias"] += 1.0
    torch.save(obj, copy)
    changed = resolve_extractor(FMNIST_CNN, str(copy))
    assert changed.weights_sha256 != shipped.weights_sha256
    assert cache_entry(ident, changed, 100, tmp_path).name != cache_entry(ident, shipped, 100, tmp_path).name
    # the other parts of the key matter too
    names = {cache_entry(ident, shipped, 100, tmp_path).name, cache_entry(ident, shipped, 200, tmp_path).name,
             cache_entry(DatasetSource("embedded", "train").cache_identity(), shipped, 100, tmp_path).name,
             cache_entry(DatasetSource("embedded", "test", channels=3).cache_identity(), shipped, 100,
                         tmp_path).name}
    assert len(names) == 4


def test_second_compute_uses_the_cache(tmp_path, monkeypatch):
    real = DatasetSource("embedded", "test")
    fake = TensorSource(noise_images(200))
    first = compute_metrics(fake, real, num_samples=200, protocol="quick", **CNN)  # default dir: $RAYNAS_CACHE
    entry = cache_entry(real.cache_identity(), resolve_extractor(FMNIST_CNN), 200)
    assert entry.directory == tmp_path / "raynas-cache"
    assert len(entry.files()) == 3 and entry.num_images() == 200  # features, logits, FID statistics

    def no_loading(*a, **k):
        raise AssertionError("the real dataset was loaded despite a cache hit")

    monkeypatch.setattr(raynas.data, "load_images", no_loading)
    second = compute_metrics(fake, real, num_samples=200, protocol="quick", **CNN)
    assert second.fid == pytest.approx(first.fid, rel=1e-6)
    assert second.kid_mean == pytest.approx(first.kid_mean, rel=1e-6)
    # different weights -> a different entry -> the dataset must be loaded again
    other = tmp_path / "other.pt"
    obj = torch.load(FMNIST_CNN_WEIGHTS, weights_only=True)
    obj["state_dict"]["norm.bias"] += 0.5
    torch.save(obj, other)
    with pytest.raises(AssertionError, match="despite a cache hit"):
        compute_metrics(fake, real, num_samples=200, protocol="quick", extractor_weights=str(other), **CNN)
