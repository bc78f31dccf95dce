"""Mechanisms checked on the code paths the runs take (the trainer's scoring, the search epoch the trainable
runs, the SupernetHost actor), not on a stand-in: each test here failed with its bug injected (see the
docstrings), where before only ``test_catches_bugs.py`` noticed."""

from __future__ import annotations

import json

import pytest
import torch

from raynas.config import load_config
from raynas.results import RunDir

TINY_GAN = ["model.gf_dim=8", "model.df_dim=8", "model.latent_dim=8", "data.limit=64", "train.iters_per_epoch=1",
            "train.gen_batch_size=8", "train.dis_batch_size=8", "eval.num_samples=32", "eval.batch_size=16",
            "train.device=cpu"]


def _mode_spy(module: torch.nn.Module) -> list[bool]:
    """The train/eval mode of every forward of ``module`` and of its submodules (BatchNorm's mode matters)."""
    modes: list[bool] = []
    for m in module.modules():
        m.register_forward_pre_hook(lambda mod, args: modes.append(mod.training))
    return modes


def test_a_trained_gan_is_scored_in_eval_mode_without_moving_its_batchnorm_statistics():
    """``GANTrainer.score`` (what every fixed GAN run reports) runs the EMA generator in eval mode, leaves its
    BatchNorm running statistics where training left them, and restores its mode. Bug caught: the metrics'
    generator source not switching G to eval mode while it samples."""
    from raynas.gan.trainer import GANTrainer

    cfg = load_config("quickstart", TINY_GAN, method="train")
    trainer = GANTrainer(cfg, torch.device("cpu"))
    trainer.train_epoch()
    G = trainer.ema.module
    G.train()  # as a generator is between training steps
    batchnorms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert batchnorms, "the test needs a generator with BatchNorm"
    before = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in batchnorms]
    modes = _mode_spy(G)
    row = trainer.score()
    assert "fid" in row and modes, "nothing was scored"
    assert not any(modes), f"{sum(modes)} of {len(modes)} forwards ran in training mode while scored"
    for m, (mean, var, tracked) in zip(batchnorms, before, strict=True):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
        assert int(m.num_batches_tracked) == tracked
    assert G.training  # given back as it was


def test_each_damgan_search_row_holds_the_alpha_of_its_own_epoch_only(tmp_path, monkeypatch):
    """The trainable's search epoch (``trainables.search_trial.search_epoch``, what a DAMGAN trial runs) over
    two epochs: the α table in epoch 2's row is the mean of the DA attention recorded during epoch 2's batches
    alone (eq. 4 averaged over one epoch), computed here from each forward's own contribution. Bug caught: α
    not reset at the start of each epoch (then epoch 2's row averages both epochs)."""
    from torch.utils.tensorboard import SummaryWriter

    import trainables.search_trial as search_trial
    from raynas.nn.attention import AttentionEdge

    (tmp_path / "trial").mkdir()
    monkeypatch.setattr(search_trial, "trial_dir", lambda: tmp_path / "trial")  # as inside a Tune trial

    cfg = load_config("quickstart", ["damgan.search_gf_dim=8", "damgan.kprime=2", "damgan.reduction=4",
                                     "damgan.iters_per_epoch=2", "damgan.gen_batch_size=4", "damgan.dis_batch_size=4",
                                     "damgan.epochs=3", "damgan.eval_every=0", "model.latent_dim=16", "model.df_dim=8",
                                     "data.limit=32", "train.device=cpu"], method="damgan")
    run = RunDir.create(tmp_path, "damgan", config=cfg.to_dict(), seed=0, preset=cfg.preset, device="cpu")
    search = search_trial.new_search(cfg)
    edges = {name: edge for name, edge in search.G.named_edges()}
    assert edges and all(isinstance(e, AttentionEdge) for e in edges.values())
    recorded: dict[str, list[torch.Tensor]] = {name: [] for name in edges}
    for name, edge in edges.items():
        def pre(mod, args, name=name):
            mod._spy_before = (mod.alpha_sum.clone(), float(mod.alpha_count))

        def post(mod, args, out, name=name):
            before_sum, before_count = mod._spy_before
            if float(mod.alpha_count) == before_count + 1:  # this forward recorded one batch
                recorded[name].append(mod.alpha_sum - before_sum)

        edge.register_forward_pre_hook(pre)
        edge.register_forward_hook(post)
    cost = {"search_seconds": 0.0, "search_gpu_seconds": 0.0}
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    search_trial.search_epoch(search, cfg, run, "t0", 0.0, writer, cost)
    epoch1 = {name: list(parts) for name, parts in recorded.items()}
    for parts in recorded.values():
        parts.clear()
    search_trial.search_epoch(search, cfg, run, "t0", 0.0, writer, cost)
    writer.close()

    rows = run.read().sort_values("epoch")
    assert list(rows["epoch"]) == [1, 2]
    table = json.loads(rows["alpha_table"].iloc[1])
    for name, parts in recorded.items():
        assert parts and len(parts) == len(epoch1[name]), name
        expected = torch.stack(parts).mean(0)
        both = torch.stack(epoch1[name] + parts).mean(0)
        assert not torch.allclose(expected, both, rtol=0, atol=1e-9), "the two epochs' α should differ"
        assert torch.allclose(torch.tensor(table[name], dtype=torch.float64), expected, rtol=1e-9, atol=1e-12), \
            (name, table[name], expected.tolist(), both.tolist())


@pytest.mark.slow
def test_stage_d_weight_resetting_makes_every_g_copy_the_best_on_the_real_supernet_host(ray_session, tmp_path):
    """Stage d on a real SupernetHost actor: one round trains the P G copies apart; the driver's end of round
    then makes every copy the best pair's G, and
    with ``eagan.weight_resetting=false`` leaves them apart. Bug caught: no weight resetting in stage d (in the
    driver, the actor or the trainer)."""
    from raynas.methods.eagan.setup import build_search_generator
    from raynas.spaces import get_space
    from trainables.eagan.actors import SupernetHost
    from trainables.eagan.driver import EaganSearch, make_searcher

    tiny = ["eagan.population=4", "eagan.iters_per_epoch=2", "eagan.search_gf_dim=8", "eagan.search_df_dim=8",
            "eagan.gen_batch_size=4", "eagan.dis_batch_size=4", "model.latent_dim=12", "data.limit=64",
            "train.device=cpu"]
    cfg = {flag: load_config("quickstart", [*tiny, f"eagan.weight_resetting={flag}"], method="eagan")
           for flag in ("true", "false")}
    g_space = get_space("eagan-g")
    best_g = g_space.decode(make_searcher(cfg["true"], "g").ask()[0])
    G = build_search_generator(cfg["true"], best_g)
    population = [get_space("eagan-d").decode(v).to_json() for v in make_searcher(cfg["true"], "d").ask()]
    host = SupernetHost.options(num_cpus=0.5).remote(cfg["true"].to_dict(), "d",
                                                     {"genotype": best_g.to_json(), "state": G.state_dict()})
    try:
        ray_session.get(host.ready.remote())
        ray_session.get(host.train.remote(population, 1))
        trained = ray_session.get(host.weights.remote())
        assert len(trained) == 4
        assert not all(torch.equal(trained[0][k], trained[i][k]) for i in range(1, 4) for k in trained[0]), \
            "the round should have trained the G copies apart"
        for flag, expected in (("false", trained), ("true", [trained[2]] * 4)):
            run = RunDir.create(tmp_path, f"reset-{flag}", config={}, seed=0, preset="quickstart", device="cpu")
            EaganSearch(cfg[flag], run, progress=False)._after_round("d", host, {"index": 2})
            now = ray_session.get(host.weights.remote())
            for i in range(4):
                assert all(torch.equal(now[i][k], expected[i][k]) for k in now[i]), (flag, i)
    finally:
        ray_session.kill(host)
