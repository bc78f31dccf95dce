"""Pinned numbers for every method: a seeded, short run of each (``tests/pinned_runs.py``) must give the losses,
α, genotypes, masks and scores recorded in ``fixtures/pinned_behaviour.json``, so a refactor that changes what
a method computes fails here even when every invariant test still passes.

The runs compute in float64 (``RAYNAS_NUMERICS=float64``) in a fresh process, so the pins record raynas's
behaviour, not one CPU's float32 rounding (``test_pinned_portable.py`` reruns them with other vector units and
thread counts). ``RAYNAS_WRITE_PINS=1`` rewrites the fixture, only ever from a commit whose behaviour is the
reference.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pinned_runs import IN_PROCESS, PinnedJobs

PINS = Path(__file__).parent / "fixtures" / "pinned_behaviour.json"
WRITE = os.environ.get("RAYNAS_WRITE_PINS") == "1"
REL = 1e-6  # float64 runs differ across CPUs by ~1e-13; a behaviour change moves the numbers by far more


def check_pins(got: dict, names: list[str]) -> None:
    """Compare each scenario with its pin, or record it when rewriting."""
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    if WRITE:
        pins.update({name: got[name] for name in names})
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
        return
    for name in names:
        assert name in pins, f"no pinned value for {name}; run once with RAYNAS_WRITE_PINS=1 on the reference commit"
        same(got[name], pins[name], name)


def same(got, want, where: str) -> None:
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: {len(got)} items, pinned {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert got == pytest.approx(want, rel=REL, abs=1e-12), f"{where}: {got!r}, pinned {want!r}"
    else:
        assert got == want, f"{where}: {got!r}, pinned {want!r}"


def test_same_reports_a_drift_with_its_path():
    same({"a": [1.0, {"b": 2.0}]}, {"a": [1.0 + 1e-9, {"b": 2.0}]}, "x")
    with pytest.raises(AssertionError, match=r"x\.a\[1\]\.b: 2\.00001, pinned 2\.0"):
        same({"a": [1.0, {"b": 2.00001}]}, {"a": [1.0, {"b": 2.0}]}, "x")
    with pytest.raises(AssertionError, match=r"x\.g: 'conv', pinned 'skip'"):
        same({"g": "conv"}, {"g": "skip"}, "x")


@pytest.fixture(scope="session")
def pinned_in_process(pinned_jobs: PinnedJobs) -> dict:
    """Every method but EAGAN, in one float64 process on this machine's best vector unit and one thread."""
    return pinned_jobs.result("best-1")


@pytest.mark.pinned_job("best-1")
@pytest.mark.parametrize("name", IN_PROCESS)
def test_method_is_pinned(pinned_in_process, name):
    check_pins(pinned_in_process, [name])


@pytest.mark.pinned_job("best-1")
def test_pinned_runs_exercise_their_mechanisms(pinned_in_process):
    """What each pin is long enough to see (so a shortened scenario cannot pin nothing)."""
    got = pinned_in_process
    assert got["_env"]["dtype"] == "torch.float64" and got["_env"]["threads"] == 1
    for selector in ("da", "darts"):  # α restarts each epoch: epoch 2's α is not epoch 1's
        e1, e2 = got["damgan"][selector]["epochs"]
        assert e1["alpha"] != e2["alpha"]
    for order in ("order1", "order2"):
        assert len(got["darts"][order]["steps"]) == 2 and "normal" in got["darts"][order]["genotype"]
    assert got["darts"]["order1"]["alpha"] != got["darts"]["order2"]["alpha"]  # the unrolled term matters
    assert len(json.loads(got["swd"]["genotype"])["cells"]) == 5
    prune = got["dartsgal"]["prune"]
    assert prune["g_steps"] == 2 and prune["mask_steps"] == 1  # two pruning steps, one FISTA step
    assert [r["regan_phase"] for r in got["regan"]["rows"]] == ["warmup", "sparse", "dense"]
    assert got["retrain"]["drop_path"] == pytest.approx(0.15)  # drop path ramping to 0.3 over 2 epochs


@pytest.mark.slow
@pytest.mark.pinned_job("eagan")
def test_eagan_is_pinned(pinned_jobs):
    """Two rounds of stage g then two of stage d (crossover, mutation, weight resetting), real actors."""
    got = pinned_jobs.result("eagan")
    stages = got["eagan"]["stage"]
    assert stages == ["g"] * 8 + ["d"] * 8, stages
    check_pins(got, ["eagan"])
