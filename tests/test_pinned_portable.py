"""The pins hold on any CPU: the same float64 runs give the same pins with ATen's scalar kernels
(``ATEN_CPU_CAPABILITY=default``), with AVX2 and with this machine's best (``test_pinned_behaviour``), on one
and on two threads. CI runs on whatever machine the next change gets; float32 pins failed there."""

from __future__ import annotations

import platform

import pytest
import torch
from pinned_runs import run_pinned
from test_pinned_behaviour import IN_PROCESS, check_pins

X86 = platform.machine().lower() in ("x86_64", "amd64")
BEST = torch.backends.cpu.get_cpu_capability()


@pytest.mark.parametrize(("capability", "threads"), [("default", 2), ("avx2", 1)])
def test_pins_hold_on_other_vector_units_and_thread_counts(capability, threads):
    if capability == "avx2" and not (X86 and BEST in ("AVX2", "AVX512")):
        pytest.skip(f"this CPU has no AVX2 kernels (best: {BEST})")
    got = run_pinned(IN_PROCESS, env={"ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": str(threads)})
    assert got["_env"] == {"dtype": "torch.float64", "threads": threads, "capability": capability.upper()
                           if capability != "default" else "DEFAULT"}
    check_pins(got, IN_PROCESS)

