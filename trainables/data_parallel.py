"""``raynas train`` / ``raynas retrain --num-workers N``: one fixed network trained data-parallel by Ray Train.

The run keeps its one Tune trial (its id names the result rows, its folder holds TensorBoard, ``--resume``
restores it). With ``resources.workers`` > 1 that trial starts a ``TorchTrainer`` of N workers (gloo on CPUs,
NCCL on GPUs; ``--resources`` is per worker) and waits for it; every worker runs the same epoch loop
(``trainables.fixed_trial.fit``) with a :class:`WorkerSession`, and :mod:`raynas.distributed` keeps their networks
identical (a slice of the same global batch each, summed gradients, optional synchronised BatchNorm).

Rank 0 alone scores (test accuracy, IS/FID), draws sample grids, writes the result rows and checkpoints; every
worker reports each epoch (Ray Train's rhythm) and Ray Train hands rank 0's metrics to the Tune trial
(``TuneReportCallback``). Checkpoints live in Ray Train's own run folder, ``RUN/<experiment>/workers-<trial id>``:
a worker that dies makes Ray Train restart the group from the latest one (``run.max_failures`` times), and a
restored trial (``raynas train --resume``) starts a trainer of the same name, which resumes from it too.

Placement is Ray Train's default, ``PACK``: workers share a node while it has room (collectives stay local) and
go to other nodes when it has not; rank 0 records each rank's node in run.json (``workers``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORKER_RESOURCES = "_worker_resources"  # trial config key: --resources of each worker (set by the CLI)
GLOO_TIMEOUT_S = 4 * 3600  # rank 0 alone scores a paper-protocol FID while the others wait in the next collective


# The Tune trial itself only waits for its workers: no CPU (a bundle needs one non-zero entry, hence 1 byte)
TRIAL_RESOURCES = {"cpu": 0.0, "gpu": 0.0, "memory": 1.0}


def worker_resources(config: dict[str, Any], cfg: Any) -> dict[str, float]:
    """Each worker's CPUs and GPUs: the CLI's ``--resources``, else the config's ``resources`` section."""
    given = config.get(WORKER_RESOURCES) or {}
    return {"cpu": float(given.get("cpu", cfg.resources.cpu)), "gpu": float(given.get("gpu", cfg.resources.gpu))}


def train_data_parallel(config: dict[str, Any], cfg: Any, run: Any, fit: Callable[..., None], *,
                        method: str) -> None:
    """Inside the run's Tune trial: train ``cfg``'s network on ``cfg.resources.workers`` Ray Train workers, each
    running ``fit`` (``trainables.fixed_trial.fit``) with a :class:`WorkerSession`, and return when they are done (a
    worker's RaynasError comes back as the trial's last result, as with one)."""
    from ray import tune
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from trainables.common import trial_dir, trial_id

    tid = trial_id()
    res = worker_resources(config, cfg)
    use_gpu = res["gpu"] > 0
    storage = tune.get_context().get_storage()
    loop = {"config": config, "run": run, "fit": fit, "method": method, "trial_id": tid,
            "trial_dir": str(trial_dir())}
    trainer = TorchTrainer(
        _worker,
        train_loop_config=loop,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo", timeout_s=GLOO_TIMEOUT_S),
        scaling_config=ScalingConfig(num_workers=cfg.resources.workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": res["cpu"], **({"GPU": res["gpu"]} if use_gpu
                                                                                  else {})}),
        run_config=RunConfig(
            name=f"workers-{tid}",
            storage_path=storage.experiment_fs_path,
            storage_filesystem=storage.storage_filesystem,
            failure_config=FailureConfig(max_failures=cfg.run.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.run.checkpoints_to_keep),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()


class WorkerSession:
    """``fit``'s session in a Ray Train worker: its rank in the group, rank 0's checkpoints through
    ``ray.train``, the Tune trial's id and folder (passed in: a worker has no Tune context)."""

    def __init__(self, trial_id: str, trial_dir: str) -> None:
        import socket

        import ray
        import torch

        from raynas.distributed import Replicas

        self.replicas = Replicas.current()
        self._trial_id, self._trial_dir = trial_id, trial_dir
        self.device = None
        if torch.cuda.is_available():
            from ray.train.torch import get_device

            self.device = get_device()
        # where each rank runs (a collective: every worker builds its session), recorded by rank 0 in run.json
        self._workers = self.replicas.gather({"rank": self.replicas.rank, "hostname": socket.gethostname(),
                                              "node_id": ray.get_runtime_context().get_node_id()})

    def run_meta(self) -> dict[str, Any]:
        """run.json entries of this group: ``workers``, each rank's node id and hostname."""
        return {"workers": self._workers}

    @staticmethod
    def restore_state() -> dict[str, Any] | None:
        import ray.train

        from raynas.checkpoints import STATE_FILE, load_checkpoint

        ckpt = ray.train.get_checkpoint()
        if ckpt is None:
            return None
        with ckpt.as_directory() as d:
            return load_checkpoint(Path(d) / STATE_FILE)

    def trial_id(self) -> str:
        return self._trial_id

    def writer(self):
        from torch.utils.tensorboard import SummaryWriter

        Path(self._trial_dir).mkdir(parents=True, exist_ok=True)
        return SummaryWriter(log_dir=self._trial_dir)

    @staticmethod
    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        """Every worker reports every epoch; rank 0 adds its checkpoint when one is due."""
        import ray.train

        from raynas.checkpoints import STATE_FILE, save_checkpoint

        if state is None:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(Path(tmp) / STATE_FILE, state)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def _worker(loop: dict[str, Any]) -> None:
    """One worker: the fixed run's epoch loop on its slice of every batch. A user error or a divergence is
    reported as the last result (every worker meets it at the same step) instead of being retried."""
    import ray.train

    from raynas.config import FIXED
    from raynas.errors import RaynasError, TrainingDiverged
    from trainables.common import trial_config

    config = loop["config"]
    try:
        loop["fit"](config, trial_config(config, FIXED), loop["run"], method=loop["method"],
                    session=WorkerSession(loop["trial_id"], loop["trial_dir"]))
    except TrainingDiverged as exc:
        ray.train.report({"diverged": True, "error": str(exc)})
    except RaynasError as exc:
        ray.train.report({"user_error": type(exc).__name__, "error": str(exc)})
