"""The pins hold on any CPU: the same float64 runs give the same pins with ATen's scalar kernels
(``ATEN_CPU_CAPABILITY=default``), with AVX2 and with this machine's best (``test_pinned_behaviour``), on one
and on two threads. CI runs on whatever machine the next change gets; float32 pins failed there."""

from __future__ import annotations

import pytest
import torch
from pinned_runs import IN_PROCESS, JOBS, has_avx2
from test_pinned_behaviour import check_pins


@pytest.mark.parametrize(("capability", "threads"), [
    pytest.param(capability, threads, marks=pytest.mark.pinned_job(f"{capability}-{threads}"))
    for capability, threads in (("default", 2), ("avx2", 1))])
def test_pins_hold_on_other_vector_units_and_thread_counts(pinned_jobs, capability, threads):
    if capability == "avx2" and not has_avx2():
        pytest.skip(f"this CPU has no AVX2 kernels (best: {torch.backends.cpu.get_cpu_capability()})")
    job = f"{capability}-{threads}"
    assert JOBS[job][1] == {"ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": str(threads)}
    got = pinned_jobs.result(job)
    assert got["_env"] == {"dtype": "torch.float64", "threads": threads, "capability": capability.upper()
                           if capability != "default" else "DEFAULT"}
    check_pins(got, IN_PROCESS)

