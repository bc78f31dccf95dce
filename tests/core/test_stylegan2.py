"""StyleGAN2 and ProGAN: sizes equal to the Re-GAN authors' code, the building blocks against hand references,
training through raynas's GAN step with Re-GAN masks, FLOPs and ``raynas arch show``."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_user_error, run_cli

from raynas.build import build_discriminator, build_generator
from raynas.config import DataConfig, ModelConfig, RaynasConfig, from_dict
from raynas.device import Precision
from raynas.errors import ConfigError
from raynas.gan import EMA, StepConfig, gan_train_step
from raynas.gan.recipe import (
    Recipe,
    check_recipe,
    d_logistic_loss,
    d_wgan_loss,
    g_nonsaturating_loss,
    path_lengths,
    r1_penalty,
    recipe_from,
)
from raynas.gan.regan import Regan
from raynas.gan.regan_schedule import ReganConfig
from raynas.gan.training_flops import TrainingFlops
from raynas.nn.equalized import EqualConv2d, EqualLinear
from raynas.nn.profile import count_flops, count_params
from raynas.nn.progan import ProGANDiscriminator, ProGANGenerator, batch_stddev_feature, growth_stage
from raynas.nn.stylegan2 import (
    ModulatedConv2d,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    fir_kernel,
    minibatch_stddev,
    mix_styles,
    upfirdn2d,
    upsample2x,
)


def tiny_pair(resolution: int = 32) -> tuple[StyleGAN2Generator, StyleGAN2Discriminator]:
    torch.manual_seed(0)
    return (StyleGAN2Generator(resolution, latent_dim=16, mapping_layers=2, channel_multiplier=1, max_channels=8),
            StyleGAN2Discriminator(resolution, channel_multiplier=1, max_channels=8))


# ---------------------------------------------------------------------------- sizes of the authors' code
# Counted by building IntellicentAI-Lab/Re-GAN's StyleGAN2/model.py and ProGAN/model.py (their train.py / main.py
# defaults) with torch; see the module docstrings.
@pytest.mark.parametrize("resolution,multiplier,g_params,d_params", [
    (256, 2, 30_034_338, 28_864_129),  # the authors' setting
    (32, 2, 21_523_475, 21_507_073),
    (1024, 2, 30_370_060, 29_012_513),
    (64, 1, 23_819_544, 23_407_361),
])
def test_stylegan2_sizes_equal_the_authors_code(resolution, multiplier, g_params, d_params):
    with torch.device("meta"):
        g = StyleGAN2Generator(resolution, 512, 8, multiplier)
        d = StyleGAN2Discriminator(resolution, multiplier)
    assert (count_params(g), count_params(d)) == (g_params, d_params)


def test_progan_sizes_equal_the_authors_code():
    with torch.device("meta"):
        assert count_params(ProGANGenerator(512, 512, 32)) == 23_079_436
        assert count_params(ProGANDiscriminator(512, 32)) == 20_726_785
        assert count_params(ProGANGenerator(128, 128, 32)) == 1_444_492
        assert count_params(ProGANDiscriminator(128, 32)) == 1_298_689


# ---------------------------------------------------------------------------- building blocks
@pytest.mark.parametrize("upsample,demodulate,k", [(False, True, 3), (True, True, 3), (False, False, 1)])
def test_modulated_conv_grouped_form_equals_a_per_sample_loop(upsample, demodulate, k):
    torch.manual_seed(0)
    conv = ModulatedConv2d(3, 5, k, 6, demodulate=demodulate, upsample=upsample).double()
    with torch.no_grad():
        conv.modulation.bias.normal_()  # styles far from 1 so modulation matters
    x, style = torch.randn(4, 3, 6, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    out = conv(x, style)
    s = conv.modulation(style)
    for b in range(4):
        w = conv.weight * conv.scale * s[b].view(1, 3, 1, 1)
        if demodulate:
            w = w / torch.sqrt((w ** 2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if upsample:
            ref = upfirdn2d(F.conv_transpose2d(x[b:b + 1], w.transpose(0, 1), stride=2),
                            fir_kernel(gain=4.0).double(), pad=(1, 1))
        else:
            ref = F.conv2d(x[b:b + 1], w, padding=k // 2)
        torch.testing.assert_close(out[b:b + 1], ref)
    assert out.shape == (4, 5, 12 if upsample else 6, 12 if upsample else 6)


def test_demodulation_gives_unit_norm_per_output_channel():
    conv = ModulatedConv2d(4, 3, 3, 5).double()
    w = conv.modulated_weight(torch.randn(2, 5, dtype=torch.float64))
    torch.testing.assert_close(w.pow(2).sum(dim=(2, 3, 4)), torch.ones(2, 3, dtype=torch.float64))


def test_fir_upsampling_equals_zero_insertion_then_a_direct_convolution():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    kernel = torch.outer(taps, taps) / 64 * 4  # separable [1,3,3,1], sum 4 (zero insertion keeps 1 pixel in 4)
    up = torch.zeros(2, 3, 10, 10, dtype=torch.float64)
    up[:, :, ::2, ::2] = x
    padded = torch.zeros(2, 3, 13, 13, dtype=torch.float64)
    padded[:, :, 2:12, 2:12] = up  # pad 2 before, 1 after
    ref = torch.zeros(2, 3, 10, 10, dtype=torch.float64)
    for i in range(10):
        for j in range(10):
            ref[:, :, i, j] = (padded[:, :, i:i + 4, j:j + 4] * kernel.flip(0, 1)).sum(dim=(2, 3))
    torch.testing.assert_close(upsample2x().double()(x), ref)
    # a constant image stays constant away from the border, and a unit impulse gives the kernel itself
    flat = upsample2x()(torch.ones(1, 1, 6, 6))
    torch.testing.assert_close(flat[:, :, 2:-2, 2:-2], torch.ones(1, 1, 8, 8))
    delta = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    delta[0, 0, 2, 2] = 1.0
    torch.testing.assert_close(upfirdn2d(delta, kernel, up=2, pad=(2, 1))[0, 0, 3:7, 3:7], kernel)


def test_fir_downsampling_of_a_constant_keeps_it():
    out = upfirdn2d(torch.full((1, 2, 8, 8), 3.0), fir_kernel(), down=2, pad=(1, 1))
    assert out.shape == (1, 2, 4, 4)
    torch.testing.assert_close(out[:, :, 1:-1, 1:-1], torch.full((1, 2, 2, 2), 3.0))


def test_equalised_learning_rate_scales_by_gain_over_sqrt_fan_in():
    conv = EqualConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight / math.sqrt(27), conv.bias, padding=1))
    assert EqualConv2d(8, 4, 1, gain=math.sqrt(2)).scale == pytest.approx(math.sqrt(2 / 8))  # ProGAN
    lin = EqualLinear(16, 5, lr_mul=0.01, bias_init=1.0)
    z = torch.randn(3, 16)
    torch.testing.assert_close(lin(z), z @ (lin.weight * 0.01 / 4).T + lin.bias * 0.01)
    # stored weights are N(0, 1 / lr_mul²) so the effective weights start at N(0, 1 / fan_in) whatever lr_mul is
    assert lin.scale == pytest.approx(0.01 / 4)


def test_minibatch_stddev_by_hand():
    x = torch.zeros(4, 2, 1, 1)
    x[:, 0, 0, 0] = torch.tensor([0.0, 0.0, 2.0, 2.0])  # population var 1
    x[:, 1, 0, 0] = 5.0  # var 0
    out = minibatch_stddev(x)
    assert out.shape == (4, 3, 1, 1)
    torch.testing.assert_close(out[:, 2], torch.full((4, 1, 1), (math.sqrt(1 + 1e-8) + math.sqrt(1e-8)) / 2))
    # batch 6: groups of 3 (largest divisor of 6 up to 4); sample n is in group n mod 2
    y = torch.tensor([0.0, 10.0, 3.0, 10.0, 6.0, 10.0]).view(6, 1, 1, 1).expand(6, 1, 2, 2)
    out = minibatch_stddev(y)
    assert out.shape == (6, 2, 2, 2)
    std0 = math.sqrt(6.0 + 1e-8)  # values 0, 3, 6
    expect = torch.tensor([std0, 1e-4] * 3).view(6, 1, 1, 1).expand(6, 1, 2, 2)
    torch.testing.assert_close(out[:, 1:], expect)
    # ProGAN: one std over the whole batch, averaged over channels and pixels
    z = torch.zeros(2, 2, 4, 4)
    z[1, 0] = 2.0  # channel 0: values 0 and 2 (std 1); channel 1: std 0
    out = batch_stddev_feature(z)
    torch.testing.assert_close(out[:, 2], torch.full((2, 4, 4), (math.sqrt(1 + 1e-8) + 1e-4) / 2))


def test_style_mixing_switches_latents_at_the_index():
    w1, w2 = torch.zeros(2, 3), torch.ones(2, 3)
    ws = mix_styles(w1, w2, 6, 2)
    assert ws.shape == (2, 6, 3) and ws[:, :2].eq(0).all() and ws[:, 2:].eq(1).all()
    g, _ = tiny_pair(8)
    assert g.num_ws == 4 and g.num_noises == 3


# ---------------------------------------------------------------------------- whole networks
def test_stylegan2_forward_backward_at_32px():
    g, d = tiny_pair(32)
    z = torch.randn(4, 16)
    img = g(z)
    assert img.shape == (4, 3, 32, 32)
    logits = d(img)
    assert logits.shape == (4, 1)
    F.softplus(-logits).mean().backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert g.convs[0].noise_strength.grad.abs().item() > 0  # the noise inputs are wired in
    # fixed noise makes G deterministic
    noise = [torch.randn(1, 1, 4 * 2 ** ((i + 1) // 2), 4 * 2 ** ((i + 1) // 2)) for i in range(g.num_noises)]
    torch.testing.assert_close(g(z, noise=noise), g(z, noise=noise))


def test_progan_fade_in_blends_the_previous_stage():
    torch.manual_seed(0)
    g, d = ProGANGenerator(8, 8, 16), ProGANDiscriminator(8, 16)
    z = torch.randn(3, 8)
    g.set_stage(2, 1.0)
    new = g(z)
    g.set_stage(2, 0.0)
    old = g(z)
    g.set_stage(1, 1.0)
    torch.testing.assert_close(old, torch.tanh(F.interpolate(torch.atanh(g(z)), scale_factor=2.0)))
    g.set_stage(2, 0.25)
    torch.testing.assert_close(torch.atanh(g(z)), 0.75 * torch.atanh(old) + 0.25 * torch.atanh(new),
                               rtol=1e-4, atol=1e-4)
    d.set_stage(2, 0.5)
    assert d(new).shape == (3, 1)
    with pytest.raises(ValueError, match="stage 3"):
        g.set_stage(3)


def test_config_builds_both_families_and_rejects_a_bad_resolution():
    data = DataConfig(resolution=16)
    m = ModelConfig(generator="stylegan2", discriminator="stylegan2", latent_dim=8, mapping_layers=1,
                    channel_multiplier=1, max_channels=4)
    g, d = build_generator(m, data), build_discriminator(m, data)
    assert isinstance(g, StyleGAN2Generator) and g.latent_dim == 8 and len(g.mapping_net) == 2
    assert d(g(torch.randn(2, 8))).shape == (2, 1)
    p = ModelConfig(generator="progan", discriminator="progan", latent_dim=8, progan_channels=4)
    assert isinstance(build_generator(p, data), ProGANGenerator)
    assert build_discriminator(p, data)(build_generator(p, data)(torch.randn(2, 8))).shape == (2, 1)
    with pytest.raises(ConfigError, match="power of two"):
        build_generator(m, DataConfig(resolution=48))
    with pytest.raises(ConfigError, match="mapping_layers"):
        from_dict(RaynasConfig, {"model": {"generator": "stylegan2", "mapping_layers": 0}})
    cfg = from_dict(RaynasConfig, {"model": {"generator": "stylegan2", "discriminator": "progan",
                                         "channel_multiplier": 1}})
    assert (cfg.model.generator, cfg.model.discriminator, cfg.model.channel_multiplier) == ("stylegan2", "progan", 1)


# ---------------------------------------------------------------------------- Re-GAN and FLOPs
class _Images:
    def sample(self, n: int) -> torch.Tensor:
        return torch.rand(n, 3, 8, 8) * 2 - 1


def test_regan_masks_keep_pruned_modulated_weights_at_zero_through_steps():
    g, d = tiny_pair(8)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-2, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-2, betas=(0.0, 0.99))
    ema = EMA(g, 0.9)
    # exclude=(): the toRGB layers' modulated convs too (StyleGAN2's default exclude keeps them dense)
    regan = Regan(g, ReganConfig(sparsity=0.3, warmup=0, interval=1, exclude=()))
    assert regan.begin_unit(0, opt_g, ema.module) == "sparse"
    names = [n for n in regan.masks if n.endswith("conv.weight")]
    assert "convs.0.conv.weight" in names and "to_rgbs.0.conv.weight" in names
    cfg = StepConfig(gen_batch_size=4, dis_batch_size=4, latent_dim=16)
    before = g.convs[0].conv.weight.detach().clone()
    for step in range(2):
        gan_train_step(g, d, opt_g, opt_d, _Images(), cfg, step=step, precision=Precision.for_device(
            torch.device("cpu")), ema=ema, g_hooks=regan)
        ema_params = dict(ema.module.named_parameters())
        for name, keep in regan.masks.items():
            assert torch.all(regan.params[name][~keep] == 0), name
            assert torch.all(ema_params[name][~keep] == 0), name
    keep = regan.masks["convs.0.conv.weight"]
    assert (~keep).sum() == int(0.3 * keep.numel())
    assert not torch.equal(g.convs[0].conv.weight[keep], before[keep])  # the kept weights train


def test_flops_of_modulated_convs_and_fir_filters_by_hand():
    conv = ModulatedConv2d(2, 3, 3, 4)
    x, s = torch.randn(1, 2, 5, 5), torch.randn(1, 4)

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x, s.expand(x.shape[0], -1))

    modulation = 2 * 4 * 2  # style (4) → 2 input scales
    assert count_flops(Wrap(conv), x) == modulation + 2 * 3 * 2 * 9 * 25  # grouped conv: 3×2×9 MACs per pixel
    up = ModulatedConv2d(2, 3, 3, 4, upsample=True)
    transposed = 2 * 25 * 2 * 3 * 9  # every input pixel scatters into 3×9 outputs per input channel
    fir = 2 * 3 * 10 * 10 * 16  # the 4×4 blur on the 10×10 up-sampled map, per channel
    assert count_flops(Wrap(up), x) == modulation + transposed + fir
    y = up(x, s)
    assert up.layer_flops(x, y) == transposed and conv.layer_flops(x, conv(x, s)) == 2 * 3 * 2 * 9 * 25


def test_training_flops_count_modulated_convs_per_layer():
    g, d = tiny_pair(8)
    tf = TrainingFlops(g, d)
    assert "convs.0.conv.weight" in tf.layer_flops and "mapping_net.1.weight" in tf.layer_flops
    # 8 px, max 8 channels: the up-sampling conv of the 4→8 level scatters 4×4 pixels into 8 × 9 outputs each
    assert tf.layer_flops["convs.0.conv.weight"] == 2 * 8 * 16 * 8 * 9
    half = {n: 0.5 for n in tf.layer_flops}
    assert tf.g_forward(half) == pytest.approx(tf.g_rest + sum(tf.layer_flops.values()) / 2)
    assert tf.g_rest > 0  # the FIR filters are counted dense


# ---------------------------------------------------------------------------- CLI
def test_arch_show_prints_the_families_sizes(capsys):
    code, out, err = run_cli(capsys, "arch", "show", "stylegan2", "--resolution", "256", "--channel-multiplier", "2",
                             "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["G"]["params"] == 30_034_338 and doc["D"]["params"] == 28_864_129
    assert doc["G"]["flops"] > 10 ** 10 and doc["D"]["flops"] > 10 ** 10
    code, out, err = run_cli(capsys, "arch", "show", "progan", "--latent", "512", "--channels", "512", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["G"]["params"], doc["D"]["params"]) == (23_079_436, 20_726_785)
    code, out, err = run_cli(capsys, "arch", "show", "progan", "--channel-multiplier", "2")
    assert_user_error(code, err, "--channel-multiplier", "progan")
    code, out, err = run_cli(capsys, "arch", "show", "stylegan2", "--width", "64", "--channels", "8")
    assert_user_error(code, err, "--channels", "--width", "stylegan2")
    code, out, err = run_cli(capsys, "arch", "show", "eagan-cifar10-G", "--resolution", "64")
    assert_user_error(code, err, "--resolution", "stylegan2|progan")
    code, out, err = run_cli(capsys, "arch", "show", "stylegan2", "--resolution", "48")
    assert_user_error(code, err, "power of two")


# ---------------------------------------------------------------------------- the StyleGAN2 training recipe
def test_r1_penalty_equals_the_hand_gradient_and_trains_d():
    w = torch.tensor([0.5, -1.0, 2.0, 0.0], requires_grad=True)
    x = torch.tensor([[1.0, 2.0, -1.0, 3.0], [0.0, 1.0, 1.0, -2.0]]).view(2, 1, 2, 2).requires_grad_(True)
    logits = (w * x.flatten(1) ** 2).sum(1, keepdim=True)  # D(x) = Σ w_i x_i², so ∇_x D = 2 w x
    penalty = r1_penalty(x, logits)
    flat = x.detach().flatten(1)
    hand = (4 * w.detach() ** 2 * flat ** 2).sum(1).mean()
    torch.testing.assert_close(penalty, hand)
    penalty.backward()
    torch.testing.assert_close(w.grad, (8 * w.detach() * flat ** 2).mean(0))  # ∂/∂w of the hand formula


def test_logistic_losses_and_the_lazy_schedule():
    zero = torch.zeros(3, 1)
    torch.testing.assert_close(d_logistic_loss(zero, zero), torch.tensor(2 * math.log(2.0)))
    torch.testing.assert_close(g_nonsaturating_loss(torch.full((2, 1), 1.5)), F.softplus(torch.tensor(-1.5)))
    r = Recipe(loss="nonsaturating", r1_gamma=10.0, pl_weight=2.0, style_mixing=0.9)
    assert [s for s in range(40) if r.r1_step(s)] == [0, 16, 32]
    assert [u for u in range(10) if r.pl_step(u)] == [0, 4, 8]
    assert not Recipe().r1_step(0) and not Recipe().pl_step(0) and not Recipe().styled
    with pytest.raises(ValueError):
        Recipe(style_mixing=1.5)


def test_path_lengths_by_hand():
    torch.manual_seed(0)
    ws = torch.randn(3, 2, 4, requires_grad=True)
    images = ws.sum(1).view(3, 4, 1, 1)  # J_wᵀ y = y for each of the 2 styles
    torch.manual_seed(7)
    lengths = path_lengths(images, ws)
    torch.manual_seed(7)
    y = torch.randn(3, 4, 1, 1)  # 1×1 image: the 1/sqrt(HW) scale is 1
    torch.testing.assert_close(lengths, y.flatten(1).norm(dim=1))


def test_style_mixing_uses_two_latents():
    g, _ = tiny_pair(8)
    z = torch.randn(2, 16)
    ws = Recipe(style_mixing=1.0).styles(g, z)
    assert ws.shape == (2, g.num_ws, 16)
    assert not torch.equal(ws[:, 0], ws[:, -1]) and torch.equal(ws[:, 0], g.mapping(z))
    ws = Recipe(style_mixing=0.0, pl_weight=1.0).styles(g, z)
    assert all(torch.equal(ws[:, i], ws[:, 0]) for i in range(g.num_ws))


def test_gan_step_adds_lazy_r1_and_path_length_on_their_steps():
    g, d = tiny_pair(8)
    opt_g, opt_d = torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3)
    recipe = Recipe(loss="nonsaturating", r1_gamma=10.0, r1_every=2, pl_weight=2.0, pl_every=2, style_mixing=0.9)
    cfg = StepConfig(gen_batch_size=4, dis_batch_size=4, latent_dim=16, recipe=recipe)
    cpu = Precision.for_device(torch.device("cpu"))
    outs = [gan_train_step(g, d, opt_g, opt_d, _Images(), cfg, step=s, precision=cpu) for s in range(3)]
    assert ["r1" in o for o in outs] == [True, False, True]
    assert ["pl_mean" in o for o in outs] == [True, False, True]
    assert outs[0]["r1"] > 0 and float(g.pl_mean) > 0
    assert "pl_mean" in g.state_dict()  # checkpoints carry the running mean


def test_style_recipes_need_the_stylegan2_generator():
    cfg = from_dict(RaynasConfig, {"train": {"style_mixing": 0.9}})
    with pytest.raises(ConfigError, match="model.generator=stylegan2"):
        check_recipe(cfg)
    check_recipe(from_dict(RaynasConfig, {"train": {"style_mixing": 0.9}, "model": {"generator": "stylegan2"}}))
    with pytest.raises(ConfigError, match="style-based"):
        recipe_from(cfg.train).check_generator(ProGANGenerator(8, 4, 8))


def test_wgan_gp_terms_by_hand_and_a_progan_step():
    a = torch.tensor([0.0, 1.2, 0.0, 1.6]).view(1, 1, 2, 2)  # ‖a‖ = 2

    def critic(x):
        return (x * a).flatten(1).sum(1, keepdim=True)  # linear: ∇ = a everywhere, so GP = (2 - 1)² = 1

    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    real_logits = critic(real)
    terms = Recipe(loss="wgan-gp", gp_lambda=10.0, drift=0.001).critic_terms(critic, real, fake, real_logits)
    torch.testing.assert_close(terms, 10.0 + 0.001 * real_logits.pow(2).mean())
    assert Recipe().critic_terms(critic, real, fake, real_logits) is None
    torch.testing.assert_close(d_wgan_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.5], [0.5]])),
                               torch.tensor(-1.5))
    torch.manual_seed(0)
    g, d = ProGANGenerator(8, 4, 8), ProGANDiscriminator(4, 8)
    cfg = StepConfig(gen_batch_size=4, dis_batch_size=4, latent_dim=8, recipe=Recipe(loss="wgan-gp"))
    out = gan_train_step(g, d, torch.optim.Adam(g.parameters(), 1e-3, betas=(0.0, 0.99)),
                         torch.optim.Adam(d.parameters(), 1e-3, betas=(0.0, 0.99)), _Images(), cfg, step=0,
                         precision=Precision.for_device(torch.device("cpu")))
    assert math.isfinite(out["d_loss"]) and math.isfinite(out["g_loss"])


def test_measuring_flops_leaves_the_random_state_alone():
    g, d = tiny_pair(8)  # G draws its noise inputs in forward
    torch.manual_seed(3)
    TrainingFlops(g, d, example_latent=torch.zeros(1, 16))
    after = torch.rand(2)
    torch.manual_seed(3)
    torch.testing.assert_close(after, torch.rand(2))


# ---------------------------------------------------------------------------- ProGAN growing in a fixed run
def test_growth_stage_follows_the_authors_schedule():
    stages = (2, 2, 2, 8)
    assert growth_stage(0.0, stages) == (0, 0.0)
    assert growth_stage(3.0, stages) == (1, 0.5)
    assert growth_stage(6.0, stages) == (3, 0.0)
    assert growth_stage(12.0, stages) == (3, 0.75)
    assert growth_stage(14.0, stages) == (3, 1.0)
    with pytest.raises(ValueError):
        growth_stage(0.0, (1, 0))


def test_trainer_grows_progan_and_pools_the_real_images():
    from raynas.config import load_config
    from raynas.gan.trainer import GANTrainer

    tiny = ["model.generator=progan", "model.discriminator=progan", "model.progan_channels=4", "model.latent_dim=8",
            "data.resolution=16", "data.limit=64", "train.iters_per_epoch=2", "train.gen_batch_size=4",
            "train.dis_batch_size=4", "train.epochs=3", "model.progan_stage_epochs=[1,1,1]", "train.loss=wgan-gp"]
    t = GANTrainer(load_config("quickstart", tiny, method="train"), device=torch.device("cpu"))
    assert (t.G.step, t.D.step, t.ema.module.step) == (0, 0, 0) and t.growth.real.sample(2).shape[-1] == 4
    t.train_epoch()
    assert (t.G.step, t.G.alpha, t.growth.real.sample(2).shape[-1]) == (1, 0.0, 8)
    assert t.sample_grid(2).shape == (2, 1, 16, 16)  # drawn at the run's resolution while growing
    t.train_epoch()
    t.train_epoch()
    assert (t.G.step, t.G.alpha, t.D.step, t.ema.module.alpha) == (2, 1.0, 2, 1.0)
    with pytest.raises(ConfigError, match="one entry per stage"):
        GANTrainer(load_config("quickstart", [*tiny[:-2], "model.progan_stage_epochs=[1,2]"], method="train"),
                   device=torch.device("cpu"))
