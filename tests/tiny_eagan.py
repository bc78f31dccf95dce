"""A tiny EAGAN search (two Evaluators, population 4, 8-wide supernets) for the tests that run one through
the CLI, in tests/methods and tests/ray alike."""

from __future__ import annotations

TINY = [
    "eagan.population=4", "eagan.epochs_per_round=1", "eagan.warmup_epochs=1", "eagan.iters_per_epoch=2",
    "eagan.search_gf_dim=8", "eagan.search_df_dim=8", "eagan.gen_batch_size=8", "eagan.dis_batch_size=8",
    "eagan.workers=2", "eagan.evaluator_cpu=0.5", "eagan.host_cpu=1", "model.latent_dim=12",
    "eval.num_samples=64", "eval.batch_size=64", "data.limit=256",
]


def search_args(tmp_path, name, *extra):
    out = ["search", "eagan", "--preset", "quickstart", "--output-dir", str(tmp_path), "--name", name]
    for item in [*TINY, *extra]:
        out += ["--set", item]
    return out
