"""Config → networks: the one place that turns a model section into networks (G and D for the GAN task,
the classifier for the classify task)."""

from __future__ import annotations

from typing import Any

from torch import nn

from raynas.config import DataConfig, ModelConfig
from raynas.errors import ConfigError
from raynas.nn.discriminators import AutoGANDiscriminator
from raynas.nn.generators import SNGANGenerator
from raynas.nn.progan import ProGANDiscriminator, ProGANGenerator
from raynas.nn.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator


def build_generator(model: ModelConfig, data: DataConfig) -> nn.Module:
    """Baseline SNGAN generator, StyleGAN2 or ProGAN generator, or the derived network of a genotype file."""
    if model.generator == "sngan":
        try:
            return SNGANGenerator(model.latent_dim, model.gf_dim, data.resolution, model.bottom_width,
                                  data.channels)
        except ValueError as exc:
            raise ConfigError(f"model/data mismatch: {exc}; set model.bottom_width so that "
                              "data.resolution / bottom_width is a power of two") from None
    if model.generator == "stylegan2":
        return _sized(StyleGAN2Generator, "model.generator", data.resolution, model.latent_dim,
                      model.mapping_layers, model.channel_multiplier, data.channels, max_channels=model.max_channels)
    if model.generator == "progan":
        return _sized(ProGANGenerator, "model.generator", model.latent_dim, model.progan_channels, data.resolution,
                      data.channels)
    return _from_genotype(model.g_genotype, "model.g_genotype", data, model.gf_dim, model.latent_dim)


def build_discriminator(model: ModelConfig, data: DataConfig) -> nn.Module:
    if model.discriminator == "autogan":
        return AutoGANDiscriminator(model.df_dim, data.channels)
    if model.discriminator == "stylegan2":
        return _sized(StyleGAN2Discriminator, "model.discriminator", data.resolution, model.channel_multiplier,
                      data.channels, max_channels=model.max_channels)
    if model.discriminator == "progan":
        return _sized(ProGANDiscriminator, "model.discriminator", model.progan_channels, data.resolution,
                      data.channels)
    return _from_genotype(model.d_genotype, "model.d_genotype", data, model.df_dim, None)


def _sized(cls: type[nn.Module], key: str, *args: Any, **kwargs: Any) -> nn.Module:
    """A fixed family network; a size it cannot take (a resolution that is not a power of two) is a ConfigError."""
    try:
        return cls(*args, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}; set data.resolution to a power of two (e.g. 32, 64, 128 or 256)") from None


GENERATOR_SPACES = ("eagan-g", "damgan-g")
DISCRIMINATOR_SPACES = ("eagan-d",)
GAN_SPACES = (*GENERATOR_SPACES, *DISCRIMINATOR_SPACES, "eagan-gd")  # the coupled pair of EAGAN's stage gd
_ROLE_SPACES = {"generator": GENERATOR_SPACES, "discriminator": DISCRIMINATOR_SPACES}


def load_gan_genotype(path: str, key: str, role: str) -> Any:
    """``path``'s genotype when it describes a ``role`` ("generator" or "discriminator"); any other space (a
    classifier's cells, the other half of the GAN) is a ConfigError now, not a failing trial later."""
    from raynas.spaces import Genotype

    genotype = Genotype.load(path)
    if genotype.space in _ROLE_SPACES[role]:
        return genotype
    if genotype.space in GENERATOR_SPACES:
        what = "a generator genotype: pass it as model.g_genotype (raynas retrain G.json [D.json])"
    elif genotype.space in DISCRIMINATOR_SPACES:
        what = "a discriminator genotype: pass it as model.d_genotype (raynas retrain G.json D.json)"
    elif genotype.space == "eagan-gd":
        what = "a coupled G+D pair: use the best_G.json and best_D.json the same search wrote beside it"
    else:
        what = f"a classifier genotype: train it with `raynas retrain {path}` (a classifier preset)"
    raise ConfigError(f"{key}={path} holds a {genotype.space!r} genotype, not a {role} genotype "
                      f"({' or '.join(_ROLE_SPACES[role])}); it is {what}")


def _from_genotype(path: str | None, key: str, data: DataConfig, width: int, latent_dim: int | None) -> nn.Module:
    from raynas.nn.registry import build_network

    if not path:
        raise ConfigError(f"{key} must name a genotype JSON file when the network is 'genotype' "
                          f"(e.g. --set {key}=runs/NAME/best_G.json)")
    genotype = load_gan_genotype(path, key, "generator" if latent_dim is not None else "discriminator")
    kwargs = {"resolution": data.resolution, "channels": data.channels, "width": width}
    if latent_dim is not None:
        kwargs["latent_dim"] = latent_dim
    return build_network(genotype, **kwargs)


def latent_dim_of(generator: nn.Module, default: int) -> int:
    """Generators expose ``latent_dim``; fall back to the configured one."""
    return int(getattr(generator, "latent_dim", default))


def build_classifier(cfg) -> nn.Module:
    """The evaluation network of ``cfg.model.genotype`` (any classifier space) for ``cfg.data``'s images."""
    from raynas.data import dataset_classes
    from raynas.spaces import Genotype

    m, d = cfg.model, cfg.data
    genotype = Genotype.load(m.genotype)
    if genotype.space in GAN_SPACES:
        raise ConfigError(f"model.genotype={m.genotype} is a {genotype.space!r} (GAN) genotype; a classifier needs a "
                          "classifier genotype such as darts-v2, or `raynas retrain` it with a GAN preset")
    return classifier_for(cfg, genotype, dataset_classes(d.name, d.root), auxiliary=m.auxiliary)


def classifier_for(cfg, genotype: Any, num_classes: int, *, auxiliary: bool) -> nn.Module:
    """``genotype``'s evaluation network at the config's sizes (``model.*``) for ``cfg.data``'s images."""
    from raynas.nn.registry import build_network

    m, d = cfg.model, cfg.data
    return build_network(genotype, resolution=d.resolution, channels=d.channels, width=m.channels, layers=m.layers,
                         num_classes=num_classes, auxiliary=auxiliary,
                         reduction_positions=m.reduction_positions or None, imagenet=m.imagenet,
                         stem_multiplier=m.stem_multiplier)
