"""Build any genotype's network by its space name, plus the weight-sharing plumbing supernets share.

``register_network(space, builder)`` maps a space name to a builder of its *derived* (fixed)
network; ``build_network(genotype, **kwargs)`` validates the genotype and calls it. Builders take
the common keyword arguments ``resolution``, ``channels`` (image channels), ``width`` (gf_dim /
df_dim; ``None`` = the paper's retraining width) and ``latent_dim`` (``None`` = the space's
default), accepting and ignoring the ones that do not apply to them.

``Supernet`` is a mixin for weight-sharing supernets whose searchable ops live at module paths
``cells.<i>.<group>.<j>.<op>`` (one ``nn.ModuleDict`` per edge, keyed by op name, the same paths in
the supernet and in the derived network). That one convention gives, for any genotype, the subnet's
state dict, its parameters, and a ``SubnetView`` that trains like an ordinary model.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from raynas.config.common import BASE_MAX_RESOLUTION
from raynas.errors import ConfigError, GenotypeError
from raynas.plugins import load_plugins
from raynas.spaces.genotype import Genotype, get_space, network_module

NetworkBuilder = Callable[..., nn.Module]

_NETWORKS: dict[str, NetworkBuilder] = {}
_SUPERNETS: dict[str, NetworkBuilder] = {}


def register_network(space_name: str, builder: NetworkBuilder) -> NetworkBuilder:
    """Register ``builder(genotype, *, resolution, channels, width, latent_dim, ...)`` for a space."""
    _NETWORKS[space_name] = builder
    return builder


def register_supernet(space_name: str, builder: NetworkBuilder) -> NetworkBuilder:
    """Register ``builder(*, resolution, channels, width, latent_dim, ...)`` -> supernet for a space."""
    _SUPERNETS[space_name] = builder
    return builder


def load_networks(space_name: str | None = None) -> None:
    """Register the plugins' networks and, for ``space_name``, the module its space names (``network_module``: a
    method package keeps its torch parts out of its light import). The core's registered with ``raynas.nn``."""
    load_plugins()
    if space_name is not None:
        with contextlib.suppress(GenotypeError):  # an unknown space: the lookup that follows names the known ones
            module = network_module(space_name)
            if module:
                importlib.import_module(module)


def _lookup(table: dict[str, NetworkBuilder], space_name: str, what: str) -> NetworkBuilder:
    if space_name not in table:
        load_networks(space_name)
    if space_name not in table:
        get_space(space_name)  # unknown space: raises GenotypeError listing the known ones
        raise GenotypeError(f"space {space_name!r} has no registered {what}; known: {', '.join(sorted(table))}")
    return table[space_name]


def build_network(genotype: Genotype, **kwargs: Any) -> nn.Module:
    """The derived (fixed) network of ``genotype``, freshly initialised."""
    genotype.validate()
    return _lookup(_NETWORKS, genotype.space, "network builder")(genotype, **kwargs)


def build_supernet(space_name: str, **kwargs: Any) -> nn.Module:
    """The weight-sharing supernet of a space (same keyword arguments as ``build_network``)."""
    return _lookup(_SUPERNETS, space_name, "supernet builder")(**kwargs)


def registered_networks() -> list[str]:
    load_networks()
    return sorted(_NETWORKS)


# ============================================================================ fixed network families
@dataclass(frozen=True)
class Family:
    """A fixed network family that ``model.generator`` / ``model.discriminator`` names (SNGAN, StyleGAN2, ...):
    ``build(model, data)`` makes its ``role`` network from the config's model and data sections."""

    name: str
    role: str  # generator | discriminator
    build: Callable[[Any, Any], nn.Module]
    max_resolution: int = BASE_MAX_RESOLUTION  # the largest data.resolution it is built for


_FAMILIES: dict[tuple[str, str], Family] = {}


def register_family(name: str, role: str, build: Callable[[Any, Any], nn.Module], *,
                    max_resolution: int = BASE_MAX_RESOLUTION) -> Family:
    """Called by the module that defines the family's network, at import; ``max_resolution`` above 256 lets a
    fixed run of it take ``data.resolution`` up to that (StyleGAN2, ProGAN: 1024)."""
    if role not in ("generator", "discriminator"):
        raise ValueError(f"family {name!r}: role {role!r} is not generator or discriminator")
    family = _FAMILIES[(role, name)] = Family(name, role, build, int(max_resolution))
    return family


def family_max_resolution(name: str, role: str) -> int:
    """The largest ``data.resolution`` family ``name`` builds its ``role`` network for (256 for a genotype
    network or a name no family has: building it says what is wrong)."""
    if (role, name) not in _FAMILIES:
        load_plugins()
    family = _FAMILIES.get((role, name))
    return family.max_resolution if family is not None else BASE_MAX_RESOLUTION


def families_up_to(resolution: int, role: str) -> list[str]:
    """The ``role`` families built for ``resolution``, by name: what an error suggests."""
    load_plugins()
    return sorted(n for (r, n), f in _FAMILIES.items() if r == role and f.max_resolution >= resolution)


def build_family(name: str, role: str, model: Any, data: Any) -> nn.Module:
    """The ``role`` network of family ``name`` at the config's sizes."""
    if (role, name) not in _FAMILIES:
        load_plugins()  # the core families registered with raynas.nn
    if (role, name) not in _FAMILIES:
        known = sorted(n for r, n in _FAMILIES if r == role)
        raise ConfigError(f"model.{role}={name!r} is not a {role} family; known: {', '.join([*known, 'genotype'])}")
    return _FAMILIES[(role, name)].build(model, data)


def sized(cls: Callable[..., nn.Module], key: str, *args: Any, **kwargs: Any) -> nn.Module:
    """A fixed family network; a size it cannot take (a resolution that is not a power of two) is a ConfigError."""
    try:
        return cls(*args, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}; set data.resolution to a power of two (e.g. 32, 64, 128 or 256)") from None


_EDGE_KEY = re.compile(r"^cells\.(\d+)\.([A-Za-z_]+)\.(\d+)\.([^.]+)(?:\.|$)")


class Supernet:
    """Mixin for ``nn.Module`` supernets; subclasses set ``space_name`` and implement ``derive``.

    How EAGAN trains one: a single optimiser over ``supernet.parameters()``, one genotype sampled
    per batch, ``optimizer.zero_grad(set_to_none=True)`` (the default) before each backward. Ops off
    the sampled path then have ``grad is None`` and every torch optimiser skips them (no update, no
    weight decay, no momentum step), so only the active path and the shared layers move.
    ``SubnetView`` adds a per-genotype ``parameters()`` for code that builds its own optimiser.
    """

    space_name: str = ""

    def check_genotype(self, genotype: Genotype) -> Genotype:
        if not isinstance(genotype, Genotype):
            raise GenotypeError(f"{type(self).__name__} needs a Genotype, got {type(genotype).__name__}")
        if genotype.space != self.space_name:
            raise GenotypeError(f"{type(self).__name__} runs {self.space_name!r} genotypes, "
                                f"got one for {genotype.space!r}")
        return _validated(genotype)

    def is_active(self, key: str, genotype: Genotype) -> bool:
        """Whether a parameter/buffer name belongs to ``genotype``'s path (shared ones always do)."""
        m = _EDGE_KEY.match(key)
        if m is None:
            return True
        cell, group, edge, op = int(m[1]), m[2], int(m[3]), m[4]
        ops = genotype.cells[cell].get(group)
        if not ops:  # not a searchable group (e.g. the fixed skip convs ``cells.<i>.skip_in.<j>``)
            return True
        return ops[edge] == op

    def subnet_state_dict(self, genotype: Genotype) -> OrderedDict[str, torch.Tensor]:
        """State of ``genotype``'s derived network (its ``load_state_dict`` takes it, strict).

        The tensors are the supernet's own (detached, not copied); loading copies them. Spectral-norm
        power-iteration vectors and BN statistics come along, so the derived net computes exactly
        what the supernet path does.
        """
        self.check_genotype(genotype)
        state = self.state_dict()  # type: ignore[attr-defined]
        return OrderedDict((k, v) for k, v in state.items() if self.is_active(k, genotype))

    def derive(self, genotype: Genotype) -> nn.Module:
        """A fresh derived network for ``genotype`` with this supernet's configuration (not weights)."""
        raise NotImplementedError

    def export(self, genotype: Genotype) -> nn.Module:
        """The derived network for ``genotype`` carrying this supernet's current weights."""
        net = self.derive(genotype)
        net.load_state_dict(self.subnet_state_dict(genotype), strict=True)
        device = next(self.parameters()).device  # type: ignore[attr-defined]
        return net.to(device)


_VALIDATED: set[Genotype] = set()


def _validated(genotype: Genotype) -> Genotype:
    # validation is pure and genotypes are frozen/hashable: check each one once per process
    if genotype not in _VALIDATED:
        genotype.validate()
        if len(_VALIDATED) > 4096:
            _VALIDATED.clear()
        _VALIDATED.add(genotype)
    return genotype


class SubnetView(nn.Module):
    """One genotype's path through a supernet, usable wherever a model is expected.

    ``forward(x) == supernet(x, genotype)`` and ``parameters()`` yields only the path's ops plus the
    shared layers, so an optimiser built from the view cannot touch other ops. The filtering applies
    to calls on the view itself; a parent module that contains a view walks the whole supernet.
    ``train()/eval()/to()`` act on the whole supernet (the weights are shared). ``export()`` cuts
    the derived network out with its weights.
    """

    def __init__(self, supernet: nn.Module, genotype: Genotype):
        super().__init__()
        if not isinstance(supernet, Supernet):
            raise TypeError(f"SubnetView needs a Supernet, got {type(supernet).__name__}")
        self.supernet = supernet
        self.genotype = supernet.check_genotype(genotype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.genotype)

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, nn.Parameter]]:
        if not recurse:  # the view owns no parameters directly
            return
        base = f"{prefix}.supernet" if prefix else "supernet"
        sup: Supernet = self.supernet  # type: ignore[assignment]
        for name, p in self.supernet.named_parameters(remove_duplicate=remove_duplicate):
            if sup.is_active(name, self.genotype):
                yield f"{base}.{name}", p

    def subnet_state_dict(self) -> OrderedDict[str, torch.Tensor]:
        return self.supernet.subnet_state_dict(self.genotype)  # type: ignore[operator]

    def export(self) -> nn.Module:
        return self.supernet.export(self.genotype)  # type: ignore[operator]
