"""EAGAN (Ying et al.): two-stage evolutionary GAN search on weight-sharing supernets.

Stage g searches G against a fixed D (many-to-one training), stage d searches D against copies of the
best G (one-to-one training with weight resetting); NSGA-II selects on IS / FID / size. The science is
in this package (``setup``: what a stage trains; ``training``: the round trainers; ``smoke``: one round
in-process); ``trainables/eagan`` hosts it on Ray (a SupernetHost actor trains, Evaluator actors score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from raynas.config import gan_training, setting
from raynas.methods.spec import Flag, Method, register
from raynas.results.schema import register_columns


@dataclass(frozen=True)
class EaganConfig(gan_training(gen_batch_size=40, dis_batch_size=80)):
    population: int = setting(32, lo=4, doc="P: candidates per round (even); keeps P/2, breeds P/2")
    rounds: int = setting(18, lo=1, doc="R: evolution rounds per stage")
    epochs_per_round: int = setting(10, lo=1, doc="E: supernet training epochs per round")
    warmup_epochs: int = setting(50, lo=0, doc="uniformly random subnets per batch before round 0")
    stages: tuple[str, ...] = setting(("g", "d"), choices=("g", "d", "gd"),
                                      doc="g = stage 1 (search G, fixed D); d = stage 2 (search D); "
                                          "gd alone = the coupled baseline (G and D evolved together, Fig. 6)")
    search_gf_dim: int = setting(64, lo=4, doc="G supernet width while searching (retrain uses model.gf_dim)")
    search_df_dim: int = setting(64, lo=4, doc="D supernet width while searching")
    fixed_d_genotype: str | None = setting(None, doc="stage g's fixed D as an eagan-d genotype JSON (e.g. an earlier "
                                                     "run's best_D.json: the paper's EAGAN-GD3); None = AutoGAN D")
    stage_g_n_critic: int = setting(1, lo=1, hi=100, doc="stage g (and the coupled stage gd): D steps per G step")
    stage_d_n_critic: int = setting(1, lo=1, hi=100, doc="stage d: D steps per G step (retrain uses train.n_critic)")
    objectives: tuple[str, ...] = setting(("is", "fid", "params"), choices=("is", "fid", "kid", "params"))
    searcher: str = setting("nsga2", choices=("nsga2", "random"),
                            doc="random = the random-search baseline: every round scores P uniform samples "
                                "(same supernet training, Evaluators and rounds as NSGA-II)")
    crossover_prob: float = setting(0.3, lo=0.0, hi=1.0)
    mutation_prob: float = setting(0.5, lo=0.0, hi=1.0)
    weight_resetting: bool = setting(True, doc="stage 2: reset every G copy to the best pair's G after each round")
    select_by: str = setting("fid", choices=("fid", "is"), doc="picks best_G/best_D from the final Pareto front")
    workers: int = setting(2, lo=1, hi=256, doc="parallel Evaluator actors")
    evaluator_gpu: float = setting(0.125, lo=0.0, hi=1.0, doc="GPU fraction per Evaluator when GPUs exist")
    evaluator_cpu: float = setting(1.0, lo=0.0)
    host_gpu: float = setting(0.5, lo=0.0, hi=1.0, doc="GPU for the SupernetHost when GPUs exist")
    host_cpu: float = setting(1.0, lo=0.0)


def _per_stage_n_critic(data: dict[str, Any]) -> None:
    """Searches saved before the per-stage keys used ``train.n_critic`` in both stages."""
    eagan = data.get("eagan")
    if isinstance(eagan, dict):
        n_critic = (data.get("train") or {}).get("n_critic", 1)
        eagan.setdefault("stage_g_n_critic", n_critic)
        eagan.setdefault("stage_d_n_critic", n_critic)


EAGAN = register(Method(
    name="eagan", section="eagan", task="gan", config=EaganConfig, shape="population",
    summary="EAGAN two-stage evolutionary GAN search (G, then D) on weight-sharing supernets",
    spaces=("eagan-g", "eagan-d", "eagan-gd"),
    runner="trainables.eagan.driver:run_eagan",
    network_sizes="raynas.methods.eagan.setup:network_sizes",
    ablation_runner="trainables.eagan.driver:run_grid",
    default_grid=("eagan.crossover_prob=0.3,0.9",),
    check="raynas.methods.eagan.setup:preflight_eagan",
    placement="trainables.eagan.driver:check_placement",
    resources_keys=("eagan.evaluator_cpu", "eagan.evaluator_gpu"),
    outputs=("best_G.json", "best_D.json", "best_GD.json", "best_G.pt", "best_D.pt"),
    flags=(Flag("--workers", "parallel Evaluator actors (default: eagan.workers)", sets="eagan.workers",
                kind="int"),),
    upgrades=(_per_stage_n_critic,),
    smoke="raynas.methods.eagan.smoke:one_round",
    smoke_overrides=("eagan.population=4", "eagan.warmup_epochs=0", "eagan.iters_per_epoch=1",
                     "eagan.epochs_per_round=1", "eagan.search_gf_dim=8", "eagan.search_df_dim=8",
                     "eagan.gen_batch_size=4", "eagan.dis_batch_size=4", "model.latent_dim=12",
                     "eval.num_samples=16", "eval.batch_size=16", "data.limit=64", "eval.metrics=is,fid",
                     "eagan.stages=[g]", "eagan.rounds=1", "eagan.workers=1"),
))
# `raynas results`: a candidate's rank (0 = the round's Pareto front), whether it was the round's pick, its scores
register_columns("eagan", ("rank", "best", "is_mean", "fid", "kid_mean", "params", "train_seconds", "eval_seconds"))

from raynas.methods.eagan import figures as _figures  # noqa: E402,F401  (registers its figures)
