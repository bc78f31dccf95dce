"""Augmentation of what the discriminator sees, for small-data GAN training (``train.augment``).

* ``diffaugment`` (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the
  same differentiable transforms (policy ``color``, ``translation``, ``cutout``) on real and fake images in
  D's step and on the fakes in G's step, so G gets gradients through them.
* ``ada`` (Karras et al. 2020, "Training GANs with Limited Data"): an adaptive pipeline (x-flip, 90°
  rotations, integer translation with reflection, brightness / contrast / saturation) whose transforms each
  apply to an image with probability ``p``; ``p`` follows the overfitting heuristic
  r_t = E[sign(D(x_real))] toward a target (0.6): every ``interval`` D steps it moves by
  sign(r_t - target) · (images seen) / (kimg · 1000), so it can go 0 → 1 in ``kimg`` thousand images.
  Below p = 1 every transform leaves some images untouched, so the augmentations do not leak into G.
* ``apa`` (Jiang et al. 2021, "Deceive D: Adaptive Pseudo Augmentation"): each real image in D's step is
  replaced by a fake one (shown to D as real) with probability ``p``, adapted by the same heuristic.

Random numbers come from the global torch RNG of the images' device, which the trainer's checkpoint
saves, so a resumed run draws the same augmentations; ``p`` and its counters are in ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from raynas.device import at_least_float32

AUGMENTS = ("none", "diffaugment", "ada", "apa")
POLICY = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125  # of the image side, both DiffAugment's and ADA's
CUTOUT_RATIO = 0.5         # DiffAugment's cutout square side / image side


# ---------------------------------------------------------------------------- transforms (differentiable)
def _rand(x: torch.Tensor, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, dtype=x.dtype)


def translate(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, mode: str = "zeros") -> torch.Tensor:
    """Shift image ``b`` right by ``dx[b]`` and down by ``dy[b]`` whole pixels (integer tensors of shape (B,)).

    Uncovered pixels are 0 (``zeros``, DiffAugment) or mirrored from inside the image (``reflect``, ADA).
    Built from indexing, so gradients reach ``x``."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy.view(b, 1, 1).to(x.device)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx.view(b, 1, 1).to(x.device)
    if mode == "reflect":
        rows, cols = _reflect(rows, h), _reflect(cols, w)
        valid = None
    else:
        valid = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    out = x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    return out if valid is None else out * valid.to(x.dtype)


def _reflect(idx: torch.Tensor, n: int) -> torch.Tensor:
    """Mirror indices into 0..n-1 without repeating the edge (numpy's ``reflect``)."""
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= n, period - idx, idx)


def cutout(x: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, size: int) -> torch.Tensor:
    """Zero a ``size`` × ``size`` square of image ``b`` whose top-left corner is (cx - size//2, cy - size//2),
    clipped at the borders (DiffAugment's cutout)."""
    b, _, h, w = x.shape
    top = (cy.view(b, 1, 1) - size // 2).to(x.device)
    left = (cx.view(b, 1, 1) - size // 2).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1, keepdim=True)


def diff_augment(x: torch.Tensor, policy: Sequence[str] = POLICY) -> torch.Tensor:
    """DiffAugment on a batch in [-1, 1]: the official transforms and ranges, in policy order."""
    for name in policy:
        if name == "color":
            x = x + (_rand(x, 1, 1, 1) - 0.5)                                   # brightness
            if x.shape[1] > 1:
                m = _luma(x)
                x = (x - m) * (_rand(x, 1, 1, 1) * 2) + m                       # saturation
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - m) * (_rand(x, 1, 1, 1) + 0.5) + m                         # contrast
        elif name == "translation":
            sh, sw = int(x.shape[2] * TRANSLATION_RATIO + 0.5), int(x.shape[3] * TRANSLATION_RATIO + 0.5)
            dy = torch.randint(-sh, sh + 1, (x.shape[0],), device=x.device)
            dx = torch.randint(-sw, sw + 1, (x.shape[0],), device=x.device)
            x = translate(x, dx, dy)
        elif name == "cutout":
            size = int(x.shape[2] * CUTOUT_RATIO + 0.5)
            cy = torch.randint(0, x.shape[2] + (1 - size % 2), (x.shape[0],), device=x.device)
            cx = torch.randint(0, x.shape[3] + (1 - size % 2), (x.shape[0],), device=x.device)
            x = cutout(x, cx, cy, size)
        else:
            raise ValueError(f"unknown DiffAugment transform {name!r}; valid: {', '.join(POLICY)}")
    return x


def ada_augment(x: torch.Tensor, p: float) -> torch.Tensor:
    """ADA's pipeline subset, each transform applied to an image with probability ``p`` (p = 0: identity).

    x-flip, 90° rotation (square images), integer translation up to 1/8 of the side with reflection,
    brightness (+N(0, 0.2)), contrast (×2^N(0, 0.5)) and saturation (×2^N(0, 1)), ADA's strengths."""
    if p <= 0:
        return x
    b = x.shape[0]

    def pick(shape: tuple[int, ...] = (1, 1, 1)) -> torch.Tensor:
        return (torch.rand(b, *shape, device=x.device) < p)

    x = torch.where(pick(), x.flip(3), x)
    if x.shape[2] == x.shape[3]:
        k = torch.randint(0, 4, (b, 1, 1, 1), device=x.device) * pick()
        x = torch.where(k == 1, x.rot90(1, (2, 3)), torch.where(k == 2, x.rot90(2, (2, 3)),
                        torch.where(k == 3, x.rot90(3, (2, 3)), x)))
    sh, sw = int(x.shape[2] * TRANSLATION_RATIO + 0.5), int(x.shape[3] * TRANSLATION_RATIO + 0.5)
    on = pick(()).long()
    dy = torch.randint(-sh, sh + 1, (b,), device=x.device) * on
    dx = torch.randint(-sw, sw + 1, (b,), device=x.device) * on
    x = translate(x, dx, dy, mode="reflect")
    x = x + torch.randn(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 0.2 * pick()
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    c = torch.exp2(torch.randn(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 0.5 * pick())
    x = (x - m) * c + m
    if x.shape[1] > 1:
        m = _luma(x)
        s = torch.exp2(torch.randn(b, 1, 1, 1, device=x.device, dtype=x.dtype) * pick())
        x = (x - m) * s + m
    return x


def pseudo_augment(real: torch.Tensor, fake: torch.Tensor, p: float) -> torch.Tensor:
    """APA: each real image replaced, with probability ``p``, by the fake image at its index (detached)."""
    if p <= 0:
        return real
    swap = torch.rand(real.shape[0], 1, 1, 1, device=real.device) < p
    return torch.where(swap, fake.detach().to(real.dtype), real)


# ---------------------------------------------------------------------------- adaptive probability
class AdaptiveP:
    """ADA's overfitting heuristic: p += sign(r_t - target) · images / (kimg · 1000) every ``interval`` D steps,
    r_t = E[sign(D(x_real))] over those steps, p clipped to [0, 1]."""

    def __init__(self, p: float = 0.0, target: float = 0.6, kimg: float = 500.0, interval: int = 4):
        self.p, self.target, self.kimg, self.interval = float(p), float(target), float(kimg), int(interval)
        self._signs: torch.Tensor | float = 0.0  # summed on the device: no host sync per step
        self._count = 0
        self._steps = 0
        self.rt = float("nan")  # the last r_t used

    def observe(self, real_logits: torch.Tensor) -> None:
        s = at_least_float32(real_logits.detach()).sign()
        self._signs = self._signs + s.sum()
        self._count += s.numel()
        self._steps += 1
        if self._steps >= self.interval:
            self.rt = float(self._signs) / max(1, self._count)
            direction = (self.rt > self.target) - (self.rt < self.target)
            self.p = min(1.0, max(0.0, self.p + direction * self._count / (self.kimg * 1000)))
            self._signs, self._count, self._steps = 0.0, 0, 0

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "signs": float(self._signs), "count": self._count, "steps": self._steps, "rt": self.rt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self._signs = float(state["p"]), float(state["signs"])
        self._count, self._steps, self.rt = int(state["count"]), int(state["steps"]), float(state["rt"])


# ---------------------------------------------------------------------------- what the training step calls
class Augment:
    """``train.augment=none``; the base of the others. :func:`raynas.gan.step.gan_train_step` calls
    ``reals_for_d`` on D's real batch, ``images`` on every batch D sees, ``observe`` on D's real logits."""

    name = "none"

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def reals_for_d(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return real

    def observe(self, real_logits: torch.Tensor) -> None:
        pass

    def stats(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            from raynas.errors import CheckpointError

            raise CheckpointError(f"the checkpoint was written with train.augment={state.get('name')}, this run has "
                                  f"train.augment={self.name}; resume with the settings the run was started with")


class DiffAugment(Augment):
    name = "diffaugment"

    def __init__(self, policy: Sequence[str] = POLICY):
        self.policy = tuple(policy)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy)


class _Adaptive(Augment):
    def __init__(self, adaptive: AdaptiveP):
        self.adaptive = adaptive

    def observe(self, real_logits: torch.Tensor) -> None:
        self.adaptive.observe(real_logits)

    def stats(self) -> dict[str, float]:
        return {"augment_p": self.adaptive.p}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.adaptive.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.adaptive.load_state_dict(state)


class ADA(_Adaptive):
    name = "ada"

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return ada_augment(x, self.adaptive.p)


class APA(_Adaptive):
    name = "apa"

    def reals_for_d(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return pseudo_augment(real, fake, self.adaptive.p)


def make_augment(train: Any) -> Augment | None:
    """The augmentation ``train.augment`` names (None for ``none``), from a TrainConfig's augment_* settings."""
    name = getattr(train, "augment", "none")
    if name == "none":
        return None
    if name == "diffaugment":
        return DiffAugment(train.augment_policy)
    adaptive = AdaptiveP(train.augment_p, train.augment_target, train.augment_kimg, train.augment_interval)
    if name == "ada":
        return ADA(adaptive)
    if name == "apa":
        return APA(adaptive)
    raise ValueError(f"unknown augmentation {name!r}; valid: {', '.join(AUGMENTS)}")


STATELESS = ("none", "diffaugment")


def search_augment(train: Any, method: str) -> Augment | None:
    """A search's augmentation (``train.augment``). Only the stateless ones: a search's checkpoints and rounds
    keep no adaptive ``p``, so ADA and APA would restart from ``augment_p`` on every resume and actor."""
    name = getattr(train, "augment", "none")
    if name not in STATELESS:
        from raynas.errors import ConfigError

        raise ConfigError(f"train.augment={name} adapts its probability p as D trains, which a {method} search "
                          "does not keep across rounds and resumes; searches take train.augment=diffaugment (or "
                          f"none), and {name} applies to training the found network (raynas train / retrain)")
    return make_augment(train)
