"""Numbers pinned before the method-registry refactor: the same seeded DAMGAN epoch and EAGAN round must
give the same α, losses and scores after code moves. ``RAYNAS_WRITE_PINS=1`` rewrites the fixture (only
ever from a commit whose behaviour is the reference)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from raynas.config import load_config
from raynas.results import RunDir

PINS = Path(__file__).parent / "fixtures" / "pinned_behaviour.json"
WRITE = os.environ.get("RAYNAS_WRITE_PINS") == "1"

DAMGAN = ["damgan.search_gf_dim=8", "damgan.kprime=2", "damgan.reduction=4", "damgan.iters_per_epoch=3",
          "damgan.gen_batch_size=8", "damgan.dis_batch_size=8", "damgan.epochs=1", "model.latent_dim=16",
          "model.df_dim=8", "data.limit=256", "eval.num_samples=64", "eval.batch_size=64"]
# host_cpu + workers x evaluator_cpu = 1: the SupernetHost trains on one thread, as when the pins were written
# (a CPU sum over 2 threads reorders float additions, so d_loss moves in the 4th decimal)
EAGAN = ["eagan.population=4", "eagan.epochs_per_round=1", "eagan.warmup_epochs=1", "eagan.iters_per_epoch=2",
         "eagan.search_gf_dim=8", "eagan.search_df_dim=8", "eagan.gen_batch_size=8", "eagan.dis_batch_size=8",
         "eagan.workers=1", "eagan.evaluator_cpu=0.5", "eagan.host_cpu=0.5", "model.latent_dim=12",
         "eval.num_samples=64", "eval.batch_size=64", "data.limit=256", "eagan.rounds=1", "eagan.stages=[g]"]


def _check(key: str, value):
    """Compare with the pinned value (floats to 1e-6 relative), or record it when rewriting."""
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    if WRITE:
        pins[key] = value
        PINS.parent.mkdir(exist_ok=True)
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
        return
    assert key in pins, f"no pinned value for {key}; run once with RAYNAS_WRITE_PINS=1 on the reference commit"
    _same(value, pins[key], key)


def _same(got, want, where: str) -> None:
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), where
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9), where
    else:
        assert got == want, where


def _load(overrides, method):
    return load_config("quickstart", overrides, method=method)


def test_damgan_quickstart_epoch_is_pinned(tmp_path):
    from raynas.methods.damgan.search import DamganSearch

    for selector in ("da", "darts"):
        extra = [f"damgan.selector={selector}"] + (["damgan.bilevel=true"] if selector == "darts" else [])
        cfg = _load([*DAMGAN, *extra, f"run.output_dir={tmp_path}"], "damgan")
        search = DamganSearch(cfg, device=torch.device("cpu"))
        stats = search.train_epoch()
        genotype = search.derive_genotype()
        metrics = search.evaluate_subnet(genotype).as_row()
        _check(f"damgan-{selector}", {
            "d_loss": stats["d_loss"], "g_loss": stats["g_loss"], "alpha": search.alpha_table(),
            "genotype": genotype.to_json(), "is_mean": metrics["is_mean"], "fid": metrics["fid"]})


@pytest.mark.slow
def test_eagan_quickstart_round_is_pinned(ray_session, tmp_path):
    from trainables.eagan.driver import EaganSearch

    cfg = _load(EAGAN, "eagan")
    run = RunDir.create(tmp_path, "pin", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    EaganSearch(cfg, run, progress=False).run_search()
    df = run.read().sort_values("candidate_id")
    _check("eagan-round0", {col: [None if v != v else v for v in df[col].tolist()]
                            for col in ("genotype", "fid", "is_mean", "params", "rank", "d_loss", "g_loss",
                                        "train_batches")})
