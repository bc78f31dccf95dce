"""One EAGAN round in-process, without Ray: the contract test's route from a config to a searched genotype
(stage g only: train the G supernet one round on NSGA-II's first population, score it, keep the best FID)."""

from __future__ import annotations

import math

import torch

from raynas.config import RaynasConfig
from raynas.gan.setup import gan_setup
from raynas.methods.eagan.setup import build_search_discriminator, build_search_generator, search_step_config
from raynas.methods.eagan.training import ManyToOneTrainer
from raynas.spaces import Genotype, get_space
from searchers.nsga2 import NSGA2Searcher


def one_round(cfg: RaynasConfig) -> Genotype:
    from raynas.metrics import DatasetSource, evaluate_generator
    from raynas.nn.registry import SubnetView

    e, d, ev = cfg.eagan, cfg.data, cfg.eval
    setup = gan_setup(cfg, dis_batch_size=e.dis_batch_size, iters_per_epoch=e.iters_per_epoch,
                      device=torch.device("cpu"))
    trainer = ManyToOneTrainer(build_search_generator(cfg), build_search_discriminator(cfg), setup.real,
                               search_step_config(cfg, "g"), setup.precision, lr_g=e.lr_g, lr_d=e.lr_d,
                               betas=(cfg.train.beta1, cfg.train.beta2), iters_per_epoch=setup.iters_per_epoch,
                               seed=cfg.train.seed)
    space = get_space("eagan-g")
    searcher = NSGA2Searcher.for_space(space, objectives=[("fid", "min")], pop_size=e.population,
                                       seed=cfg.train.seed)
    vectors = searcher.ask()
    population = [space.decode(v) for v in vectors]
    trainer.train(population, e.epochs_per_round)
    real = DatasetSource(d.name, ev.real_split, root=d.root, resolution=d.resolution, channels=d.channels)
    fids = []
    for g in population:
        view = SubnetView(trainer.G, g)
        view.eval()
        m = evaluate_generator(view, cfg.model.latent_dim, real, metrics=("fid",), protocol=ev.protocol,
                               num_samples=ev.num_samples or None, extractor=ev.extractor,
                               inception_weights=ev.inception_weights, device=setup.device,
                               batch_size=ev.batch_size)
        fids.append(m.fid if m.fid is not None and math.isfinite(m.fid) else math.inf)
    searcher.tell(vectors, [{"fid": f} for f in fids])
    return population[min(range(len(fids)), key=fids.__getitem__)]
