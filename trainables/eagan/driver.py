"""EAGAN two-stage search on Ray: a SupernetHost trains, Evaluators score, NSGA-II selects.

This module is the stage and round loop and the actors' lifecycle (placement, restarts); the search state and
resume are ``search_state``, TensorBoard and progress lines ``reporting``, a round's plain arithmetic
(objectives, best pick, merged stats) ``round_results``.

This is a driver loop rather than a Tune trial because the whole population shares one supernet:
the unit of work is a round (train E epochs where the weights live, publish them once, score P
candidates in parallel), not an independent trial. Every completed round is checkpointed (host
state + searcher state + population), so a killed search resumes at the next round.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import ray
from tqdm import tqdm

from raynas import signals
from raynas.checkpoints import save_checkpoint
from raynas.config import RaynasConfig
from raynas.errors import RaynasError, RunDirError
from raynas.methods import SearchOutcome, SearchRequest
from raynas.progress import Progress, interactive
from raynas.results import RunDir
from raynas.results.rows import plain_rows
from raynas.results.runs import mark_ended, mark_started
from raynas.results.summary import write_summary
from raynas.spaces import Genotype, get_space
from searchers.nsga2 import NSGA2Searcher
from trainables.eagan.actors import Evaluator, SupernetHost
from trainables.eagan.reporting import RoundReporting, fmt
from trainables.eagan.round_results import (
    DIRECTIONS,
    SPACE_OF_STAGE,
    merge_train_stats,
    objective_values,
    pick_best,
)
from trainables.eagan.search_state import STATE_FILE, SearchState, round_key
from trainables.hparams import log_population
from trainables.launch import check_fits, find_user_error


def actor_options(cfg: RaynasConfig, workers: int | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Ray options of the SupernetHost and of each Evaluator, refused up front when they can never fit.

    GPU fractions apply only when the cluster has GPUs; the defaults (0.5 + 4 × 0.125) fill one GPU.
    """
    e = cfg.eagan
    workers = workers or e.workers
    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    host_opts = {"num_gpus": e.host_gpu if has_gpu else 0, "num_cpus": e.host_cpu}
    eval_opts = {"num_gpus": e.evaluator_gpu if has_gpu else 0, "num_cpus": e.evaluator_cpu}
    check_fits(f"EAGAN (1 SupernetHost + {workers} Evaluators)",
               [{"cpu": o["num_cpus"], "gpu": o["num_gpus"]} for o in [host_opts] + [eval_opts] * workers],
               fix="lower the per-actor resources (--resources gpu=0,cpu=0.5 for each Evaluator, "
                   "--set eagan.host_gpu=0.5 --set eagan.host_cpu=1) or use fewer --workers")
    return host_opts, eval_opts


def make_searcher(cfg: RaynasConfig, stage: str) -> NSGA2Searcher:
    """NSGA-II over a stage's space with the config's objectives and operator probabilities (``eagan.searcher
    random``: the random-search baseline, same host, Evaluators and rounds, P fresh uniform samples a round)."""
    e = cfg.eagan
    if e.searcher == "random":
        from searchers.random_search import RandomSearcher

        return RandomSearcher(get_space(SPACE_OF_STAGE[stage]), [(o, DIRECTIONS[o]) for o in e.objectives],
                              e.population, seed=cfg.train.seed)  # type: ignore[return-value]
    return NSGA2Searcher.for_space(get_space(SPACE_OF_STAGE[stage]),
                                   objectives=[(o, DIRECTIONS[o]) for o in e.objectives], pop_size=e.population,
                                   crossover_prob=e.crossover_prob, mutation_prob=e.mutation_prob,
                                   seed=cfg.train.seed)


def check_placement(cfg: RaynasConfig) -> None:
    """The CLI's up-front check (Ray already started): the host and every Evaluator must fit at once."""
    actor_options(cfg)


def run_eagan(request: SearchRequest) -> SearchOutcome:
    """``raynas search eagan``: the two-stage search in the driver process, actors on the cluster."""
    cfg, run = request.cfg, request.run
    outputs = EaganSearch(cfg, run, progress=request.progress).run_search()
    files = {k: v for k, v in outputs.items() if k.endswith(".json")}
    retrain = None
    if "best_G.json" in files:
        d = f" {run.where('best_D.json')}" if "best_D.json" in files else ""
        retrain = f"raynas retrain {run.where('best_G.json')}{d} --preset {cfg.preset}"
    return SearchOutcome(outputs=files, retrain=retrain,
                         notes=(f"Pareto front: raynas results {run.where()} --pareto is_mean:max,fid:min,params:min",
                                f"TensorBoard: tensorboard --logdir {run.where('tensorboard')}"))


class EaganSearch(SearchState, RoundReporting):
    """One EAGAN search run: stages g then d, rounds, checkpoints, outputs."""

    MAX_RESTARTS = 3  # per stage, host and Evaluators each: beyond that something is wrong with the node

    def __init__(self, cfg: RaynasConfig, run: RunDir, *, workers: int | None = None, progress: bool = True,
                 faults: dict[str, str] | None = None, budget_seconds: float | None = None):
        self.cfg, self.run = cfg, run
        # ``raynas compare --budget device-hours=H``: a stage ends after the round in which this many seconds
        # (wall clock of this process's search) are spent; a later stage still runs its warm-up and one round
        self.budget_seconds, self.budget_stopped = budget_seconds, False
        self._started = time.perf_counter()
        self.e = cfg.eagan
        self.workers = workers or self.e.workers
        # Fault injection for the recovery tests: {"host" | "evaluator": marker file}; the actor exits once.
        self.faults = dict(faults or {})
        self.restarts = {"host": 0, "evaluator": 0}
        self.progress = progress
        # tqdm's nested bars on a terminal; a log file or pipe gets plain lines (a bar writes control characters)
        self.bars = progress and interactive()
        self.state_path = run.path / STATE_FILE
        # Absolute: the SupernetHost writes here from its own working directory (on a multi-node cluster
        # the run directory must be on storage shared by the nodes).
        self.ckpt_dir = run.path.resolve() / "checkpoints"
        self.ckpt_dir.mkdir(exist_ok=True)
        self.objectives = tuple(self.e.objectives)
        self._writer = None  # TensorBoard, opened at the first round's log (a run that fails to start writes none)

    # ------------------------------------------------------------------ actors
    def actor_options(self) -> tuple[dict[str, float], dict[str, float]]:
        """Ray options of the SupernetHost and of each Evaluator, refused up front when they can never fit."""
        return actor_options(self.cfg, self.workers)

    def _start_actors(self, stage: str, best_g: dict[str, Any] | None):
        # once per stage: the placement check (and its warning) and the config, reused by actor restarts
        self._actor_args = (stage, best_g, *self.actor_options(), self.cfg.to_dict())
        # The host is placed before any Evaluator asks for its fraction: created together, the Evaluators could
        # take a share of every node and leave no node with the host's whole CPU (or GPU share), and the
        # search would wait forever (seen on a two-node cluster of one CPU each).
        host = self._new_host()
        try:
            ray.get(host.ready.remote())
        except BaseException:
            ray.kill(host)
            raise
        return host, [self._new_evaluator() for _ in range(self.workers)]

    def _new_host(self):
        stage, best_g, host_opts, _, config = self._actor_args
        threads = round(host_opts["num_cpus"] + self.workers * self.e.evaluator_cpu)
        return SupernetHost.options(**host_opts).remote(config, stage, best_g, fault=self.faults.get("host"),
                                                        train_threads=threads)

    def _new_evaluator(self):
        stage, best_g, _, eval_opts, config = self._actor_args
        return Evaluator.options(**eval_opts).remote(config, stage, best_g["genotype"] if best_g else None,
                                                     fault=self.faults.get("evaluator"))

    def _count_restart(self, which: str, error: BaseException) -> None:
        self.restarts[which] += 1
        if self.restarts[which] > self.MAX_RESTARTS:
            raise RaynasError(f"the {which} actor died {self.restarts[which]} times in this stage (last: "
                              f"{type(error).__name__}); the node is unhealthy. Results up to the last completed "
                              f"round are kept: fix the node and continue with --resume {self.run.location}") from None

    # ------------------------------------------------------------------ the search
    def run_search(self) -> dict[str, Path]:
        state = self._load_state()
        self._heal_rows(state)  # a damaged round part: rebuilt from the state's rows, or the resume stops here
        self.hv_ref = state.setdefault("hv_ref", {})  # per stage, fixed at its first round
        try:
            self._run_stages(state)
        except ray.exceptions.RayError as exc:  # a user mistake raised inside an actor
            user = find_user_error(exc)
            if user is None:
                raise
            raise type(user)(str(user)) from None
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return self._outputs(state)

    def _run_stages(self, state: dict[str, Any]) -> None:
        for stage in self.e.stages:
            if stage in state["done_stages"]:
                continue
            if stage == "d" and state["best_g"] is None:
                raise RunDirError("stage d needs stage g's best generator: run with eagan.stages=[g, d]")
            self._run_stage(stage, state)

    def _run_stage(self, stage: str, state: dict[str, Any]) -> None:
        space = get_space(SPACE_OF_STAGE[stage])
        searcher = make_searcher(self.cfg, stage)
        host, evaluators = self._start_actors(stage, state["best_g"] if stage == "d" else None)
        self.restarts = dict.fromkeys(self.restarts, 0)
        try:
            ray.get([actor.ready.remote() for actor in [host, *evaluators]])
            device = ray.get(host.device_name.remote())
            self.run.record_device(device.split(" (")[0])
            resuming = state["stage"] == stage and state["round"] >= 0
            if resuming:
                self._replay_rows(state)
                ray.get(host.load.remote(str(self._host_checkpoint(state))))
                searcher.load_state_dict(state["searcher"])
                start = state["round"] + 1
                self._say(f"stage {stage}: resuming after round {state['round']} from {state['host_checkpoint']}")
            else:
                start = 0
                if self.e.warmup_epochs:
                    self._say(f"stage {stage}: warm-up, {self.e.warmup_epochs} epochs of random subnets on {device}")
                    stats = self._train_epochs(host, None, self.e.warmup_epochs, f"stage {stage} warm-up")
                    self._say(f"stage {stage}: warm-up done in {stats['train_seconds']:.1f}s "
                              f"({stats['images_per_s']:.0f} img/s)")
            bar = tqdm(total=self.e.rounds, initial=start, desc=f"EAGAN stage {stage}", unit="round",
                       disable=not self.bars)
            plain = Progress(f"EAGAN stage {stage}", self.e.rounds, "rounds", bar=False) \
                if self.progress and not self.bars else None
            if plain is not None:
                plain.begin(start)
            best = None
            r = start
            while r < self.e.rounds:
                try:
                    best, rows = self._round(stage, r, space, searcher, host, evaluators, device)
                    self._after_round(stage, host, best)
                except ray.exceptions.RayActorError as exc:
                    if self._alive(host):
                        raise
                    host, searcher = self._recover_host(stage, r, state, exc)
                    continue  # the round runs again from the last completed round's state
                bar.update(1)
                bar.set_postfix(best_fid=fmt(best.get("fid")), best_is=fmt(best.get("is_mean")))
                if plain is not None:
                    plain.update(r + 1, f"best FID {fmt(best.get('fid'))} IS {fmt(best.get('is_mean'))}")
                self._commit_round(stage, r, host, searcher, rows, best, state)
                r += 1
                if self._budget_spent() and r < self.e.rounds:
                    self.budget_stopped = True
                    self._say(f"stage {stage}: the budget is spent after round {r - 1}; the stage ends there")
                    break
            bar.close()
            best = Genotype.from_json(state.get(f"last_best_{stage}")["genotype"])
            if stage == "gd":  # the coupled baseline's best pair: keep both halves, as the two stages do
                best.save(self.run.path / "best_GD.json")
                g_best, d_best = space.split(best)
            else:
                g_best, d_best = (best, None) if stage == "g" else (None, best)
            if g_best is not None:
                weights = ray.get(host.export_generator.remote(g_best.to_json()))
                state["best_g"] = {"genotype": g_best.to_json(), "state": weights}
                save_checkpoint(self.run.path / "best_G.pt", {"genotype": g_best.to_json(), "G": weights})
                g_best.save(self.run.path / "best_G.json")
            if d_best is not None:
                weights = ray.get(host.export_discriminator.remote(d_best.to_json()))
                state["best_d"] = {"genotype": d_best.to_json(), "state": weights}
                save_checkpoint(self.run.path / "best_D.pt", {"genotype": d_best.to_json(), "D": weights})
                d_best.save(self.run.path / "best_D.json")
            state["done_stages"].append(stage)
            state.update(stage=None, round=-1, searcher=None, host_checkpoint=None, last_rows=[])
            self._save_state(state)
        finally:
            for actor in [host, *evaluators]:
                ray.kill(actor)

    def _budget_spent(self) -> bool:
        return self.budget_seconds is not None and time.perf_counter() - self._started >= self.budget_seconds

    def _commit_round(self, stage: str, r: int, host, searcher: NSGA2Searcher, rows: list[dict[str, Any]],
                      best: dict[str, Any], state: dict[str, Any]) -> None:
        """Round ``r``'s rows, then its supernet checkpoint, then the search state that says it is done. The rows
        go first, keyed by round: a kill before the state lands runs the round again on resume (the searcher
        asks the same population), and its rows replace these, so the results never lag the state and never
        hold a round twice. Ctrl-C or SIGTERM meanwhile waits until all three have landed."""
        with signals.deferred():
            self.run.append(rows, key=round_key(stage, r))
            ckpt = str(self.ckpt_dir / f"stage-{stage}_round{r:03d}.pt")
            ray.get(host.save.remote(ckpt))
            state.setdefault("round_rows", {})[round_key(stage, r)] = plain_rows(rows)  # to rebuild a damaged part
            state.update(stage=stage, round=r, searcher=searcher.state_dict(), host_checkpoint=Path(ckpt).name,
                         last_rows=rows, **{f"last_best_{stage}": best})
            self._save_state(state)
            self._prune_checkpoints(stage, keep=ckpt)

    def _round(self, stage, r, space, searcher, host, evaluators,
               device) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        started = time.perf_counter()
        vectors = searcher.ask()
        population = [space.decode(v) for v in vectors]
        pop_json = [g.to_json() for g in population]
        train = self._train_epochs(host, pop_json, self.e.epochs_per_round, f"round {r} training")
        weights = host.weights.remote()  # published once; every Evaluator reads the same object
        eval_start = time.perf_counter()
        scores = self._score(evaluators, weights, pop_json, f"round {r} scoring")
        eval_seconds = time.perf_counter() - eval_start
        searcher.tell(vectors, [objective_values(s, self.objectives) for s in scores])
        ranks = searcher.ranks()
        best_i = pick_best(population, scores, ranks, self.e.select_by)
        wall = time.perf_counter() - started
        rows = []
        for i, (g, s) in enumerate(zip(pop_json, scores)):
            rows.append({**{k: v for k, v in s.items() if k != "index"},
                         "run_id": self.run.path.name, "method": "eagan", "stage": stage, "round": r,
                         "epoch": (r + 1) * self.e.epochs_per_round, "candidate_id": f"{stage}{r:03d}-{i:03d}",
                         "genotype": g, "rank": ranks[i], "best": i == best_i,
                         "train_seconds": train["train_seconds"], "eval_seconds": eval_seconds,
                         "wall_seconds": wall, "d_loss": train["d_loss"], "g_loss": train["g_loss"],
                         "train_batches": train["batches"][i],
                         "round_device": device})
        best = {**scores[best_i], "genotype": pop_json[best_i], "index": best_i}
        self._log_round(stage, r, scores, ranks, train, eval_seconds, weights, evaluators[0], best)
        log_population(self.writer, stage, r, rows)  # TensorBoard HParams: the population, Pareto plot, best
        return best, rows

    def _after_round(self, stage: str, host, best: dict[str, Any]) -> None:
        """Stage d's weight resetting: every G copy becomes the best pair's G (unless the ablation turns it off)."""
        if stage == "d" and self.e.weight_resetting:
            ray.get(host.reset_generators.remote(best["index"]))

    def _train_epochs(self, host, population: list[str] | None, epochs: int, desc: str) -> dict[str, Any]:
        """Train epoch by epoch, so a bar shows progress (a paper warm-up is 50 epochs); the stats cover all."""
        parts = [ray.get(host.train.remote(population, 1))
                 for _ in tqdm(range(epochs), desc=desc, unit="epoch", leave=False, disable=not self.bars)]
        return merge_train_stats(parts)

    def _score(self, evaluators, weights, pop_json: list[str], desc: str) -> list[dict[str, Any]]:
        """One task per candidate, dealt round-robin to the Evaluators; a bar advances as each finishes. An
        Evaluator that dies is replaced (``evaluators`` is updated in place) and its candidate scored again."""
        tasks = {}

        def submit(i: int, k: int) -> None:
            tasks[evaluators[k].score.remote(weights, [(i, pop_json[i])])] = (i, k, evaluators[k])

        for i in range(len(pop_json)):
            submit(i, i % len(evaluators))
        rows: list[dict[str, Any]] = []
        with tqdm(total=len(tasks), desc=desc, unit="cand", leave=False, disable=not self.bars) as bar:
            while tasks:
                done, _ = ray.wait(list(tasks), num_returns=1)
                i, k, actor = tasks.pop(done[0])
                try:
                    rows += ray.get(done[0])
                except ray.exceptions.RayActorError as exc:
                    if evaluators[k] is actor:  # the first of its failed tasks: replace the actor once
                        self._count_restart("evaluator", exc)
                        self._say(f"Evaluator {k} died while scoring candidate {i} ({type(exc).__name__}); "
                                  "restarting it and scoring its candidates again")
                        evaluators[k] = self._new_evaluator()
                    submit(i, k)
                    continue
                bar.update(1)
        return sorted(rows, key=lambda row: row["index"])

    @staticmethod
    def _alive(actor) -> bool:
        try:
            ray.get(actor.ready.remote(), timeout=60)
        except ray.exceptions.RayActorError:
            return False
        return True

    def _recover_host(self, stage: str, r: int, state: dict[str, Any], error: BaseException):
        """A new SupernetHost in the state of the last completed round (its checkpoint, or the stage's start and
        warm-up), and the searcher as it was then, so round ``r`` runs again exactly."""
        self._count_restart("host", error)
        resumed = state["stage"] == stage and state["round"] >= 0
        source = self._host_checkpoint(state).name if resumed else "the start of the stage"
        self._say(f"stage {stage} round {r}: the SupernetHost died ({type(error).__name__}); restarting it from "
                  f"{source} and running round {r} again")
        host = self._new_host()
        ray.get(host.ready.remote())
        searcher = make_searcher(self.cfg, stage)
        if resumed:
            ray.get(host.load.remote(str(self._host_checkpoint(state))))
            searcher.load_state_dict(state["searcher"])
        elif self.e.warmup_epochs:
            self._train_epochs(host, None, self.e.warmup_epochs, f"stage {stage} warm-up (again)")
        return host, searcher

    def _outputs(self, state: dict[str, Any]) -> dict[str, Path]:
        out = {"run": self.run.path, "results": self.run.results_dir}
        for name in ("best_G.json", "best_D.json", "best_GD.json"):
            if (self.run.path / name).exists():
                out[name] = self.run.path / name
        write_summary(self.run)  # a grid's cell too; the CLI writes the run's own again with its cost
        return out


def run_grid(request: SearchRequest) -> None:
    """``raynas ablate eagan``: one whole search per grid cell, one after another (each holds the cluster's
    actors), in ``RUN_DIR/cells/cell-NNN``; a killed grid resumes at its unfinished cell. Each finished cell
    appends one ``final`` row: its grid values, the best generator's scores of its last stage and the search's
    spend (wall seconds, supernet epochs; ``raynas compare`` runs EAGAN's seeds through here too)."""

    from raynas.config import RaynasConfig, apply_overrides, from_dict

    cfg, run = request.cfg, request.run
    done = set(run.read().get("candidate_id", []))
    for i, overrides in enumerate(request.options["cells"]):
        cell_id = f"cell-{i:03d}"
        if cell_id in done:
            continue
        data = apply_overrides(cfg.to_dict(), [f"{k}={json.dumps(v)}" for k, v in overrides.items()])
        ccfg = from_dict(RaynasConfig, data)
        sub = RunDir.create(run.path / "cells", cell_id, config=ccfg.to_dict(), seed=ccfg.train.seed,
                            preset=ccfg.preset, device=ccfg.train.device, exist_ok=True)  # a resumed cell reopens
        tqdm.write(f"raynas: grid cell {i + 1}/{len(request.options['cells'])}: {overrides} in {sub.where()}")
        started = time.perf_counter()
        search = EaganSearch(ccfg, sub, progress=request.progress,
                             budget_seconds=request.options.get("budget_seconds"))
        mark_started(sub)
        try:
            search.run_search()
        except KeyboardInterrupt:
            mark_ended(sub, "interrupted")
            raise
        mark_ended(sub, "finished")
        write_summary(sub)  # with the cell's status and time
        seconds = time.perf_counter() - started  # the whole search: actors' start, warm-up, rounds, outputs
        rows = sub.read()
        last = rows[rows["stage"] == rows["stage"].iloc[-1]]
        best = last[(last["round"] == last["round"].max()) & last["best"].astype(bool)].iloc[0]
        run.append([{"run_id": run.path.name, "method": "eagan", "stage": "final", "epoch": None, "round": None,
                     "candidate_id": cell_id, **{k.rsplit(".", 1)[-1]: v for k, v in overrides.items()},
                     "genotype": best["genotype"], "params": best["params"], "is_mean": best["is_mean"],
                     "fid": best["fid"], "cell_dir": sub.where(), "search_seconds": seconds,
                     "search_epochs": search_epochs(ccfg, rows),
                     "budget_stopped": search.budget_stopped, "device": sub.meta.get("device")}])


def search_epochs(cfg: RaynasConfig, rows) -> int:
    """Supernet-training epochs of a whole EAGAN search: each stage's warm-up and the rounds its ``rows`` hold."""
    e = cfg.eagan
    return sum(e.warmup_epochs + rows[rows["stage"] == st]["round"].nunique() * e.epochs_per_round
               for st in e.stages if (rows["stage"] == st).any())
