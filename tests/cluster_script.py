"""Run by tests/ray/test_cluster.py in a subprocess of its own (so the pytest process's Ray is untouched): a
two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``), a tiny EAGAN round, a tiny Tune
grid of DARTS searches and a 2-worker data-parallel ``raynas train``, all stored at a ``file://`` URI (the
object-store code path). The two nodes share
neither Ray's temporary folder nor raynas's staging folder (the second node has its own of each), as nodes
of a real cluster share no disk. Prints one JSON line ``RESULT {...}`` with what the test checks.

usage: python tests/cluster_script.py STORE_DIR NODE_B_TEMP
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAYNAS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

EAGAN = [
    "eagan.population=4", "eagan.rounds=1", "eagan.stages=[g]", "eagan.epochs_per_round=1", "eagan.warmup_epochs=0",
    "eagan.iters_per_epoch=2", "eagan.search_gf_dim=8", "eagan.search_df_dim=8", "eagan.gen_batch_size=8",
    "eagan.dis_batch_size=8", "eagan.workers=2", "eagan.evaluator_cpu=0.5", "eagan.host_cpu=1",
    "model.latent_dim=12", "eval.num_samples=64", "eval.batch_size=64", "data.limit=128",
]
GRID = [  # a DARTS search per trial: TensorBoard events, HParams sessions and genotype files of its own
    "darts.layers=3", "darts.channels=4", "darts.steps=2", "darts.multiplier=2", "darts.batch_size=16",
    "darts.epochs=1", "data.limit=64", "data.test_limit=64", "model.layers=3", "model.channels=4",
    "train.batch_size=32", "train.eval_batch_size=64",
]
DATA_PARALLEL = [  # `raynas train --num-workers 2`: one tiny classifier epoch, 4 steps of 16 images (8 each)
    "data.limit=64", "data.test_limit=64", "model.layers=3", "model.channels=4", "train.batch_size=16",
    "train.sync_bn=true", "train.eval_batch_size=64", "train.epochs=1",
]


def main(store: Path, node_b_temp: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    import trainables.eagan.driver as driver
    from raynas.cli import main as raynas

    env = {"RAYNAS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "RAYNAS_CACHE": os.environ.get("RAYNAS_CACHE", str(store / "cache"))}
    # Two nodes of one CPU each: a trial (cpu=1) or the SupernetHost (1 CPU) fills a node, so the host and
    # the two Evaluators (0.5 CPU each), and the grid's two trials, must land on different nodes.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"node_a": 1}})
    cluster.add_node(num_cpus=1, resources={"node_b": 1}, temp_dir=str(node_b_temp / "ray"),
                     env_vars={"RAYNAS_STAGING": str(node_b_temp / "staging")})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, runtime_env={"env_vars": env}, logging_level="WARNING")
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])

    placements: list = []
    start_actors = driver.EaganSearch._start_actors

    def recording(self, stage, best_g):  # the actors' own report of where they run
        host, evaluators = start_actors(self, stage, best_g)
        ray.get([a.ready.remote() for a in [host, *evaluators]])
        placements.append([ray.get(a.placement.remote())[2] for a in [host, *evaluators]])
        return host, evaluators

    driver.EaganSearch._start_actors = recording
    uri = f"file://{store}/runs"
    argv = ["search", "eagan", "--preset", "quickstart", "--storage", uri, "--name", "eagan"]
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        eagan_code = raynas([*argv, *(x for item in EAGAN for x in ("--set", item))])
    sys.stdout.write(printed.getvalue())

    from ray import tune

    from raynas.config import load_config
    from raynas.results import RunDir
    from trainables.launch import run_trainable

    cfg = load_config("quickstart-classify", [*GRID, f"run.output_dir={uri}"], method="darts")
    run = RunDir.create(uri, "grid", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    results = run_trainable(node_reporting, cfg, run, resources={"cpu": 1},
                            param_space={"train.seed": tune.grid_search([0, 1])})
    trial_nodes = [r.metrics.get("node_id") for r in results]
    # Two data-parallel workers of one CPU each (the nodes are free again): one fits on each node, so Ray Train
    # places them on different nodes and they train over gloo between the nodes; run.json records where.
    dp_code = raynas(["train", "--preset", "quickstart-classify", "--num-workers", "2", "--resources", "cpu=1",
                      "--storage", uri, "--name", "dp", *(x for item in DATA_PARALLEL for x in ("--set", item))])
    dp_run = RunDir.open(uri + "/dp")
    dp_rows = dp_run.read() if dp_code == 0 else None
    grid_rows = RunDir.open(uri + "/grid").read()
    eagan_rows = RunDir.open(uri + "/eagan").read()
    print("RESULT " + json.dumps({
        "nodes": nodes, "eagan_code": eagan_code, "placements": placements, "trial_nodes": trial_nodes,
        "grid_rows": len(grid_rows), "grid_candidates": sorted(grid_rows["candidate_id"].unique().tolist()),
        "trial_ids": sorted(r.metrics["trial_id"] for r in results),
        "eagan_rows": len(eagan_rows), "eagan_candidates": sorted(eagan_rows["candidate_id"].tolist()),
        "eagan_lines": [ln for ln in printed.getvalue().splitlines() if ln.startswith("raynas: ")],
        "dp_code": dp_code, "dp_meta": {k: dp_run.meta.get(k) for k in ("num_workers", "workers")},
        "dp_rows": None if dp_rows is None else json.loads(dp_rows.to_json(orient="records")),
    }), flush=True)
    ray.shutdown()
    cluster.shutdown()


def node_reporting(config):
    """A DARTS search trial, reporting the node it ran on (the grid's trials must spread over both nodes)."""
    import ray
    from ray import tune

    from trainables.search_trial import search_trial

    search_trial(config)
    tune.report({"node_id": ray.get_runtime_context().get_node_id()})


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())
