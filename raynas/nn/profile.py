"""Size and cost of networks: parameter counts, FLOPs per image, and a per-cell architecture summary.

FLOPs follow ``torch.utils.flop_counter.FlopCounterMode``: a multiply-add counts as **2 FLOPs**, and
only matrix products and convolutions are counted (element-wise ops, pooling, interpolation,
normalisation and activations are not). Many NAS papers quote multiply-adds (MACs) as "FLOPs":
halve our number to compare with those. ``count_flops`` reports the cost of *one image*: it counts a batch of
two and a batch of one and returns the difference, so work that does not scale with the batch (the
spectral-norm σ of every weight) is excluded.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from raynas.nn.registry import build_network
from raynas.spaces.genotype import Genotype


def count_params(module: nn.Module) -> int:
    """Number of trainable-or-not parameters (shared parameters counted once; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def _flops(module: nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        module(x)
    return int(counter.get_total_flops())


def count_flops(module: nn.Module, example_input: torch.Tensor) -> int:
    """Forward FLOPs per image (2 per multiply-add; see the module docstring).

    Runs in eval mode under ``no_grad`` and restores every submodule's train/eval flag, so BN
    statistics and spectral-norm vectors are left untouched.
    """
    one = example_input[:1]
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            per_two = _flops(module, torch.cat([one, one]))
            per_one = _flops(module, one)
    finally:
        for m, training in flags:
            m.training = training
    return per_two - per_one


def _example_input(net: nn.Module, resolution: int, channels: int) -> torch.Tensor:
    device = next(iter(net.parameters())).device
    latent_dim = getattr(net, "latent_dim", None)
    if isinstance(latent_dim, int):  # a generator: latents in
        return torch.randn(1, latent_dim, device=device)
    return torch.randn(1, channels, resolution, resolution, device=device)


def summarize(genotype: Genotype, *, resolution: int, channels: int, width: int | None = None,
              latent_dim: int | None = None, **build_kwargs: Any) -> dict[str, Any]:
    """Build ``genotype``'s derived network and describe it (``raynas arch show``).

    Keys: ``space``, ``resolution``, ``channels``, ``width`` (the width the network was built at: the builder's
    default when ``width`` is None, then ``width_default`` is True), ``latent_dim`` (a generator's), ``params``,
    ``flops`` (per image, 2 per multiply-add), ``cells`` (per cell: ``index``,
    ``ops`` = the genotype cell by edge group, ``params``, and ``downsample`` where the network has
    that setting), ``other_params`` (everything outside the cells: latent projections, stem, to_rgb,
    head).
    """
    if not isinstance(genotype, Genotype):  # a registered genotype format (e.g. darts) has its own summary
        from raynas.errors import GenotypeError

        raise GenotypeError(f"this summary describes cell-group genotypes; a {genotype.space!r} genotype is "
                            "summarised by its space (darts: raynas.nn.darts_net.summarize_darts)")
    genotype.validate()
    net = build_network(genotype, resolution=resolution, channels=channels, width=width,
                        latent_dim=latent_dim, **build_kwargs)
    params = count_params(net)
    flops = count_flops(net, _example_input(net, resolution, channels))
    cell_modules = list(getattr(net, "cells", []))
    downsample = getattr(net, "downsample", None)
    cells: list[dict[str, Any]] = []
    for i, cell in enumerate(genotype.cells):
        entry: dict[str, Any] = {"index": i, "ops": cell.to_dict(),
                                 "params": count_params(cell_modules[i]) if i < len(cell_modules) else None}
        if isinstance(downsample, tuple) and i < len(downsample):
            entry["downsample"] = bool(downsample[i])
        cells.append(entry)
    in_cells = sum(c["params"] or 0 for c in cells)
    dead, dead_params = _dead_edges(genotype, cell_modules, downsample)
    built = getattr(net, "gf_dim", None) or getattr(net, "df_dim", None)  # the width the builder used
    sizes = {"width": width if width is not None else built, "width_default": width is None}
    if isinstance(getattr(net, "latent_dim", None), int):
        sizes["latent_dim"] = net.latent_dim
    return {"space": genotype.space, "resolution": resolution, "channels": channels, **sizes,
            "params": params, "flops": flops, "cells": cells, "other_params": params - in_cells,
            "dead_edges": dead, "dead_params": dead_params}


def _dead_edges(genotype: Genotype, cell_modules: list[torch.nn.Module],
                downsample: Any = None) -> tuple[list[str], int]:
    """Edges whose op never reaches the output, and the parameters they hold (counted in ``params``, as
    the papers count them)."""
    from raynas.spaces import get_space

    space = get_space(genotype.space)
    kwargs = {"downsample": downsample} if isinstance(downsample, tuple) else {}
    dead = space.dead_edges(space.encode(genotype), **kwargs)
    edges = space.edges()
    n = 0
    for k in dead:
        ci, group, j, _ = edges[k]
        modules = getattr(cell_modules[ci], group, None) if ci < len(cell_modules) else None
        if modules is not None and j < len(modules):
            n += count_params(modules[j])
    return [space.edge_names()[k] for k in dead], n


def _human(n: float, unit: str = "") -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def format_summary(summary: dict[str, Any]) -> str:
    """A human-readable table of a ``summarize`` result."""
    width = summary.get("width")
    head = (f"{summary['space']}  {summary['resolution']}x{summary['resolution']}, {summary['channels']} channel(s), "
            f"width {width if width is not None else 'default'}"
            + (" (the builder's default)" if summary.get("width_default") and width is not None else "")
            + (f", latent {summary['latent_dim']}" if summary.get("latent_dim") else "")
            + (f"; {summary['sizes_from']}" if summary.get("sizes_from") else ""))
    lines = [head,
             f"params {summary['params']:,} ({_human(summary['params'])})   "
             f"FLOPs/image {summary['flops']:,} ({_human(summary['flops'])}; 2 per multiply-add)",
             "",
             f"{'cell':<6}{'params':>14}  ops"]
    for c in summary["cells"]:
        ops = " | ".join(f"{g}: {', '.join(o) if o else '-'}" for g, o in c["ops"].items())
        if c.get("downsample") is False:
            ops += "   (no down-sampling: down edges unused)"
        p = f"{c['params']:,}" if c["params"] is not None else "?"
        lines.append(f"{c['index']:<6}{p:>14}  {ops}")
    lines.append(f"{'other':<6}{summary['other_params']:>14,}  (latent/stem, to_rgb/head)")
    if summary.get("dead_edges"):
        lines.append(f"dead edges (their ops never reach the output): {', '.join(summary['dead_edges'])}; "
                     f"{summary['dead_params']:,} params")
    return "\n".join(lines)


# ============================================================================ any space: `raynas arch show`
# Classifier spaces register (summary, formatter) here; GAN spaces use ``summarize`` above.
_SPACE_SUMMARIES: dict[str, tuple[Any, Any]] = {}

GAN_DATASET_SHAPES = {"cifar10": (32, 3), "cifar100": (32, 3), "stl10": (48, 3), "fashion-mnist": (32, 1),
                      "mnist": (32, 1), "embedded": (32, 1), "imagenet": (64, 3)}


def register_summary(space: str, summarize_fn: Any, format_fn: Any) -> None:
    """``summarize_fn(genotype, *, dataset, layers, channels) -> dict`` and ``format_fn(dict) -> str`` for a space
    whose networks are not cell-group generators/discriminators (classifier spaces)."""
    _SPACE_SUMMARIES[space] = (summarize_fn, format_fn)


def _space_summary(space: str) -> tuple[Any, Any] | None:
    if space not in _SPACE_SUMMARIES:
        from raynas.nn.registry import load_networks

        load_networks(space)  # imports the network modules, which register their summaries
    return _SPACE_SUMMARIES.get(space)


def describe(genotype: Any, *, dataset: str = "cifar10", width: int | None = None, layers: int | None = None,
             channels: int | None = None) -> dict[str, Any]:
    """What ``raynas arch show`` prints for any genotype: a GAN genotype at ``width`` for the dataset's image
    size, or a classifier genotype at ``layers`` cells and ``channels`` initial channels."""
    custom = _space_summary(genotype.space)
    if custom is not None:
        return custom[0](genotype, dataset=dataset, layers=layers, channels=channels)
    from raynas.errors import ConfigError

    if dataset not in GAN_DATASET_SHAPES:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(GAN_DATASET_SHAPES)}")
    resolution, image_channels = GAN_DATASET_SHAPES[dataset]
    return summarize(genotype, resolution=resolution, channels=image_channels, width=width)


def format_any(summary: dict[str, Any]) -> str:
    custom = _space_summary(summary["space"])
    return custom[1](summary) if custom is not None else format_summary(summary)


def format_classifier_summary(summary: dict[str, Any]) -> str:
    """A human-readable table of a classifier summary (DARTS' counting: params without the auxiliary head)."""
    aux = summary.get("params_with_aux")
    lines = [f"{summary['space']}  {summary['layers']} cells, C={summary['channels']}, "
             f"{summary['resolution']}x{summary['resolution']}x{summary['in_channels']}, "
             f"{summary['num_classes']} classes, reductions at {list(summary['reduction_positions'])}",
             f"params {summary['params']:,} ({_human(summary['params'])}; without the auxiliary head)"
             + (f", {aux:,} with it" if aux is not None else ", no auxiliary head fits this input size"),
             f"FLOPs/image {summary['flops']:,} ({_human(summary['flops'])}; 2 per multiply-add)", "",
             f"{'cell':<6}{'type':<8}{'C':>5}{'size':>6}{'params':>12}  ops"]
    for c in summary["cells"]:
        ops = ", ".join(f"{op}<-{src}" for op, src in c["ops"])
        lines.append(f"{c['index']:<6}{'reduce' if c['reduction'] else 'normal':<8}{c['C']:>5}{c['size']:>6}"
                     f"{c['params']:>12,}  {ops}  concat {list(c['concat'])}")
    lines.append(f"{'other':<6}{'':<8}{'':>5}{'':>6}{summary['other_params']:>12,}  (stem, classifier)")
    return "\n".join(lines)


# ============================================================================ fixed families: `arch show stylegan2`
FAMILY_DEFAULTS: dict[str, dict[str, int]] = {
    "stylegan2": {"resolution": 256, "channel_multiplier": 2, "latent": 512, "mapping_layers": 8, "image_channels": 3},
    "progan": {"resolution": 32, "channels": 512, "latent": 512, "image_channels": 3},
}


def family_sizes(family: str, **sizes: int | None) -> dict[str, int]:
    """``sizes`` over the family's defaults (``None`` = default); an unknown family or size is a ValueError."""
    if family not in FAMILY_DEFAULTS:
        raise ValueError(f"unknown network family {family!r}; choose one of {', '.join(FAMILY_DEFAULTS)}")
    unknown = set(sizes) - set(FAMILY_DEFAULTS[family])
    if unknown:
        raise ValueError(f"{family} has no size {', '.join(sorted(unknown))}")
    return {**FAMILY_DEFAULTS[family], **{k: v for k, v in sizes.items() if v is not None}}


def family_networks(family: str, **sizes: int | None) -> tuple[nn.Module, nn.Module]:
    """G and D of a fixed family (``stylegan2`` or ``progan``) at ``sizes`` (keys of ``FAMILY_DEFAULTS``; missing
    ones take the defaults: the Re-GAN authors' settings), built on the current default device."""
    from raynas.nn.progan import ProGANDiscriminator, ProGANGenerator
    from raynas.nn.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

    s = family_sizes(family, **sizes)
    if family == "stylegan2":
        return (StyleGAN2Generator(s["resolution"], s["latent"], s["mapping_layers"], s["channel_multiplier"],
                                   s["image_channels"]),
                StyleGAN2Discriminator(s["resolution"], s["channel_multiplier"], s["image_channels"]))
    return (ProGANGenerator(s["latent"], s["channels"], s["resolution"], s["image_channels"]),
            ProGANDiscriminator(s["channels"], s["resolution"], s["image_channels"]))


def summarize_family(family: str, **sizes: int | None) -> dict[str, Any]:
    """Parameters and FLOPs per image of a fixed family's G and D (``raynas arch show stylegan2|progan``).

    The networks are built on the meta device: no memory, no weights, only shapes, so even 1024 px is quick.
    """
    s = family_sizes(family, **sizes)
    with torch.device("meta"):
        g, d = family_networks(family, **s)
        z = torch.empty(1, s["latent"])
        img = torch.empty(1, s["image_channels"], s["resolution"], s["resolution"])
        return {"family": family, **s, "G": {"params": count_params(g), "flops": count_flops(g, z)},
                "D": {"params": count_params(d), "flops": count_flops(d, img)}}


def format_family(summary: dict[str, Any]) -> str:
    sizes = ", ".join(f"{k} {v}" for k, v in summary.items() if k not in ("family", "G", "D"))
    lines = [f"{summary['family']}  {sizes}"]
    for k in ("G", "D"):
        p, f = summary[k]["params"], summary[k]["flops"]
        lines.append(f"{k}  params {p:,} ({_human(p)})   FLOPs/image {f:,} ({_human(f)}; 2 per multiply-add)")
    return "\n".join(lines)
