"""Device and precision policy, decided in one place.

Code takes a ``torch.device`` from here instead of hard-coding ``.cuda()``; autocast (bf16) and
channels_last are switches that default to on for CUDA and off elsewhere.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

NUMERICS_ENV = "RAYNAS_NUMERICS"
NUMERICS = ("float32", "float64")


def apply_numerics(mode: str | None = None) -> str:
    """Set this process's compute dtype from ``mode`` (default: ``$RAYNAS_NUMERICS``, else float32).

    ``float64`` makes every run give the same numbers (to ~1e-12) on any CPU's vector units and any thread
    count: float32 convolutions and reductions round differently on AVX2 and AVX-512, and a few training
    steps carry that into the 5th digit of a loss. The pinned tests run this way; so can a user comparing
    two machines. Called by ``import raynas``, so Ray workers that inherit the variable follow it."""
    mode = mode or os.environ.get(NUMERICS_ENV) or "float32"
    if mode not in NUMERICS:
        from raynas.errors import ConfigError

        raise ConfigError(f"{NUMERICS_ENV}={mode!r} is not a numerics mode raynas knows; use float32 or float64")
    torch.set_default_dtype(torch.float64 if mode == "float64" else torch.float32)
    return mode


def compute_dtype() -> torch.dtype:
    """The floating dtype images become when they leave uint8 (float32 unless ``apply_numerics`` said 64)."""
    return torch.get_default_dtype()


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 (autocast) values up to float32 before a reduction; float32 and float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks CUDA when a GPU is visible (e.g. assigned by Ray), else CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


@dataclass(frozen=True)
class Precision:
    """Resolved mixed-precision settings for one device."""

    device: torch.device
    amp: bool
    channels_last: bool

    @classmethod
    def for_device(cls, device: torch.device, amp: str | bool = "auto",
                   channels_last: str | bool = "auto") -> Precision:
        on_cuda = device.type == "cuda"
        use_amp = on_cuda if amp == "auto" else bool(amp)
        use_cl = on_cuda if channels_last == "auto" else bool(channels_last)
        return cls(device=device, amp=use_amp, channels_last=use_cl)

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the device when enabled; a no-op otherwise."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move a module to the device (and channels_last memory format when enabled)."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Put an image batch into the configured memory format."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch global RNGs (CUDA included) from one seed."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _switch(value: str | bool) -> str | bool:
    return value if isinstance(value, bool) or value == "auto" else value == "true"


@dataclass(frozen=True)
class TrainingSetup:
    """Device, precision and seed of one training process: what every trainer starts from."""

    device: torch.device
    precision: Precision
    seed: int


def training_setup(train, device: torch.device | None = None, seed_offset: int = 0) -> TrainingSetup:
    """The one trainer setup: resolve ``train.device``, decide bf16/channels_last from ``train.amp`` and
    ``train.channels_last``, and seed every RNG with ``train.seed + seed_offset``. ``train`` is any train
    section (GAN or classifier)."""
    device = device or resolve_device(train.device)
    precision = Precision.for_device(device, _switch(train.amp), _switch(train.channels_last))
    seed = int(train.seed) + seed_offset
    seed_everything(seed)
    return TrainingSetup(device=device, precision=precision, seed=seed)
