"""Ray actors for weight-sharing search: the supernet lives in one place, evaluation fans out.

``SupernetHost`` owns a supernet, its optimisers and the real-data source, and trains where the
weights live (GPU-pinned when GPUs exist); it hands its weights out once per round through the
object store. ``Evaluator`` actors (fractional GPUs allowed) keep the real statistics warm and score
candidates in parallel. All the science is in ``raynas.methods.eagan`` and ``raynas.metrics``.
"""

from __future__ import annotations

from typing import Any

import ray
import torch

from raynas.checkpoints import load_checkpoint, save_checkpoint
from raynas.config import RaynasConfig, from_dict
from raynas.device import training_setup
from raynas.errors import RaynasError
from raynas.gan.augment import search_augment
from raynas.methods.eagan.setup import build_search_discriminator, build_search_generator, search_step_config
from raynas.spaces import Genotype, get_space


def _cpu_state(module_state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in module_state.items()}


class _Checked:
    """Ray reports an exception from an actor's __init__ only as 'actor died' (the RaynasError and its
    message are lost), so setup errors are kept and re-raised by ``ready()``, a normal method call."""

    _error: Exception | None = None

    def ready(self) -> bool:
        if self._error is not None:
            raise self._error
        return True

    def _maybe_die(self) -> None:
        """Fault injection for the recovery tests: exit this actor's process once (the marker file says so)."""
        import os

        marker = getattr(self, "_fault", None)
        if not marker:
            return
        try:  # exclusive create: of several actors sharing the marker, exactly one dies
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)

    def placement(self) -> tuple[list, str, str]:
        """(GPU ids Ray assigned, torch device used, Ray node id): fractional GPUs shared, nodes used."""
        return list(ray.get_gpu_ids()), str(getattr(self, "device", "?")), ray.get_runtime_context().get_node_id()


@ray.remote
class SupernetHost(_Checked):
    """Trains one stage's supernet round by round where the weights live."""

    def __init__(self, config: dict[str, Any], stage: str, best_g: dict[str, Any] | None = None,
                 fault: str | None = None, train_threads: int | None = None):
        self._fault = fault
        # Ray caps this process's threads at its own CPU reservation; while it trains, the Evaluators (which
        # reserve the rest of the search's CPUs) are idle, so training may use their cores too.
        import os

        self.train_threads = max(1, min(int(train_threads or 1), os.cpu_count() or 1))
        try:
            self._setup(config, stage, best_g)
        except RaynasError as exc:
            self._error = exc

    def _setup(self, config: dict[str, Any], stage: str, best_g: dict[str, Any] | None) -> None:
        from raynas.gan.setup import gan_setup
        from raynas.methods.eagan.training import CoupledTrainer, ManyToOneTrainer, OneToOneTrainer

        cfg = from_dict(RaynasConfig, config)
        self.cfg, self.stage = cfg, stage
        e = cfg.eagan
        setup = gan_setup(cfg, dis_batch_size=e.dis_batch_size, iters_per_epoch=e.iters_per_epoch,
                          seed_offset={"g": 0, "d": 1000, "gd": 2000}[stage])
        self.device, precision, real = setup.device, setup.precision, setup.real
        step_cfg = search_step_config(cfg, stage)
        common = {"lr_g": e.lr_g, "lr_d": e.lr_d, "betas": (cfg.train.beta1, cfg.train.beta2),
                  "iters_per_epoch": setup.iters_per_epoch, "seed": cfg.train.seed,
                  "augment": search_augment(cfg.train, "EAGAN")}
        if stage == "g":
            self.trainer = ManyToOneTrainer(build_search_generator(cfg), build_search_discriminator(cfg), real,
                                            step_cfg, precision, **common)
        elif stage == "gd":
            self.trainer = CoupledTrainer(build_search_generator(cfg), build_search_discriminator(cfg, supernet=True),
                                          real, step_cfg, precision, **common)
        else:
            assert best_g is not None, "stage d needs the best generator of stage g"
            G = build_search_generator(cfg, Genotype.from_json(best_g["genotype"]))
            G.load_state_dict(best_g["state"])
            self.trainer = OneToOneTrainer(G, build_search_discriminator(cfg, supernet=True), e.population, real,
                                           step_cfg, precision, **common)

    def device_name(self) -> str:
        return str(self.device) + (f" ({torch.cuda.get_device_name(self.device)})"
                                   if self.device.type == "cuda" else "")

    def train(self, population: list[str] | None, epochs: int) -> dict[str, float]:
        """``population`` as genotype JSON strings; None = warm-up with random subnets."""
        genotypes = None if population is None else [Genotype.from_json(g) for g in population]
        if genotypes is not None:
            self._maybe_die()
        before = torch.get_num_threads()
        torch.set_num_threads(max(before, self.train_threads))
        try:
            return self.trainer.train(genotypes, epochs)
        finally:
            torch.set_num_threads(before)

    def weights(self) -> Any:
        """CPU weights for the Evaluators: the G supernet (stages g, gd) or the P G copies (stage d)."""
        if self.stage != "d":
            return _cpu_state(self.trainer.G.state_dict())
        return [_cpu_state(g.state_dict()) for g in self.trainer.generators_in_population_order()]

    def export_generator(self, genotype_json: str) -> dict[str, Any]:
        """Derived search-width G with the supernet's weights (stage g → stage d hand-over)."""
        return _cpu_state(self.trainer.generator(Genotype.from_json(genotype_json)).state_dict())

    def export_discriminator(self, genotype_json: str) -> dict[str, Any]:
        return _cpu_state(self.trainer.D.export(Genotype.from_json(genotype_json)).state_dict())

    def reset_generators(self, best: int) -> None:
        self.trainer.reset_generators(best)

    def save(self, path: str) -> str:
        save_checkpoint(path, self.trainer.state_dict())
        return path

    def load(self, path: str) -> None:
        self.trainer.load_state_dict(load_checkpoint(path, map_location=self.device))


@ray.remote
class Evaluator(_Checked):
    """Scores candidates: IS/FID/KID of a generator plus the candidate's parameter count."""

    def __init__(self, config: dict[str, Any], stage: str, best_g_genotype: str | None = None,
                 fault: str | None = None):
        self._fault = fault
        try:
            self._setup(config, stage, best_g_genotype)
        except RaynasError as exc:
            self._error = exc

    def _setup(self, config: dict[str, Any], stage: str, best_g_genotype: str | None) -> None:
        from raynas.metrics import DatasetSource

        cfg = from_dict(RaynasConfig, config)
        self.cfg, self.stage = cfg, stage
        setup = training_setup(cfg.train)
        self.device, self.precision = setup.device, setup.precision
        if stage == "d":
            self.G = build_search_generator(cfg, Genotype.from_json(best_g_genotype)).to(self.device)
        else:
            self.G = build_search_generator(cfg).to(self.device)
        self.G.eval()
        d, e = cfg.data, cfg.eval
        self.real = DatasetSource(d.name, e.real_split, root=d.root, resolution=d.resolution, channels=d.channels)
        self._params: dict[str, int] = {}

    def params(self, genotype: Genotype) -> int:
        key = genotype.to_json()
        if key not in self._params:
            from raynas.nn.profile import count_params

            if self.stage == "gd":  # the pair's size: G and D together
                g, d = get_space("eagan-gd").split(genotype)
                n = count_params(build_search_generator(self.cfg, g)) + count_params(
                    build_search_discriminator(self.cfg, d))
            elif self.stage == "g":
                n = count_params(build_search_generator(self.cfg, genotype))
            else:
                n = count_params(build_search_discriminator(self.cfg, genotype))
            self._params[key] = n
        return self._params[key]

    def _generator(self, weights: Any, index: int, genotype: Genotype, loaded: bool = False) -> torch.nn.Module:
        """The generator that candidate ``index`` is scored by: its G copy (stage d) or its path through the
        G supernet (stage g; a pair's G in stage gd). ``loaded``: supernet weights are already in place."""
        from raynas.nn.registry import SubnetView

        if self.stage == "d":
            self.G.load_state_dict(weights[index])
            return self.G
        if not loaded:
            self.G.load_state_dict(weights)
        if self.stage == "gd":
            genotype = get_space("eagan-gd").split(genotype)[0]
        return SubnetView(self.G, genotype)

    def score(self, weights: Any, jobs: list[tuple[int, str]]) -> list[dict[str, Any]]:
        """``jobs`` = (population index, genotype JSON); weights come once per round from the host."""
        from raynas.metrics import evaluate_generator

        self._maybe_die()
        e = self.cfg.eval
        if self.stage != "d":
            self.G.load_state_dict(weights)  # once: every candidate is a path through it
        rows = []
        for index, genotype_json in jobs:
            genotype = Genotype.from_json(genotype_json)
            generator = self._generator(weights, index, genotype, loaded=True)
            generator.eval()
            m = evaluate_generator(generator, self.cfg.model.latent_dim, self.real, metrics=e.metrics,
                                   protocol=e.protocol, num_samples=e.num_samples or None, extractor=e.extractor,
                                   inception_weights=e.inception_weights, device=self.device,
                                   batch_size=e.batch_size, precision=self.precision)
            rows.append({"index": index, "params": self.params(genotype), **m.as_row(),
                         "device": str(self.device)})
        return rows

    @torch.no_grad()
    def samples(self, weights: Any, index: int, genotype_json: str, n: int = 64) -> torch.Tensor:
        """A sample grid (in [0, 1], CPU) of one candidate, for TensorBoard."""
        from raynas.gan.step import sample_latent

        generator = self._generator(weights, index, Genotype.from_json(genotype_json))
        generator.eval()
        z = sample_latent(n, self.cfg.model.latent_dim, self.device,
                          torch.Generator(device="cpu").manual_seed(0))
        return ((generator(z).float().clamp(-1, 1) + 1) / 2).cpu()
