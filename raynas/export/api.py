"""``raynas.model``: the network of a shipped genotype, a genotype file or a run, as a plain ``torch.nn.Module``.

Every family goes through the routes raynas itself trains with: a genotype through the network registry
(``raynas.nn.registry.build_network``), a fixed run through ``raynas.build`` (the exact network its trainer
built, so its checkpoint loads), the SNGAN/AutoGAN baselines through ``raynas.build`` too. A run's trained
weights come with it: a GAN's EMA generator (its raw one where it kept no EMA), its discriminator, a classifier's
weights, or any weights a search left that fit the network it found (e.g. a DARTS-GAL run's retrained pruned
network). A search that trained only a supernet gives the found network freshly initialised, and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raynas.errors import CheckpointError, ConfigError, GenotypeError, RunDirError

KINDS = ("generator", "discriminator", "classifier")
# the fixed networks of ``raynas.build`` that need no genotype, by the name ``model.generator`` /
# ``model.discriminator`` gives them, and the role they play
# (the first role is the default; stylegan2 and progan name a generator and a discriminator, ``part`` picks)
BASELINES = {"sngan": ("generator",), "autogan": ("discriminator",), "stylegan2": ("generator", "discriminator"),
             "progan": ("generator", "discriminator")}
# the setting --width gives each baseline: channels (sngan, autogan), the channel cap (stylegan2), channels per
# stage (progan)
WIDTH_KEYS = {"sngan": "gf_dim", "autogan": "df_dim", "stylegan2": "max_channels", "progan": "progan_channels"}
INIT_SEED = 0  # an untrained network is initialised the same way every time: an export is reproducible
_SIZE_FLAGS = {"dataset": "--dataset", "layers": "--layers", "channels": "--channels", "width": "--width",
               "latent_dim": "--latent-dim"}


@dataclasses.dataclass
class Network:
    """A built network in eval mode and what it is: what ``export``, ``sample`` and the model card need."""

    module: nn.Module
    kind: str  # generator | discriminator | classifier
    family: str  # the genotype's space, or the baseline's name
    genotype: Any | None
    input_shape: tuple[int, ...]  # one example: (latent_dim,) for a generator, (C, H, W) otherwise
    source: str
    sizes: dict[str, Any] = dataclasses.field(default_factory=dict)
    run: Path | None = None
    cfg: Any = None  # the run's resolved config
    weights: str | None = None  # where the trained weights came from; None: freshly initialised
    note: str = ""  # why a run's network came without weights

    def example_input(self, batch: int = 2, seed: int = 0) -> torch.Tensor:
        """A seeded random input batch: latents (standard normal) for a generator, images in [-1, 1] otherwise."""
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, *self.input_shape, generator=gen)
        return x if self.kind == "generator" else x.clamp(-1, 1)


def model(source: str | Path, *, part: str | None = None, dataset: str | None = None, layers: int | None = None,
          channels: int | None = None, width: int | None = None, latent_dim: int | None = None,
          weights: bool | None = None) -> nn.Module:
    """The network of ``source`` in eval mode: a shipped genotype name (``darts-v2``), a genotype JSON file, a
    baseline (``sngan``, ``autogan``) or a run directory (with its trained weights when it trained them).

    Sizes apply to genotypes and baselines (a run fixes its own): ``dataset`` (image size, channels, classes;
    default cifar10), ``layers`` and ``channels`` (classifier cells and initial channels C), ``width`` and
    ``latent_dim`` (GAN networks). ``part`` picks ``generator`` or ``discriminator`` of a GAN run or a coupled
    EAGAN pair. ``weights``: None loads a run's weights when it has them, True insists, False never loads.
    Classifiers return ``(logits, auxiliary_logits)`` as DARTS does (the second is None in eval mode)."""
    return resolve(source, part=part, dataset=dataset, layers=layers, channels=channels, width=width,
                   latent_dim=latent_dim, weights=weights).module


def resolve(source: str | Path, *, part: str | None = None, weights: bool | None = None,
            **sizes: Any) -> Network:
    """``model``'s network together with what it is (kind, family, genotype, input shape, run, weights)."""
    if part is not None and part not in KINDS:
        raise ConfigError(f"part={part!r}: choose one of {', '.join(KINDS)}")
    sizes = {k: v for k, v in sizes.items() if v is not None}
    unknown = sorted(set(sizes) - set(_SIZE_FLAGS))
    if unknown:
        raise ConfigError(f"unknown size {', '.join(unknown)}; sizes are {', '.join(_SIZE_FLAGS)}")
    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        torch.manual_seed(INIT_SEED)
        return _resolve(source, part, weights, sizes)


def _resolve(source: str | Path, part: str | None, weights: bool | None, sizes: dict[str, Any]) -> Network:
    path = Path(source).expanduser()
    if path.is_dir():
        return _from_run(path, part, weights, sizes)
    baseline = str(source) in BASELINES and not path.exists()
    genotype = None if baseline else _load_genotype(source)  # a missing file: one error naming what fits
    if weights:
        raise CheckpointError(f"{source} is a {'baseline network' if baseline else 'genotype'}, not a run: it holds "
                              "no trained weights; pass the run directory that trained it (raynas train / retrain)")
    if baseline:
        return _baseline(str(source), part, sizes)
    genotype, kind = _pick_part(genotype, part, str(source))
    net = _build(genotype, kind, **sizes)
    return dataclasses.replace(net, source=str(source))


# ============================================================================ genotypes and baselines
def _load_genotype(source: str | Path) -> Any:
    from raynas.spaces import Genotype
    from raynas.spaces.genotype import builtin_genotypes

    if not Path(source).expanduser().exists() and str(source) not in builtin_genotypes():
        raise GenotypeError(f"{source} is neither a run directory, a genotype JSON file, a shipped genotype "
                            f"({', '.join(builtin_genotypes())}) nor a baseline network ({', '.join(BASELINES)}); "
                            "check the path")
    return Genotype.load(str(source))


def kind_of(space: str) -> str:
    """The role of a space's networks: generator, discriminator or classifier."""
    from raynas.spaces.genotype import space_role

    role = space_role(space)
    return role if role in ("generator", "discriminator") else "classifier"


def _pick_part(genotype: Any, part: str | None, where: str) -> tuple[Any, str]:
    """The genotype of the network asked for: a coupled pair's half (generator unless ``part`` says otherwise)."""
    from raynas.spaces.genotype import space_role

    if space_role(genotype.space) == "pair":
        from raynas.spaces import get_space

        if part == "classifier":
            raise ConfigError(f"{where} holds a {genotype.space!r} GAN pair; part is generator or discriminator")
        g, d = get_space(genotype.space).split(genotype)
        return (d, "discriminator") if part == "discriminator" else (g, "generator")
    kind = kind_of(genotype.space)
    if part is not None and part != kind:
        raise ConfigError(f"{where} holds a {genotype.space!r} genotype, which builds a {kind}, not a {part}")
    return genotype, kind


def _refuse(sizes: dict[str, Any], names: tuple[str, ...], why: str) -> None:
    given = [_SIZE_FLAGS[n] for n in names if n in sizes]
    if given:
        raise ConfigError(f"{', '.join(given)} do{'es' if len(given) == 1 else ''} not apply: {why}")


def _gan_shape(dataset: str) -> tuple[int, int]:
    from raynas.nn.profile import GAN_DATASET_SHAPES

    if dataset not in GAN_DATASET_SHAPES:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(GAN_DATASET_SHAPES)}")
    return GAN_DATASET_SHAPES[dataset]


def _build(genotype: Any, kind: str, *, dataset: str = "cifar10", layers: int | None = None,
           channels: int | None = None, width: int | None = None, latent_dim: int | None = None) -> Network:
    """``genotype``'s network at the sizes a user names (``raynas arch show``'s meaning of each)."""
    from raynas.nn.registry import build_network

    if kind != "classifier":
        given = {k: v for k, v in (("layers", layers), ("channels", channels)) if v is not None}
        _refuse(given, ("layers", "channels"), f"they size classifier cells; a {genotype.space!r} {kind} takes --width")
        if kind == "discriminator" and latent_dim is not None:
            raise ConfigError("--latent-dim does not apply: a discriminator takes images")
        resolution, image_channels = _gan_shape(dataset)
        kw: dict[str, Any] = {"resolution": resolution, "channels": image_channels, "width": width}
        if kind == "generator":
            kw["latent_dim"] = latent_dim
        net = build_network(genotype, **kw)
        shape = _input_shape(net, kind, image_channels, resolution)
        return Network(net.eval(), kind, genotype.space, genotype, shape, "",
                       _gan_sizes(dataset, resolution, image_channels, width, net, kind))
    if width is not None or latent_dim is not None:
        raise ConfigError("--width/--latent-dim do not apply: they size GAN networks; a classifier takes "
                          "--layers and --channels")
    from raynas.nn.darts_net import resolve_dataset_shape

    shape = resolve_dataset_shape(dataset)
    kw = {"resolution": shape.resolution, "num_classes": shape.num_classes, "imagenet": shape.imagenet,
          "width": channels, "layers": layers}
    # a genotype that fixes its image channels (DARTS-GAL's pruned networks) builds for its own
    image_channels = getattr(genotype, "in_channels", None)
    if image_channels is None:
        image_channels = kw["channels"] = shape.in_channels
    net = build_network(genotype, **kw)
    sizes = _classifier_sizes(dataset, net, image_channels, shape.resolution, shape.num_classes)
    return Network(net.eval(), kind, genotype.space, genotype, (image_channels, shape.resolution, shape.resolution),
                   "", sizes)


def _classifier_sizes(dataset: str, net: nn.Module, image_channels: int, resolution: int, num_classes: int
                      ) -> dict[str, Any]:
    """A classifier's sizes as ``raynas export`` names them (``channels``: the initial cell width C)."""
    return {"dataset": dataset, "layers": getattr(net, "layers", None), "channels": getattr(net, "C", None),
            "resolution": resolution, "image_channels": image_channels, "num_classes": num_classes}


def _gan_sizes(dataset: str, resolution: int, image_channels: int, width: int | None, net: nn.Module, kind: str
               ) -> dict[str, Any]:
    """A GAN network's sizes as ``raynas export`` names them (``width``: gf_dim / df_dim; None: the default)."""
    sizes = {"dataset": dataset, "resolution": resolution, "image_channels": image_channels, "width": width}
    if kind == "generator":
        sizes["latent_dim"] = int(net.latent_dim)
    return sizes


def _input_shape(net: nn.Module, kind: str, image_channels: int, resolution: int) -> tuple[int, ...]:
    if kind == "generator":
        return (int(net.latent_dim),)
    return (image_channels, resolution, resolution)


def _baseline(name: str, part: str | None, sizes: dict[str, Any]) -> Network:
    from raynas.build import build_discriminator, build_generator
    from raynas.config import DataConfig, ModelConfig

    roles = BASELINES[name]
    if part is not None and part not in roles:
        raise ConfigError(f"{name} is the baseline {roles[0]}, not a {part}")
    kind = part or roles[0]
    _refuse(sizes, ("layers", "channels"), f"they size classifier cells; the {name} {kind} takes --width")
    if kind == "discriminator":
        _refuse(sizes, ("latent_dim",), "a discriminator takes images")
    dataset = sizes.get("dataset", "cifar10")
    resolution, image_channels = _gan_shape(dataset)
    paired = len(roles) == 2  # stylegan2, progan: one name for G and D, latent 512 as in their papers
    key = WIDTH_KEYS[name]
    m = ModelConfig(**({"generator": name, "discriminator": name} if paired else {}),
                    latent_dim=sizes.get("latent_dim", 512 if paired else ModelConfig().latent_dim),
                    **({key: sizes["width"]} if "width" in sizes else {}))
    d = DataConfig(resolution=resolution, channels=image_channels)
    net = build_generator(m, d) if kind == "generator" else build_discriminator(m, d)
    width = getattr(m, key)
    return Network(net.eval(), kind, name, None, _input_shape(net, kind, image_channels, resolution), name,
                   _gan_sizes(dataset, resolution, image_channels, width, net, kind))


# ============================================================================ runs
def run_config(path: Path) -> Any:
    """A run directory's saved config, upgraded from whichever raynas wrote it."""
    from raynas.config import RaynasConfig, from_dict, read_config_file, upgrade_saved_config

    # the files RunDir.create writes
    if not (path / "run.json").is_file() or not (path / "config.yaml").is_file():
        raise RunDirError(f"{path} is not a raynas run directory (no run.json and config.yaml); pass the run "
                          "directory printed when the run started, a genotype JSON file or a shipped genotype name")
    return from_dict(RaynasConfig, upgrade_saved_config(read_config_file(path / "config.yaml")))


def _run_config_above(state_file: Path) -> Path:
    for parent in state_file.resolve().parents:
        if (parent / "config.yaml").is_file() and (parent / "run.json").is_file():
            return parent / "config.yaml"
    raise CheckpointError(f"cannot find the run's config.yaml above {state_file}; keep checkpoints inside "
                          "their run directory")


def load_generator(path: str | Path, device: torch.device | None = None) -> tuple[torch.nn.Module, int]:
    """The EMA generator saved in a trainer checkpoint (a state.pt, a Tune checkpoint, trial or run folder),
    rebuilt from its run's config: what ``raynas metrics checkpoint:PATH`` evaluates."""
    from raynas.build import build_generator, latent_dim_of
    from raynas.checkpoints import find_state_file, load_checkpoint
    from raynas.config import RaynasConfig, from_dict, read_config_file, upgrade_saved_config

    state_file = find_state_file(path)
    # the run's config.yaml is data from the run directory: safe YAML only, a damaged one is one ConfigError
    config_file = _run_config_above(state_file)
    data = read_config_file(config_file)
    try:
        cfg = from_dict(RaynasConfig, upgrade_saved_config(data))
    except ConfigError as exc:
        raise ConfigError(f"{config_file} is not a run config raynas can read: {exc}") from None
    state = load_checkpoint(state_file)
    G = build_generator(cfg.model, cfg.data)
    weights = state.get("G_ema", {})
    weights = weights.get("module", weights) if isinstance(weights, dict) else weights
    try:
        G.load_state_dict(weights)
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{state_file} does not hold a generator matching its run config: {exc}") from None
    G.eval()
    if device is not None:
        G = G.to(device)
    return G, latent_dim_of(G, cfg.model.latent_dim)


def _from_run(path: Path, part: str | None, weights: bool | None, sizes: dict[str, Any]) -> Network:
    from raynas.config import FIXED

    if sizes:
        raise ConfigError(f"{path} is a run: its config fixes its network's sizes; drop "
                          f"{', '.join(_SIZE_FLAGS[k] for k in sizes)}")
    cfg = run_config(path)
    net = _fixed_run_network(cfg, part, path) if cfg.method == FIXED else _search_run_network(cfg, part, path)
    genotype_file = Path(net.source) if net.source.endswith(".json") else None  # a search's found network
    net.run, net.cfg, net.source = path, cfg, str(path)
    if weights is not False:
        _load_run_weights(net, path, cfg.method == FIXED, genotype_file)
    if weights and net.weights is None:
        raise CheckpointError(f"{path} holds no trained weights for its {net.kind}: {net.note}")
    return net


def _fixed_run_network(cfg: Any, part: str | None, path: Path) -> Network:
    """The network a ``raynas train``/``retrain`` run trained, built as its trainer built it."""
    from raynas.build import build_classifier, build_discriminator, build_generator
    from raynas.spaces import Genotype

    m, d = cfg.model, cfg.data
    if cfg.task == "classify":
        if part not in (None, "classifier"):
            raise ConfigError(f"{path} trained a classifier; it has no {part}")
        genotype = Genotype.load(m.genotype)
        net = build_classifier(cfg)
        shape = _classifier_input(cfg, genotype)
        sizes = _classifier_sizes(d.name, net, shape[0], d.resolution, _num_classes(d.name, d.root))
        return Network(net.eval(), "classifier", genotype.space, genotype, shape, "", sizes)
    kind = part or "generator"
    if kind == "classifier":
        raise ConfigError(f"{path} trained a GAN; part is generator or discriminator")
    if kind == "generator":
        net = build_generator(m, d)
        genotype = Genotype.load(m.g_genotype) if m.generator == "genotype" else None
        family, width = (genotype.space if genotype else m.generator), m.gf_dim
    else:
        net = build_discriminator(m, d)
        genotype = Genotype.load(m.d_genotype) if m.discriminator == "genotype" else None
        family, width = (genotype.space if genotype else m.discriminator), m.df_dim
    sizes = _gan_sizes(d.name, d.resolution, d.channels, width, net, kind)
    return Network(net.eval(), kind, family, genotype, _input_shape(net, kind, d.channels, d.resolution), "", sizes)


def _num_classes(dataset: str, root: str | None = None) -> int:
    from raynas.data import dataset_classes

    return dataset_classes(dataset, root)  # data.name=folder: the run's class folders


def _classifier_input(cfg: Any, genotype: Any) -> tuple[int, int, int]:
    image_channels = getattr(genotype, "in_channels", None) or cfg.data.channels
    return (image_channels, cfg.data.resolution, cfg.data.resolution)


def _search_run_network(cfg: Any, part: str | None, path: Path) -> Network:
    """The network a search found (the first of its registered outputs that fits ``part``), at the sizes its
    retrain would use (the run's ``model`` and ``data`` sections)."""
    from raynas.export import run_outputs
    from raynas.spaces import Genotype

    files = [f for f in run_outputs(cfg.method) if f.endswith(".json")]
    for name in files:
        if not (path / name).is_file():
            continue
        genotype = Genotype.load(str(path / name))
        try:
            genotype, kind = _pick_part(genotype, part, name)
        except ConfigError:
            continue
        return _run_sized(cfg, genotype, kind, path / name)
    found = ", ".join(files) or "no network files registered for this method"
    what = f"a {part}" if part else "a network"
    raise RunDirError(f"{path} is a {cfg.method} run without {what} found yet (it leaves {found} when a search "
                      "finishes); pass a finished run, or resume this one")


def _run_sized(cfg: Any, genotype: Any, kind: str, file: Path) -> Network:
    from raynas.build import classifier_for
    from raynas.nn.registry import build_network

    m, d = cfg.model, cfg.data
    if kind == "classifier":
        num_classes = _num_classes(d.name, d.root)
        if getattr(genotype, "layers", None) is not None:  # the genotype fixes its network (DARTS-GAL)
            net = build_network(genotype, resolution=d.resolution, num_classes=num_classes)
        else:
            net = classifier_for(cfg, genotype, num_classes, auxiliary=False)
        shape = _classifier_input(cfg, genotype)
        sizes = _classifier_sizes(d.name, net, shape[0], d.resolution, num_classes)
        return Network(net.eval(), kind, genotype.space, genotype, shape, str(file), sizes)
    width = m.gf_dim if kind == "generator" else m.df_dim
    kw: dict[str, Any] = {"resolution": d.resolution, "channels": d.channels, "width": width}
    if kind == "generator":
        kw["latent_dim"] = m.latent_dim
    net = build_network(genotype, **kw)
    return Network(net.eval(), kind, genotype.space, genotype, _input_shape(net, kind, d.channels, d.resolution),
                   str(file), _gan_sizes(d.name, d.resolution, d.channels, width, net, kind))


# ============================================================================ a run's weights
def _load_run_weights(net: Network, path: Path, fixed: bool, genotype_file: Path | None) -> None:
    """Load the run's weights into ``net.module`` (``net.weights`` says from where), or say in ``net.note``
    why there are none."""
    from raynas.checkpoints import find_state_file, load_checkpoint

    candidates: list[Path] = []
    if genotype_file is not None and genotype_file.with_suffix(".pt").is_file():
        candidates.append(genotype_file.with_suffix(".pt"))  # e.g. a search's best_G.pt beside best_G.json
    with contextlib.suppress(CheckpointError):  # none yet: the network comes untrained, and says so
        candidates.append(find_state_file(path))  # the newest checkpoint: a finished run's final network
    expected = net.module.state_dict()
    for file in candidates:
        state = load_checkpoint(file)
        found, label = _weights_in(state, net.kind, expected, fixed)
        if found is None:
            continue
        if fixed:
            try:
                net.module.load_state_dict(found)
            except (RuntimeError, KeyError) as exc:
                raise CheckpointError(f"{file} does not hold a {net.kind} matching its run config: "
                                      f"{str(exc).splitlines()[0]}") from None
        else:
            net.module.load_state_dict(found)
        net.module.eval()
        net.weights = f"{file}:{label}"
        return
    if fixed and not candidates:
        net.note = "it has no checkpoint yet (they appear after its first checkpointed epoch)"
    elif fixed:
        net.note = f"its checkpoint {candidates[-1]} holds no {net.kind}"
    else:
        net.note = ("its search trained a supernet (or the found network at the search's width), not this network; "
                    f"train it with `raynas retrain {genotype_file or path}`")


# where a fixed run's trainer keeps each network (raynas.gan.trainer / raynas.classify.trainer state dicts)
_FIXED_KEYS = {"generator": (("G_ema", "module"), ("G",)), "discriminator": (("D",),), "classifier": (("model",),)}


def _weights_in(state: dict[str, Any], kind: str, expected: dict[str, torch.Tensor], fixed: bool
                ) -> tuple[dict[str, Any] | None, str]:
    """The weights for the network in a checkpoint state: a fixed run's by the trainer's keys (EMA first);
    elsewhere any nested state dict whose names and shapes are exactly the network's."""
    if fixed:
        for keys in _FIXED_KEYS[kind]:
            value: Any = state
            for k in keys:
                value = value.get(k) if isinstance(value, dict) else None
            if isinstance(value, dict):
                return value, ".".join(keys)
        return None, ""
    stack: list[tuple[str, Any, int]] = [("", state, 0)]
    while stack:
        label, value, depth = stack.pop(0)
        if not isinstance(value, dict):
            continue
        if _fits(value, expected):
            return value, label or "state"
        if depth < 3:
            stack.extend((f"{label}.{k}".lstrip("."), v, depth + 1) for k, v in value.items())
    return None, ""


def _fits(candidate: dict[str, Any], expected: dict[str, torch.Tensor]) -> bool:
    return (set(candidate) == set(expected)
            and all(isinstance(candidate[k], torch.Tensor) and candidate[k].shape == v.shape
                    for k, v in expected.items()))
