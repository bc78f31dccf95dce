"""Training FLOPs a GAN run spends, counting pruned generator weights (Re-GAN's sparse units) as skipped;
with Re-GAN off it is the dense count.

**Training FLOPs** (:class:`TrainingFlops`): the forward FLOPs per sample (2 per multiply-add, the
:mod:`raynas.nn.profile` convention) of every ``Conv*``/``ConvTranspose*``/``Linear`` layer of G are measured
once with forward hooks on one latent (and of every layer that reports its own through ``layer_flops``, such as
StyleGAN2's modulated convs); the rest of G's matmul/conv work (what
:func:`raynas.nn.profile.count_flops` counts beyond those layers, e.g. attention products) and all of D are
counted dense. With ``d_l`` the kept fraction of layer ``l``'s weight (1 outside sparse units):

* ``G_fwd = rest + sum_l F_l * d_l`` per sample; a pruned weight's multiply-adds are skipped;
* one G update with batch ``b``: ``3 * G_fwd * b`` (forward + backward, the backward about twice the
  forward and equally sparse) plus ``2 * D_fwd * b`` (D forward and its input-gradient backward; D is frozen);
* one D update with batch ``b``: ``G_fwd * b`` (fakes, no grad) plus ``3 * D_fwd * 2b`` (real and fake).

Element-wise work (activations, normalisation, bias adds, the optimisers, the masking itself) is not
counted. This is an estimate of the work a sparse kernel could skip, not of dense-GPU time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ["TrainingFlops"]


_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _weight_param(m: nn.Module) -> nn.Parameter:
    """The trainable tensor behind ``m.weight`` (the original under a spectral-norm parametrization)."""
    parametrizations = getattr(m, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return parametrizations.weight.original
    return m.weight


def _counted(m: nn.Module) -> bool:
    """A layer whose FLOPs scale with its weight's density: torch's conv / linear layers, and any module with a
    ``weight`` parameter that reports its own FLOPs (``layer_flops``: equalised-lr and modulated convs)."""
    return isinstance(m, _LAYERS) or (callable(getattr(m, "layer_flops", None))
                                      and isinstance(getattr(m, "weight", None), nn.Parameter))


def _layer_flops(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Forward FLOPs (2 per multiply-add) of one call of a conv / linear layer, over the whole batch."""
    if not isinstance(m, _LAYERS):
        return int(m.layer_flops(x, y))
    if isinstance(m, nn.Linear):
        return 2 * y.numel() * m.in_features
    k = math.prod(m.kernel_size)
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        return 2 * x.numel() * (m.out_channels // m.groups) * k
    return 2 * y.numel() * (m.in_channels // m.groups) * k


class TrainingFlops:
    """Training FLOPs spent so far by a GAN run, counting pruned generator weights as skipped.

    See the module docstring for the approximation. ``layer_flops`` holds each conv / linear layer's forward
    FLOPs per sample keyed by its weight parameter's name (the keys of :meth:`Regan.densities`);
    ``g_rest`` the rest of G's forward FLOPs per sample, ``d_forward`` D's (0 without D).
    """

    def __init__(self, G: nn.Module, D: nn.Module | None = None, *, latent_dim: int | None = None,
                 example_latent: torch.Tensor | None = None) -> None:
        from raynas.nn.profile import count_flops

        if example_latent is None:
            dim = latent_dim if latent_dim is not None else getattr(G, "latent_dim", None)
            if not isinstance(dim, int):
                raise ValueError("TrainingFlops needs latent_dim (G has no integer latent_dim attribute)")
            device = next(iter(G.parameters())).device
            example_latent = torch.randn(1, dim, device=device)
        z = example_latent[:1]
        names = {id(p): n for n, p in G.named_parameters()}
        per_layer: dict[str, int] = {}
        handles = []

        def hook(name: str):
            def record(m: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
                per_layer[name] = per_layer.get(name, 0) + _layer_flops(m, inputs[0], output)
            return record

        for m in G.modules():
            if _counted(m):
                name = names.get(id(_weight_param(m)))
                if name is not None:
                    handles.append(m.register_forward_hook(hook(name)))
        flags = [(m, m.training) for m in G.modules()]
        G.eval()
        # a generator that draws random numbers in forward (StyleGAN2's noise inputs) must not move the run's RNG
        cuda = [z.device] if z.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            try:
                with torch.no_grad():
                    fake = G(z)
            finally:
                for h in handles:
                    h.remove()
                for m, training in flags:
                    m.training = training
            self.layer_flops: dict[str, int] = per_layer
            self.g_dense_forward = int(count_flops(G, z))
            self.g_rest = max(0, self.g_dense_forward - sum(per_layer.values()))
            self.d_forward = int(count_flops(D, fake)) if D is not None else 0
        self.g = 0.0  # FLOPs spent in G so far
        self.d = 0.0  # FLOPs spent in D so far

    def g_forward(self, density: Mapping[str, float] | None = None) -> float:
        """G's forward FLOPs per sample with layer weights kept at ``density`` (name → kept fraction)."""
        density = density or {}
        return self.g_rest + sum(f * density.get(n, 1.0) for n, f in self.layer_flops.items())

    def count_step(self, dis_batch_size: int, gen_batch_size: int = 0,
                   density: Mapping[str, float] | None = None) -> float:
        """Add one ``gan_train_step``: a D update with ``dis_batch_size`` and, when ``gen_batch_size`` > 0,
        a G update with that batch. Returns the FLOPs added."""
        g_fwd = self.g_forward(density)
        g = g_fwd * dis_batch_size + 3.0 * g_fwd * gen_batch_size
        d = 3.0 * self.d_forward * 2 * dis_batch_size + 2.0 * self.d_forward * gen_batch_size
        self.g += g
        self.d += d
        return g + d

    @property
    def total(self) -> float:
        return self.g + self.d

    def stats(self) -> dict[str, float]:
        return {"train_flops": self.total, "train_flops_g": self.g, "train_flops_d": self.d}

    def state_dict(self) -> dict[str, float]:
        return {"g": self.g, "d": self.d}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.g = float(state["g"])
        self.d = float(state["d"])
