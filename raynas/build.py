"""Config → networks: the one place that turns a model section into networks (G and D for the GAN task,
the classifier for the classify task)."""

from __future__ import annotations

from typing import Any

from torch import nn

from raynas.config import DataConfig, ModelConfig
from raynas.errors import ConfigError
from raynas.nn.registry import build_family

# how to use a genotype of each role that is not the one asked for
_ELSEWHERE = {
    "generator": "a generator genotype: pass it as model.g_genotype (raynas retrain G.json [D.json])",
    "discriminator": "a discriminator genotype: pass it as model.d_genotype (raynas retrain G.json D.json)",
    "pair": "a coupled G+D pair: use the best_G.json and best_D.json the same search wrote beside it",
}


def build_generator(model: ModelConfig, data: DataConfig) -> nn.Module:
    """A fixed family's generator (SNGAN, StyleGAN2, ProGAN, ...: ``register_family``) or the derived network of a
    genotype file."""
    if model.generator != "genotype":
        return build_family(model.generator, "generator", model, data)
    return _from_genotype(model.g_genotype, "model.g_genotype", "generator",
                          gan_genotype_sizes(model, data, "generator"))


def build_discriminator(model: ModelConfig, data: DataConfig) -> nn.Module:
    if model.discriminator != "genotype":
        return build_family(model.discriminator, "discriminator", model, data)
    return _from_genotype(model.d_genotype, "model.d_genotype", "discriminator",
                          gan_genotype_sizes(model, data, "discriminator"))


def load_gan_genotype(path: str, key: str, role: str) -> Any:
    """``path``'s genotype when it describes a ``role`` ("generator" or "discriminator"); any other space (a
    classifier's cells, the other half of the GAN) is a ConfigError now, not a failing trial later."""
    from raynas.spaces import Genotype
    from raynas.spaces.genotype import space_role, spaces_with_role

    genotype = Genotype.load(path)
    have = space_role(genotype.space)
    if have == role:
        return genotype
    what = _ELSEWHERE.get(have, f"a classifier genotype: train it with `raynas retrain {path}` (a classifier preset)")
    raise ConfigError(f"{key}={path} holds a {genotype.space!r} genotype, not a {role} genotype "
                      f"({' or '.join(spaces_with_role(role))}); it is {what}")


def _from_genotype(path: str | None, key: str, role: str, sizes: dict[str, Any]) -> nn.Module:
    from raynas.nn.registry import build_network

    if not path:
        raise ConfigError(f"{key} must name a genotype JSON file when the network is 'genotype' "
                          f"(e.g. --set {key}=runs/NAME/best_G.json)")
    return build_network(load_gan_genotype(path, key, role), **sizes)


def gan_genotype_sizes(model: ModelConfig, data: DataConfig, role: str) -> dict[str, Any]:
    """The ``build_network`` sizes fixed training builds a GAN genotype of ``role`` at (``build_generator`` /
    ``build_discriminator`` above): the data's images, ``model.gf_dim`` and the latent, or ``model.df_dim``."""
    sizes: dict[str, Any] = {"resolution": data.resolution, "channels": data.channels}
    if role == "generator":
        return {**sizes, "width": model.gf_dim, "latent_dim": model.latent_dim}
    return {**sizes, "width": model.df_dim}


def run_network_sizes(cfg, genotype: Any, searched: Any = None) -> tuple[dict[str, Any], str]:
    """(sizes, where they come from) of the network a run of ``cfg`` builds ``genotype`` as: ``searched(cfg,
    genotype)`` when given (a method's own sizes for the genotypes it searches: ``Method.network_sizes``, e.g.
    EAGAN's search widths), else fixed training's (``model.*``, ``data.*``); a classifier genotype: its dataset,
    cells and initial channels. ``raynas arch show --from-run`` describes exactly this network."""
    from raynas.spaces.genotype import space_role

    role = space_role(genotype.space)
    if role == "classifier":
        return {"dataset": cfg.data.name, "layers": cfg.model.layers, "channels": cfg.model.channels}, \
            "model.layers, model.channels"
    if role not in ("generator", "discriminator"):
        raise ConfigError(f"a {genotype.space!r} genotype is a pair: describe its halves (raynas arch show)")
    if searched is not None:
        return dict(searched(cfg, genotype)), f"the {cfg.method} search's widths"
    if cfg.task != "gan":
        raise ConfigError(f"a {genotype.space!r} (GAN) genotype, but the config is a {cfg.task} one; pass a GAN run "
                          "or preset")
    which = "model.gf_dim, model.latent_dim" if role == "generator" else "model.df_dim"
    return gan_genotype_sizes(cfg.model, cfg.data, role), which


def latent_dim_of(generator: nn.Module, default: int) -> int:
    """Generators expose ``latent_dim``; fall back to the configured one."""
    return int(getattr(generator, "latent_dim", default))


def build_classifier(cfg) -> nn.Module:
    """The evaluation network of ``cfg.model.genotype`` (any classifier space) for ``cfg.data``'s images."""
    from raynas.data import dataset_classes
    from raynas.spaces import Genotype
    from raynas.spaces.genotype import space_role

    m, d = cfg.model, cfg.data
    genotype = Genotype.load(m.genotype)
    if space_role(genotype.space) != "classifier":
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
