"""raynas inside your own Ray Tune code (docs/cluster.md, "raynas inside your own Tuner").

1. NSGA-II (raynas's ``NSGA2TuneSearcher``) searching over *your own* trainable;
2. raynas's fixed-GAN trainable in your own ``Tuner`` with a grid over config keys, and its Pareto front;
3. a raynas differentiable search (DARTS) in your own ``Tuner`` with a grid over seeds.

    python examples/user_tuner.py            # small CPU settings (a few minutes on 2 cores)
    python examples/user_tuner.py --tiny     # what the test runs (well under a minute of training)
    python examples/user_tuner.py --storage s3://my-bucket/tune   # Tune's storage_path: a folder or a URI

The raynas trainables take a flat dict of the usual ``--set`` keys (plus ``preset``, and ``method`` for a
search); every experiment gets a raynas run of its own in ``EXPERIMENT/raynas`` (one Parquet table for all
its trials). Use absolute paths in the config (``data.root``...): trials run in their own directories.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout, too
# Token authentication for the local Ray that Tune starts. Ray reads RAY_AUTH_MODE once, when it is imported:
# set after `import ray`, the GCS (a child process) would start with token auth and this driver without, and
# ray.init would fail with "Failed to start GCS". So it is set here, before anything imports Ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")

from ray import tune  # noqa: E402

from searchers.tune_adapter import NSGA2TuneSearcher  # noqa: E402
from trainables.tuner import experiment_run, pareto_table, search_trial, train_fixed  # noqa: E402

TINY_GAN = {"model.gf_dim": 8, "model.df_dim": 8, "model.latent_dim": 12, "train.iters_per_epoch": 2,
            "train.gen_batch_size": 8, "train.dis_batch_size": 8, "eval.num_samples": 64, "eval.batch_size": 64,
            "data.limit": 128, "train.epochs": 1}
SMALL_GAN = {"train.epochs": 2, "train.iters_per_epoch": 40, "eval.num_samples": 500}
TINY_DARTS = {"darts.layers": 3, "darts.channels": 4, "darts.steps": 2, "darts.multiplier": 2, "darts.batch_size": 16,
              "darts.epochs": 1, "data.limit": 64, "data.test_limit": 64, "model.layers": 3, "model.channels": 4,
              "train.batch_size": 32, "train.eval_batch_size": 64}


# ---------------------------------------------------------------------- 1. NSGA-II over your own trainable
def my_trainable(config):
    """Your own objective: here two conflicting costs of an integer vector (a stand-in for your model)."""
    v = config["v"]
    tune.report({"cost": float(sum(v)), "error": float(sum((4 - x) ** 2 for x in v))})


def nsga2_over_my_trainable(storage: str, generations: int = 3, pop: int = 6):
    searcher = NSGA2TuneSearcher(n_choices=[5, 5, 5], to_config=lambda v: {"v": list(v)},
                                 metric=["cost", "error"], mode=["min", "min"], pop_size=pop,
                                 max_generations=generations, seed=0)
    tuner = tune.Tuner(my_trainable,
                       tune_config=tune.TuneConfig(search_alg=searcher, num_samples=pop * generations),
                       run_config=tune.RunConfig(name="nsga2-own", storage_path=storage, verbose=0))
    results = tuner.fit()
    return results, pareto_table(results, {"cost": "min", "error": "min"})


# ---------------------------------------------------------------------- 2. raynas's fixed GAN in a grid
def gan_grid(storage: str, tiny: bool = True):
    space = {"preset": "quickstart", **(TINY_GAN if tiny else SMALL_GAN),
             "train.lr_g": tune.grid_search([1e-4, 2e-4])}
    tuner = tune.Tuner(tune.with_resources(train_fixed, {"cpu": 1}), param_space=space,
                       run_config=tune.RunConfig(name="gan-grid", storage_path=storage, verbose=0))
    results = tuner.fit()
    return results, pareto_table(results, {"fid": "min", "is_mean": "max"})


# ---------------------------------------------------------------------- 3. a differentiable search in a grid
def darts_grid(storage: str, tiny: bool = True):
    space = {"preset": "quickstart-classify", "method": "darts", **(TINY_DARTS if tiny else {}),
             "train.seed": tune.grid_search([0, 1])}
    tuner = tune.Tuner(tune.with_resources(search_trial, {"cpu": 1}), param_space=space,
                       run_config=tune.RunConfig(name="darts-grid", storage_path=storage, verbose=0))
    results = tuner.fit()
    return results, pareto_table(results, {"val_acc": "max", "params": "min"})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--storage", default=os.path.abspath("tune-runs"), help="Tune storage_path: folder or URI")
    p.add_argument("--tiny", action="store_true", help="the test's tiny settings")
    args = p.parse_args(argv)
    _, front = nsga2_over_my_trainable(args.storage, 2 if args.tiny else 4, 4 if args.tiny else 8)
    print("NSGA-II over my_trainable, Pareto front:\n", front[["config/v", "cost", "error"]].to_string(index=False))
    results, front = gan_grid(args.storage, args.tiny)
    print("\nfixed GAN grid, Pareto front (fid, is_mean):\n",
          front[["config/train.lr_g", "fid", "is_mean"]].to_string(index=False))
    print(f"raynas results table of the grid: {experiment_run(results).location}")
    _, front = darts_grid(args.storage, args.tiny)
    print("\nDARTS search grid, Pareto front (val_acc, params):\n",
          front[["config/train.seed", "val_acc", "params"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
