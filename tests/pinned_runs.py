"""The pinned runs: one short, seeded run per method, each long enough to exercise the mechanism a bug would
break, returning the numbers ``test_pinned_behaviour.py`` compares with ``fixtures/pinned_behaviour.json``.

They run in a fresh process under ``RAYNAS_NUMERICS=float64`` (``python tests/pinned_runs.py NAME ...`` prints
JSON): float32 convolutions and reductions round differently on AVX2 and AVX-512, and a few training steps
carry that into the 5th digit; in float64 the same difference stays near 1e-13, far below the 1e-6 the pins
allow, so the pins hold on any CPU and thread count (``test_pinned_portable.py`` shows it). Not a test module
itself (no ``test_`` prefix): the scenarios are plain functions so that the subprocess and a debugger can run
them alike.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

DAMGAN = ["damgan.search_gf_dim=8", "damgan.kprime=2", "damgan.reduction=4", "damgan.iters_per_epoch=3",
          "damgan.gen_batch_size=8", "damgan.dis_batch_size=8", "damgan.epochs=2", "model.latent_dim=16",
          "model.df_dim=8", "data.limit=256", "eval.num_samples=64", "eval.batch_size=64"]
# host_cpu + workers x evaluator_cpu = 1 CPU in all
EAGAN = ["eagan.population=4", "eagan.epochs_per_round=1", "eagan.warmup_epochs=1", "eagan.iters_per_epoch=2",
         "eagan.search_gf_dim=8", "eagan.search_df_dim=8", "eagan.gen_batch_size=8", "eagan.dis_batch_size=8",
         "eagan.workers=1", "eagan.evaluator_cpu=0.5", "eagan.host_cpu=0.5", "model.latent_dim=12",
         "eval.num_samples=64", "eval.batch_size=64", "data.limit=256", "eagan.rounds=2", "eagan.stages=[g,d]"]
CLASSIFY = ["data.resolution=16", "data.limit=64", "data.test_limit=32", "train.eval_batch_size=64"]
DARTS = [*CLASSIFY, "darts.layers=3", "darts.channels=4", "darts.batch_size=8", "darts.epochs=2"]
SWD = [*CLASSIFY, "swd.layers=5", "swd.channels=8", "swd.k=2", "swd.batch_size=8", "swd.epochs=2"]
DARTSGAL = [*CLASSIFY, "dartsgal.layers=3", "dartsgal.channels=4", "dartsgal.baseline_epochs=1",
            "dartsgal.prune_epochs=1", "dartsgal.prune_batch_size=32", "dartsgal.n_critic=1",
            "dartsgal.mask_step=2", "dartsgal.lam=0.01", "train.batch_size=16"]
REGAN = ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=16", "train.iters_per_epoch=3",
         "train.gen_batch_size=8", "train.dis_batch_size=8", "data.limit=200", "train.lr_g=1e-3",
         "regan.enabled=true", "regan.warmup=1", "regan.interval=1", "regan.sparsity=0.3", "train.epochs=3",
         "eval.num_samples=64", "eval.batch_size=64"]
RETRAIN = [*CLASSIFY, "data.resolution=32", "model.layers=3", "model.channels=4", "model.auxiliary=true",
           "train.auxiliary_weight=0.4", "train.drop_path_prob=0.3", "train.epochs=2", "train.batch_size=16"]


def _cpu():
    import torch

    return torch.device("cpu")


def _floats(values: Any) -> Any:
    """JSON-safe copy: NaN becomes None, tensors and numpy scalars plain numbers."""
    if isinstance(values, dict):
        return {str(k): _floats(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return [_floats(v) for v in values]
    if hasattr(values, "tolist"):
        return _floats(values.tolist())
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values


def _epoch(stats: dict, *keys: str) -> dict:
    return {k: stats[k] for k in keys}


# ============================================================================ the scenarios
def damgan() -> dict:
    """Two epochs per selector: α is recomputed from each epoch's attention alone (it must restart)."""
    from raynas.config import load_config
    from raynas.methods.damgan.generator_search import DamganSearch

    out = {}
    for selector in ("da", "darts"):
        extra = [f"damgan.selector={selector}"] + (["damgan.bilevel=true"] if selector == "darts" else [])
        cfg = load_config("quickstart", [*DAMGAN, *extra, f"run.output_dir={tempfile.mkdtemp()}"], method="damgan")
        search = DamganSearch(cfg, device=_cpu())
        epochs = []
        for _ in range(2):
            stats = search.train_epoch()
            epochs.append({**_epoch(stats, "d_loss", "g_loss"), "alpha": search.alpha_table()})
        genotype = search.derive_genotype()
        metrics = search.evaluate_subnet(genotype).as_row()
        out[selector] = {"epochs": epochs, "genotype": genotype.to_json(), "is_mean": metrics["is_mean"],
                         "fid": metrics["fid"]}
    return out


def _classifier_search(search_cls: Callable, overrides: list[str], method: str, steps: int = 2) -> tuple:
    from raynas.config import load_config

    cfg = load_config("quickstart-classify", overrides, method=method)
    search = search_cls(cfg, _cpu())
    search.supernet.train()
    search.begin_epoch()
    rows = [search.train_step() for _ in range(steps)]
    return search, rows


def darts() -> dict:
    """Two search steps (an α step on a validation batch, then a weight step) per order, and the genotype."""
    from raynas.methods.darts.cell_search import DartsSearch

    out = {}
    for order in (1, 2):
        search, rows = _classifier_search(DartsSearch, [*DARTS, f"darts.order={order}"], "darts")
        out[f"order{order}"] = {"steps": rows, "alpha": search.alpha_table(),
                                "genotype": search.derive_genotype().to_json()}
    return out


def swd() -> dict:
    """Two weight steps, the validation pass that turns lower attention into AWN weights, and the five cells."""
    from raynas.methods.swdnas.attention_search import SwdSearch

    search, rows = _classifier_search(SwdSearch, SWD, "swd-nas")
    extra = search.end_epoch()
    return {"steps": rows, "end_epoch": {k: v for k, v in extra.items() if k != "lr"},
            "alpha": search.alpha_table(), "genotype": search.derive_genotype().to_json()}


def dartsgal() -> dict:
    """One baseline epoch (the teacher), then two pruning steps with one FISTA mask step between them."""
    import torch

    from raynas.config import load_config
    from raynas.methods.dartsgal.pipeline import DartsGalPipeline

    cfg = load_config("quickstart-classify", DARTSGAL, method="darts-gal")
    pipe = DartsGalPipeline(cfg, _cpu())
    trainer = pipe.baseline_trainer()
    baseline = trainer.train_epoch()
    pruner = pipe.pruner(trainer.model.state_dict())
    stats = pruner.train_epoch()  # 64 images / 32 = 2 steps; mask_step=2 -> one FISTA step
    return {"baseline": _epoch(baseline, "train_loss", "train_acc"),
            "prune": {k: v for k, v in stats.items() if k not in ("prune_seconds", "images_per_s")},
            "masks": [m.detach().to(torch.float64).flatten().tolist() for m in pruner.student.masks()]}


def regan() -> dict:
    """A dense warm-up epoch, one sparse unit (masks applied, pruned weights held at 0), one dense unit."""
    import torch

    from raynas.config import load_config
    from raynas.gan.trainer import GANTrainer

    t = GANTrainer(load_config("quickstart", REGAN, method="train"), device=_cpu())
    rows, masked = [], None
    for _ in range(3):
        row = t.row(t.train_epoch())
        # after a dense epoch, which weights are exactly 0 is rounding: a regrown weight stays 0 where its
        # gradient sums to exactly 0, and whether it does depends on the order of the sum (thread count)
        keys = ("regan_phase", "d_loss", "g_loss", "lr_g", "train_flops") + (
            ("regan_sparsity", "regan_sparsity_max") if row["regan_phase"] != "dense" else ())
        rows.append({k: row[k] for k in keys})
        if row["regan_phase"] == "sparse":
            masked = {name: int((~keep).sum()) for name, keep in t.regan.masks.items()}
    weights = torch.cat([p.detach().flatten() for p in t.G.parameters()])
    return {"rows": rows, "masked": masked, "g_weight_sum": weights.sum().item(),
            "g_weight_abs": weights.abs().sum().item()}


def retrain() -> dict:
    """Two retrain epochs of darts-v2 with the auxiliary head (weight 0.4) and drop path ramping to 0.3."""
    from raynas.build import build_classifier
    from raynas.classify import ClassifierTrainer, ClassifyData
    from raynas.config import load_config

    cfg = load_config("quickstart-classify", RETRAIN, method="train")
    data = ClassifyData.from_config(cfg.data, seed=cfg.train.seed)
    trainer = ClassifierTrainer(lambda: build_classifier(cfg), data, cfg.train, device=_cpu())
    epochs = [_epoch(trainer.train_epoch(), "train_loss", "train_acc", "lr") for _ in range(2)]
    return {"epochs": epochs, "drop_path": trainer.model.drop_path_prob, "test": trainer.score()}


def eagan() -> dict:
    """Two rounds of stage g (crossover, mutation, selection) and two of stage d (weight resetting), every
    candidate's scores, through the real SupernetHost and Evaluator actors on a private local Ray."""
    import logging

    import ray

    from raynas.config import load_config
    from raynas.results import RunDir
    from trainables.eagan.driver import EaganSearch

    # address="local": a private Ray even while another `ray start` head runs on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env={"env_vars": {k: os.environ[k] for k in ("RAYNAS_NUMERICS", "RAYNAS_CACHE",
                                                                  "RAYNAS_OFFLINE", "OMP_NUM_THREADS")
                                       if k in os.environ} | {"PYTHONPATH": str(ROOT)}})
    try:
        cfg = load_config("quickstart", EAGAN, method="eagan")
        run = RunDir.create(tempfile.mkdtemp(), "pin", config=cfg.to_dict(), seed=0, preset=cfg.preset,
                            device="cpu")
        EaganSearch(cfg, run, progress=False).run_search()
        df = run.read()
        df = df.assign(order=df["stage"].map({"g": 0, "d": 1})).sort_values(["order", "round", "candidate_id"])
        cols = ("stage", "round", "genotype", "fid", "is_mean", "params", "rank", "d_loss", "g_loss")
        return {col: [v for v in df[col].tolist()] for col in cols if col in df}
    finally:
        ray.shutdown()


SCENARIOS: dict[str, Callable[[], dict]] = {"damgan": damgan, "darts": darts, "swd": swd, "dartsgal": dartsgal,
                                            "regan": regan, "retrain": retrain, "eagan": eagan}


IN_PROCESS = [name for name in SCENARIOS if name != "eagan"]  # eagan starts its own Ray


def has_avx2() -> bool:
    import platform

    import torch

    return (platform.machine().lower() in ("x86_64", "amd64")
            and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"))


# The runs the pinned tests compare: this machine's best vector unit on one thread (every method but EAGAN;
# EAGAN apart), and the portability reruns with ATen's scalar kernels on two threads and AVX2 on one.
JOBS: dict[str, tuple[list[str], dict[str, str]]] = {
    "best-1": (IN_PROCESS, {}),
    "eagan": (["eagan"], {}),
    "default-2": (IN_PROCESS, {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "2"}),
    "avx2-1": (IN_PROCESS, {"ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}),
}


class PinnedRun:
    """Scenarios running in a fresh float64 process (``env`` adds e.g. ATEN_CPU_CAPABILITY or OMP_NUM_THREADS),
    started at once so that several runs can share the cores; ``result()`` waits for its JSON."""

    def __init__(self, names: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> None:
        import subprocess
        import time

        self.names, self.timeout, self.started = names, timeout, time.monotonic()
        cache = tempfile.mkdtemp(prefix="raynas-pin-cache-")
        full = {**os.environ, "RAYNAS_NUMERICS": "float64", "RAYNAS_OFFLINE": "1", "RAYNAS_CACHE": cache,
                "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
        # files, not pipes: a run must never block on a full pipe while nobody reads it yet (closed by result())
        self._out, self._err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), *names], env=full, stdout=self._out,
                                     stderr=self._err, text=True, cwd=ROOT)

    def result(self) -> dict[str, Any]:
        import time

        try:
            self.proc.wait(timeout=max(1.0, self.timeout - (time.monotonic() - self.started)))
        finally:
            self.stop()
        with self._out, self._err:
            self._out.seek(0)
            self._err.seek(0)
            if self.proc.returncode != 0:
                raise RuntimeError(f"pinned runs {self.names} failed (exit {self.proc.returncode}):\n"
                                   f"{self._err.read()[-4000:]}")
            return json.loads(self._out.read().strip().splitlines()[-1])

    def stop(self) -> None:
        """End the run if it still runs (a timeout, or a session that no longer needs it)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_pinned(names: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run scenarios in a fresh float64 process and wait for their numbers."""
    return PinnedRun(names, env=env, timeout=timeout).result()


class PinnedJobs:
    """The ``JOBS`` a test session needs, all started together when the first is asked for: on two cores the
    scalar-kernel rerun, the AVX2 rerun, EAGAN (mostly waiting on its actors) and this CPU's run overlap instead
    of queueing. A job nobody asked for in advance starts when asked for."""

    def __init__(self, wanted: set[str]) -> None:
        self.runs: dict[str, PinnedRun] = {}
        self.done: dict[str, dict[str, Any]] = {}
        self.wanted = sorted(name for name in wanted if name != "avx2-1" or has_avx2())

    def result(self, name: str) -> dict[str, Any]:
        if name not in self.done:
            for job in [*self.wanted, name]:
                if job not in self.runs and job not in self.done:
                    names, env = JOBS[job]
                    self.runs[job] = PinnedRun(names, env=env)
            self.done[name] = self.runs.pop(name).result()
        return self.done[name]

    def stop(self) -> None:
        for run in self.runs.values():
            run.stop()


def main(argv: list[str]) -> int:
    import torch

    import raynas  # noqa: F401  (applies RAYNAS_NUMERICS)

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    out = {name: _floats(SCENARIOS[name]()) for name in (argv or list(SCENARIOS))}
    out["_env"] = {"dtype": str(torch.get_default_dtype()), "threads": torch.get_num_threads(),
                   "capability": torch.backends.cpu.get_cpu_capability()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
