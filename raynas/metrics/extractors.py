"""Feature extractors for IS / FID / KID, registered with torch-fidelity, and their weights files.

Two extractors are supported:

* ``inception-v3-compat``: torch-fidelity's port of the TF Inception-v3 used in the literature. Its
  weights come from ``inception_weights`` / ``RAYNAS_INCEPTION_WEIGHTS``, else torch-hub's cache,
  else a download when the machine is online. Offline with no file, we fail fast with instructions
  instead of letting torch-hub hang on the download.
* ``raynas-fmnist-cnn``: a small CNN trained on Fashion-MNIST (``scripts/train_fmnist_extractor.py``),
  shipped in the package. Inception features mean little on 28x28 grayscale clothes and cost ~6 GFLOPs
  per image; this one gives meaningful IS/FID for the embedded dataset on a CPU.

Every extractor is identified by its name *and* the sha256 of its weights file, because two different
weights files under one name give incomparable numbers (and torch-fidelity's own cache ignores this).
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.hub
import torch.nn as nn
import torch.nn.functional as F
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from raynas.errors import MetricsError

INCEPTION = "inception-v3-compat"
FMNIST_CNN = "raynas-fmnist-cnn"
WEIGHTS_DIR = Path(__file__).parent / "weights"
FMNIST_CNN_WEIGHTS = WEIGHTS_DIR / "fmnist_cnn.pt"
FMNIST_CNN_FORMAT = "raynas-fmnist-cnn/1"
INCEPTION_ENV = "RAYNAS_INCEPTION_WEIGHTS"
OFFLINE_ENV = "RAYNAS_OFFLINE"


# --------------------------------------------------------------------------- the Fashion-MNIST CNN


def fmnist_preprocess(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (B,1|3,H,W) -> float (B,1,32,32) in [-1,1], the CNN's input.

    RGB is converted to luminance. 28x28 (native Fashion-MNIST) is zero-padded to 32 exactly as
    ``raynas.data`` does, so unpadded and padded images give the same features; other sizes are resized.
    """
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise MetricsError(f"the {FMNIST_CNN} extractor needs images shaped (B, 1 or 3, H, W); got "
                           f"{tuple(x.shape)}")
    dtype = torch.get_default_dtype()  # float64 under RAYNAS_NUMERICS=float64, as the network's weights
    x = x.to(dtype) / 255.0 if x.dtype == torch.uint8 else x.to(dtype)
    if x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        x = (x * w).sum(dim=1, keepdim=True)
    h, w_ = x.shape[-2:]
    if (h, w_) == (28, 28):
        x = F.pad(x, (2, 2, 2, 2))
    elif (h, w_) != (32, 32):
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=h > 32 or w_ > 32)
    return (x - 0.5) / 0.5


class FMNISTNet(nn.Module):
    """Three conv stages (16/32/64 channels) -> 128-d feature layer -> 10 logits; ~155k parameters.

    Small enough to train on two CPU cores in a few minutes and to ship inside the package (<1 MB).
    ``features`` is the batch-normalised pre-activation of the penultimate layer: unlike post-ReLU
    features it has no dead (constant-zero) dimensions, so its covariance is full rank and FID is well
    conditioned; and being standardised on the training data (unit scale per dimension) keeps KID's cubic
    kernel in a range where torch-fidelity's float32 arithmetic stays accurate.
    """

    feature_dim = 128
    num_classes = 10

    def __init__(self) -> None:
        super().__init__()

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                 nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.body = nn.Sequential(stage(1, 16), stage(16, 32), stage(32, 64))  # 32 -> 16 -> 8 -> 4
        self.fc = nn.Linear(64 * 4 * 4, self.feature_dim, bias=False)
        self.norm = nn.BatchNorm1d(self.feature_dim)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, self.num_classes)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed input -> (features, logits)."""
        feats = self.norm(self.fc(self.body(x).flatten(1)))
        logits = self.head(self.dropout(F.relu(feats)))
        return feats, logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


def load_fmnist_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a CNN weights file (our ``{"format", "state_dict", ...}`` dict or a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"{FMNIST_CNN} weights file {path} does not exist; reinstall raynas or retrain it "
                           "with 'python scripts/train_fmnist_extractor.py'")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise MetricsError(f"{FMNIST_CNN} weights file {path} cannot be read ({type(e).__name__}: {e}); "
                           "retrain it with 'python scripts/train_fmnist_extractor.py'") from e
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    _check_state_dict(sd, FMNISTNet().state_dict(), path, FMNIST_CNN,
                      "retrain it with 'python scripts/train_fmnist_extractor.py'")
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}


class FeatureExtractorFMNISTCNN(FeatureExtractorBase):
    """torch-fidelity adapter for :class:`FMNISTNet`: uint8 (B,1|3,H,W) -> ('logits', 'features')."""

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                 **kwargs: object) -> None:
        super().__init__(name, features_list)
        self.net = FMNISTNet()
        self.net.load_state_dict(load_fmnist_state_dict(feature_extractor_weights_path or FMNIST_CNN_WEIGHTS))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats, logits = self.net.forward_features(fmnist_preprocess(x))
        out = {"features": feats.float(), "logits": logits.float()}
        return tuple(out[a] for a in self.features_list)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return "features", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 1, 32, 32, dtype=torch.uint8)


if FMNIST_CNN not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(FMNIST_CNN, FeatureExtractorFMNISTCNN)


# --------------------------------------------------------------------------- Inception weights


class _InceptionSkeleton(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception with weight loading skipped (its constructor always loads weights)."""

    def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: ANN001, ANN201
        if state_dict is None:
            return None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def build_inception_skeleton(
    device: str | torch.device = "cpu", features: tuple[str, ...] = ("2048", "logits_unbiased")
) -> FeatureExtractorInceptionV3:
    """An Inception-v3-compat module with default-initialised weights and the exact parameter names and
    shapes torch-fidelity loads; ``device="meta"`` builds it for free (shape checks)."""
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "none.pt")
        torch.save(None, empty)
        with torch.device(device):
            return _InceptionSkeleton(INCEPTION, list(features), feature_extractor_weights_path=empty)


_EXPECTED_INCEPTION: dict[str, tuple[int, ...]] | None = None
_VALIDATED: dict[tuple[str, int, int], bool] = {}


def _check_state_dict(sd: object, expected: dict, path: Path, what: str, fix: str) -> None:
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise MetricsError(f"{what} weights file {path} does not hold a state dict of tensors; {fix}")
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(expected) & set(sd) if tuple(sd[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} with the wrong shape (e.g. {k}: {tuple(sd[k].shape)} instead of "
                         f"{tuple(expected[k].shape)})")
        raise MetricsError(f"{what} weights file {path} does not match the model: tensors "
                           f"{'; '.join(parts)}; {fix}")


def validate_inception_weights(path: str | os.PathLike) -> Path:
    """Check that a file is an Inception-v3-compat state dict torch-fidelity can load (cached per mtime)."""
    global _EXPECTED_INCEPTION
    path = Path(path).expanduser()
    fix = (f"download {URL_INCEPTION_V3} and pass its path with --inception-weights or "
           f"{INCEPTION_ENV}")
    if not path.is_file():
        raise MetricsError(f"Inception weights file {path} does not exist; {fix}")
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if _VALIDATED.get(key):
        return path
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise MetricsError(f"Inception weights file {path} cannot be read as a PyTorch state dict "
                           f"({type(e).__name__}: {e}); {fix}") from e
    if _EXPECTED_INCEPTION is None:
        skeleton = build_inception_skeleton("meta")
        _EXPECTED_INCEPTION = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    _check_state_dict(sd, {k: torch.empty(v, device="meta") for k, v in _EXPECTED_INCEPTION.items()},
                      path, "Inception", fix)
    _VALIDATED[key] = True
    return path


def inception_hub_path() -> Path:
    """Where torch-hub (and so torch-fidelity) caches the downloaded Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(URL_INCEPTION_V3)


def _online(host: str = "github.com", port: int = 443, timeout: float = 3.0) -> bool:
    """A quick reachability probe, so an offline machine fails in seconds instead of hanging."""
    if os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_inception_weights(inception_weights: str | os.PathLike | None = None) -> Path:
    """The Inception weights file to use: argument, then env var, then torch-hub's cache, then download."""
    candidates = ((inception_weights, "inception_weights"), (os.environ.get(INCEPTION_ENV), INCEPTION_ENV))
    for given, origin in candidates:
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise MetricsError(f"Inception weights file {path} (from {origin}) does not exist; "
                                   f"download {URL_INCEPTION_V3} and point --inception-weights / "
                                   f"{INCEPTION_ENV} at it")
            return validate_inception_weights(path)
    cached = inception_hub_path()
    if cached.is_file():
        return validate_inception_weights(cached)
    how = (f"download {URL_INCEPTION_V3} on a machine with internet access and either copy it to {cached} "
           f"(torch-hub's cache, used automatically) or pass its path with --inception-weights FILE / the "
           f"inception_weights argument / the {INCEPTION_ENV} environment variable. For Fashion-MNIST-sized "
           f"grayscale data, --extractor {FMNIST_CNN} needs no download")
    if not _online():
        raise MetricsError(f"the Inception-v3 weights are not available offline: {how}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(cached), progress=True)
    except Exception as e:  # noqa: BLE001 - network errors come in many types
        raise MetricsError(f"downloading the Inception-v3 weights failed ({type(e).__name__}: {e}); "
                           f"{how}") from e
    return validate_inception_weights(cached)


# --------------------------------------------------------------------------- registry of supported extractors


@dataclass(frozen=True)
class ResolvedExtractor:
    """An extractor name bound to one concrete weights file (and that file's hash)."""

    name: str
    weights_path: Path
    weights_sha256: str
    isc_layer: str
    fid_layer: str
    kid_layer: str

    def layer_for(self, metric: str) -> str:
        layers = {"is": self.isc_layer, "isc": self.isc_layer, "fid": self.fid_layer, "kid": self.kid_layer}
        return layers[metric]


EXTRACTORS: dict[str, str] = {
    INCEPTION: "torch-fidelity's TF-compatible Inception-v3 (the literature's IS/FID/KID); needs weights",
    FMNIST_CNN: "small CNN trained on Fashion-MNIST, shipped with raynas; for 28x28/32x32 grayscale data",
}

_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised per (path, mtime, size) so a 95 MB weights file is hashed once."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def resolve_extractor(name: str, weights: str | os.PathLike | None = None) -> ResolvedExtractor:
    """Check the extractor name, find and validate its weights file, and hash it."""
    if name not in EXTRACTORS:
        raise MetricsError(f"unknown feature extractor {name!r}; valid extractors: {', '.join(EXTRACTORS)}")
    if name == INCEPTION:
        path = resolve_inception_weights(weights)
    else:
        path = Path(weights).expanduser() if weights else FMNIST_CNN_WEIGHTS
        load_fmnist_state_dict(path)
    cls = FEATURE_EXTRACTORS_REGISTRY[name]
    return ResolvedExtractor(
        name=name, weights_path=path, weights_sha256=file_sha256(path),
        isc_layer=cls.get_default_feature_layer_for_metric("isc"),
        fid_layer=cls.get_default_feature_layer_for_metric("fid"),
        kid_layer=cls.get_default_feature_layer_for_metric("kid"),
    )
