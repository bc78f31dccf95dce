"""EAGAN's round trainers: only sampled paths move, one-to-one pairs, weight resetting."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from raynas.device import Precision
from raynas.gan.step import StepConfig
from raynas.methods.eagan.training import ManyToOneTrainer, OneToOneTrainer
from raynas.nn.discriminators import AutoGANDiscriminator
from raynas.nn.registry import build_network, build_supernet
from raynas.spaces import get_space


class RandomImages:
    def __init__(self, n=64, channels=1, res=32):
        self.x = torch.rand(n, channels, res, res) * 2 - 1

    def sample(self, n):
        return self.x[torch.randint(0, len(self.x), (n,))]

    def __len__(self):
        return len(self.x)


CPU = Precision.for_device(torch.device("cpu"))
STEP = StepConfig(gen_batch_size=4, dis_batch_size=4, latent_dim=12)
KW = {"lr_g": 1e-3, "lr_d": 1e-3, "betas": (0.0, 0.9), "iters_per_epoch": 3, "seed": 0}


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


def test_many_to_one_updates_only_population_paths():
    torch.manual_seed(0)
    space = get_space("eagan-g")
    g = build_supernet("eagan-g", resolution=32, channels=1, width=8, latent_dim=12)
    trainer = ManyToOneTrainer(g, AutoGANDiscriminator(8, 1), RandomImages(), STEP, CPU, **KW)
    population = [space.sample(random.Random(s)) for s in range(2)]
    g_before, d_before = _snapshot(trainer.G), _snapshot(trainer.D)
    stats = trainer.train(population, epochs=1)
    # hinge: relu(1 - D(x)) + relu(1 + D(G(z))) is 2 at zero logits, and an untrained pair stays near it (a NaN,
    # a flipped sign or BCE's 2·ln 2 = 1.39 would not); three D steps shared between the two sampled paths
    assert stats["d_loss"] == pytest.approx(2.0, abs=0.6) and sum(stats["batches"]) == KW["iters_per_epoch"]
    changed = _changed(g_before, trainer.G)
    active = {k for k in g_before for geno in population if g.is_active(k, geno)}
    assert changed, "no generator weight moved"
    weights = {k for k in changed if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert weights <= active, f"weights off every sampled path moved: {sorted(weights - active)[:5]}"
    assert _changed(d_before, trainer.D)
    # Exported derived generator reproduces the supernet path.
    trainer.G.eval()
    net = trainer.generator(population[0]).eval()
    z = torch.randn(3, 12)
    torch.testing.assert_close(net(z), trainer.G(z, population[0]))


def test_warmup_samples_valid_random_subnets_and_state_round_trips():
    g = build_supernet("eagan-g", resolution=32, channels=1, width=8, latent_dim=12)
    trainer = ManyToOneTrainer(g, AutoGANDiscriminator(8, 1), RandomImages(), STEP, CPU, **KW)
    trainer.train(None, epochs=1)
    state = trainer.state_dict()
    other = ManyToOneTrainer(build_supernet("eagan-g", resolution=32, channels=1, width=8, latent_dim=12),
                             AutoGANDiscriminator(8, 1), RandomImages(), STEP, CPU, **KW)
    other.load_state_dict(state)
    assert other.step == trainer.step == 3
    for k, v in trainer.G.state_dict().items():
        assert torch.equal(v, other.G.state_dict()[k])
    assert [trainer.rng.random() for _ in range(3)] == [other.rng.random() for _ in range(3)]


def test_one_to_one_pairs_and_weight_resetting():
    torch.manual_seed(0)
    g_space, d_space = get_space("eagan-g"), get_space("eagan-d")
    best = build_network(g_space.sample(random.Random(1)), resolution=32, channels=1, width=8, latent_dim=12)
    d_super = build_supernet("eagan-d", resolution=32, channels=1, width=8)
    trainer = OneToOneTrainer(best, d_super, 4, RandomImages(), STEP, CPU, **KW)
    population = [d_space.sample(random.Random(s)) for s in range(4)]
    trainer.train(None, epochs=1)  # warm-up trains copy 0 and then copies it to every pair
    first = trainer.Gs[0].state_dict()
    for g in trainer.Gs:
        for k, v in g.state_dict().items():
            assert torch.equal(v, first[k])
    trainer.train(population, epochs=2)
    differs = [any(not torch.equal(v, trainer.Gs[0].state_dict()[k]) for k, v in g.state_dict().items())
               for g in trainer.Gs[1:]]
    assert any(differs), "pairs must train independently"
    trainer.reset_generators(2)
    ref = trainer.Gs[2].state_dict()
    for g in trainer.Gs:
        for k, v in g.state_dict().items():
            assert torch.equal(v, ref[k])
    moments = [o.state_dict()["state"][0]["exp_avg"] for o in trainer.opt_gs]
    assert all(torch.equal(m, moments[2]) for m in moments)
    assert len({m.data_ptr() for m in moments}) == 4, "G copies must not share Adam moment tensors"


def test_divergence_advice_names_the_search_config_keys():
    import pytest

    from raynas.errors import TrainingDiverged

    g = build_supernet("eagan-g", resolution=32, channels=1, width=8, latent_dim=12)
    step = StepConfig(gen_batch_size=4, dis_batch_size=4, latent_dim=12, lr_section="eagan")
    trainer = ManyToOneTrainer(g, AutoGANDiscriminator(8, 1), RandomImages(), step, CPU, **KW)
    with torch.no_grad():
        for p in trainer.D.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"--set eagan\.lr_g=\.\.\. --set eagan\.lr_d="):
        trainer.train(None, epochs=1)


def test_one_to_one_survivors_keep_their_generator_without_weight_resetting():
    """Fig. 7's ablation turns weight resetting off: then each D must keep training with its own G copy
    across rounds, even though selection reorders the population."""
    torch.manual_seed(0)
    g_space, d_space = get_space("eagan-g"), get_space("eagan-d")
    best = build_network(g_space.sample(random.Random(1)), resolution=32, channels=1, width=8, latent_dim=12)
    d_super = build_supernet("eagan-d", resolution=32, channels=1, width=8)
    trainer = OneToOneTrainer(best, d_super, 4, RandomImages(), STEP, CPU, **{**KW, "iters_per_epoch": 12})
    ds = [d_space.sample(random.Random(s)) for s in range(6)]
    before = [_snapshot(g) for g in trainer.Gs]
    trainer.train(ds[:4], epochs=1)
    assert trainer.order == [0, 1, 2, 3]
    moved = [any(not torch.equal(v, b[k]) for k, v in g.state_dict().items()) for g, b in zip(trainer.Gs, before)]
    assert all(moved), "every pair is sampled and trained"
    g_of = {d.to_json(): _snapshot(trainer.generator(i)) for i, d in enumerate(ds[:4])}
    # Next round: survivors ds[3] and ds[1] come first, two offspring take the eliminated pairs' copies.
    nxt = [ds[3], ds[4], ds[1], ds[5]]
    trainer.train(nxt, epochs=0)
    assert trainer.order[0] == 3 and trainer.order[2] == 1 and sorted(trainer.order[1::2]) == [0, 2]
    for i in (0, 2):
        gen = trainer.generator(i)
        assert all(torch.equal(v, g_of[nxt[i].to_json()][k]) for k, v in gen.state_dict().items())
    state = trainer.state_dict()
    clone = OneToOneTrainer(best, build_supernet("eagan-d", resolution=32, channels=1, width=8), 4, RandomImages(),
                            STEP, CPU, **KW)
    clone.load_state_dict(copy.deepcopy(state))
    assert clone.order == trainer.order and clone.owners == trainer.owners
    trainer.reset_generators(2)  # position 2 is copy 1
    assert all(torch.equal(v, g_of[ds[1].to_json()][k]) for k, v in trainer.Gs[0].state_dict().items())


def _record_steps(monkeypatch):
    """Replace the training step by a recorder: which G / optimiser / forward each batch would train."""
    import raynas.methods.eagan.training as st

    seen = []

    def fake_step(G, D, opt_g, opt_d, real, cfg, *, step, precision, g_forward=None, d_forward=None, **kw):
        seen.append((G, opt_g, g_forward, d_forward))
        return {"d_loss": 0.0, "g_loss": 0.0}

    monkeypatch.setattr(st, "gan_train_step", fake_step)
    return seen


def test_each_batch_trains_a_uniformly_drawn_member(monkeypatch):
    from collections import Counter

    seen = _record_steps(monkeypatch)
    g_space, d_space = get_space("eagan-g"), get_space("eagan-d")
    many = 800
    # Stage 1: one G supernet path per batch, drawn uniformly from the population.
    population = [g_space.sample(random.Random(s)) for s in range(4)]
    g_super = build_supernet("eagan-g", resolution=32, channels=1, width=4, latent_dim=12)
    trainer = ManyToOneTrainer(g_super, AutoGANDiscriminator(4, 1), RandomImages(), STEP, CPU,
                               **{**KW, "iters_per_epoch": many})
    stats = trainer.train(population, epochs=1)
    used = []
    trainer.G.forward = lambda z, g: used.append(g)  # what each batch's g_forward runs
    for _, _, g_forward, _ in seen:
        g_forward(None)
    counts = Counter(population.index(g) for g in used)
    assert [counts[i] for i in range(4)] == trainer.batches and sum(trainer.batches) == many
    assert all(abs(c - many / 4) < 4 * (many * 0.25 * 0.75) ** 0.5 for c in trainer.batches)  # within 4 sigma
    assert stats["batches"] == trainer.batches
    # Stage 2: pairs drawn uniformly; each batch trains the drawn D's own G copy and optimiser.
    seen.clear()
    best = build_network(population[0], resolution=32, channels=1, width=4, latent_dim=12)
    ds = [d_space.sample(random.Random(s)) for s in range(4)]
    pairs = OneToOneTrainer(best, build_supernet("eagan-d", resolution=32, channels=1, width=4), 4, RandomImages(),
                            STEP, CPU, **{**KW, "iters_per_epoch": many})
    pairs.train(ds, epochs=1)
    drawn = []
    pairs.D.forward = lambda x, d: drawn.append(d)
    for G, opt_g, _, d_forward in seen:
        d_forward(None)
        i = ds.index(drawn[-1])
        assert G is pairs.Gs[pairs.order[i]] and opt_g is pairs.opt_gs[pairs.order[i]]
    assert [Counter(ds.index(d) for d in drawn)[i] for i in range(4)] == pairs.batches
    assert all(abs(c - many / 4) < 4 * (many * 0.25 * 0.75) ** 0.5 for c in pairs.batches)


def test_coupled_baseline_trains_each_pair_on_its_own_g_and_d_paths(monkeypatch):
    from raynas.methods.eagan.training import CoupledTrainer
    from raynas.spaces.eagan import GD_SPACE

    seen = _record_steps(monkeypatch)
    pairs = [GD_SPACE.sample(random.Random(s)) for s in range(3)]
    trainer = CoupledTrainer(build_supernet("eagan-g", resolution=32, channels=1, width=4, latent_dim=12),
                             build_supernet("eagan-d", resolution=32, channels=1, width=4), RandomImages(), STEP,
                             CPU, **{**KW, "iters_per_epoch": 30})
    trainer.train(pairs, epochs=1)
    g_used, d_used = [], []
    trainer.G.forward = lambda z, g: g_used.append(g)
    trainer.D.forward = lambda x, d: d_used.append(d)
    for G, opt_g, g_forward, d_forward in seen:
        assert G is trainer.G and opt_g is trainer.opt_g
        g_forward(None)
        d_forward(None)
    assert len(g_used) == len(d_used) == 30
    drawn = [pairs.index(GD_SPACE.join(g, d)) for g, d in zip(g_used, d_used)]  # each batch is one whole pair
    assert [drawn.count(i) for i in range(3)] == trainer.batches and sum(trainer.batches) == 30
    state = copy.deepcopy(trainer.state_dict())
    assert set(state) == {"G", "D", "opt_g", "opt_d", "rng"}
    assert trainer.generator(pairs[0]).genotype == GD_SPACE.split(pairs[0])[0]


def test_a_member_keeps_its_whole_n_critic_block(monkeypatch):
    """With n_critic = 3 the G step and the two D-only steps after it train one drawn pair."""
    seen = _record_steps(monkeypatch)
    d_space = get_space("eagan-d")
    best = build_network(get_space("eagan-g").sample(random.Random(1)), resolution=32, channels=1, width=4,
                         latent_dim=12)
    step = StepConfig(gen_batch_size=4, dis_batch_size=4, latent_dim=12, n_critic=3)
    pairs = OneToOneTrainer(best, build_supernet("eagan-d", resolution=32, channels=1, width=4), 4, RandomImages(),
                            step, CPU, **{**KW, "iters_per_epoch": 30})
    pairs.train([d_space.sample(random.Random(s)) for s in range(4)], epochs=1)
    gs = [G for G, *_ in seen]
    assert len(gs) == 30
    assert all(gs[i] is gs[i + 1] is gs[i + 2] for i in range(0, 30, 3))
    assert sum(pairs.batches) == 30 and all(b % 3 == 0 for b in pairs.batches)
    assert len({id(g) for g in gs}) > 1
