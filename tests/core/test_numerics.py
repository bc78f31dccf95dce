"""The process-wide numerics: RAYNAS_NUMERICS (float64 for CPU-independent numbers) and the OpenMP wait
policy raynas sets before torch loads (sleeping waiters, so a busy machine slows a run in proportion)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from raynas.device import apply_numerics, at_least_float32, compute_dtype


def _python(code: str, **env: str) -> str:
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "RAYNAS_NUMERICS")}
    proc = subprocess.run([sys.executable, "-c", code], env={**full, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_import_raynas_sets_a_sleeping_openmp_wait_policy_before_torch_loads():
    code = "import sys, os, raynas; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    assert _python(code) == "PASSIVE False"  # set, and torch (which reads it once, at load) not yet loaded
    assert _python(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False"  # a user's own choice wins


def test_float64_numerics_reach_every_float_an_image_becomes():
    code = ("import raynas, torch\n"
            "from raynas.data.sources import to_float\n"
            "from raynas.classify.augment import normalize\n"
            "x = torch.full((1, 1, 2, 2), 255, dtype=torch.uint8)\n"
            "n = normalize(x, torch.tensor([0.5]), torch.tensor([0.5]))\n"
            "print(torch.get_default_dtype(), to_float(x).dtype, n.dtype, float(n[0, 0, 0, 0]))")
    assert _python(code, RAYNAS_NUMERICS="float64") == "torch.float64 torch.float64 torch.float64 1.0"
    assert _python(code) == "torch.float32 torch.float32 torch.float32 1.0"


def test_a_bad_numerics_mode_is_one_message():
    from raynas.errors import ConfigError

    with pytest.raises(ConfigError, match=r"RAYNAS_NUMERICS='float16' is not a numerics mode raynas knows; use "
                                          r"float32 or float64"):
        apply_numerics("float16")
    assert torch.get_default_dtype() == torch.float32 and compute_dtype() == torch.float32


def test_losses_upcast_only_half_precision():
    half = torch.ones(3, dtype=torch.bfloat16)
    assert at_least_float32(half).dtype == torch.float32
    for dtype in (torch.float32, torch.float64):
        x = torch.ones(3, dtype=dtype)
        assert at_least_float32(x) is x  # no copy, no downcast of a float64 run's logits
    from raynas.gan.losses import d_hinge_loss, g_hinge_loss

    real, fake = torch.tensor([2.0, 0.5], dtype=torch.float64), torch.tensor([-3.0, 0.25], dtype=torch.float64)
    assert d_hinge_loss(real, fake).dtype == torch.float64
    assert d_hinge_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.25) / 2)
    assert g_hinge_loss(fake).item() == pytest.approx(-(-3.0 + 0.25) / 2)
