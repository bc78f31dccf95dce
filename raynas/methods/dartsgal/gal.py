"""GAL pruning of a stacked-cell network (GAL-D §3.3–3.4, eqs. 4–7), plain PyTorch.

The teacher ``f_b`` (the trained baseline, fixed) and the student G (a copy with one soft mask per
node, ``raynas.methods.dartsgal.network``) see the same batches; their **softmax** outputs are the real and
fake samples of a discriminator D. Per batch:

* **D step** (G and masks fixed) on ``f_b(x)`` vs ``G(x)``:
  ``wgan`` (§3.4, default): ``E[D(G)] − E[D(f_b)] + gp_weight · GP``; R(W_D) is the gradient penalty (the paper
  states no Wasserstein form of its ``E[log D(f_g)]`` regulariser; a literal one would cancel the fake term).
  ``bce`` (GAL's code): ``BCE(D(f_b), 1) + BCE(D(G), 0) + d_reg · BCE(D(G), 1)``, the last term being GAL's
  R(W_D); D returns logits and the loss applies the one sigmoid (GAL applies two, T-G1).
* **G step** every ``n_critic``-th batch (§3.4: five D steps per G step; a D step sees a fresh batch, as in
  WGAN): ``L_adv(G) + miu · L_data`` with ``L_data = 1/(2n) Σ‖f_b(x) − G(x)‖²`` on softmax outputs (eq. 6;
  GAL's code uses the mean squared error of logits, T-G6) and ``L_adv(G) = −E[D(G)]`` (wgan) or
  ``BCE(D(G), 1)`` (bce). SGD with weight decay is ``R(W_G) = ½‖W_G‖²`` (and D's own weight decay).
* **Mask step** every ``mask_step`` batches (skipped when no G step came since the previous one): a FISTA
  proximal step on the masks with the gradient of the latest G step, ``x ← max(0, prox_{lr·λ}(y − lr·∇))``.
  The sparsity term ``λ‖s‖₁`` enters only here, through the soft threshold (GAL also adds ``λ·sign(s)`` to the
  gradient, T-G3). FISTA restarts its momentum at the first mask
  step after a learning-rate decay (GAL's restart can never fire, T-G4).

The learning rates of G, D and the masks decay by 0.1 every ``lr_decay_step`` epochs (GAL: StepLR(30, 0.1)).
The teacher normalises with batch statistics by default (``teacher_bn=batch``: like the student, and like GAL's
code, which never puts its teacher in eval mode; a briefly trained DARTS network's running statistics can be far
off); ``teacher_bn=eval`` uses its running statistics. Labels are never used for training (GAL is label-free); the
student's agreement with them and with the teacher is reported.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from raynas.checkpoints import capture_sampling_state, restore_sampling_state
from raynas.classify.step import classifier_logits
from raynas.device import at_least_float32
from raynas.errors import CheckpointError, TrainingDiverged

ADV_LOSSES = ("wgan", "bce")


class Discriminator(nn.Module):
    """The paper's 5-layer perceptron on softmax outputs, widths ``classes → 128 → 256 → 128 → 1``, with a
    LeakyReLU(0.2) between the linear layers (GAL's code has no nonlinearity, so its D is one linear map,
    T-G1). Returns a logit (wgan: the critic value). PyTorch's default initialisation: GAL's N(0, 0.01) weights
    make four stacked layers start with an input gradient of ~1e-4, so a gradient penalty (or any D loss) would
    spend its first hundreds of steps just growing the weights."""

    widths = (128, 256, 128)

    def __init__(self, num_classes: int = 10, negative_slope: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        sizes = (num_classes, *self.widths)
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(negative_slope)]
        layers.append(nn.Linear(sizes[-1], 1))
        self.body = nn.Sequential(*layers)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        return self.body(p).squeeze(1)


def data_loss(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Eq. 6: ``1/(2n) Σ_x ‖f_b(x) − G(x)‖²`` over a batch of ``n`` softmax vectors."""
    return (teacher - student).pow(2).sum(1).mean() / 2


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: ``E[(‖∇D(x̂)‖ − 1)²]`` at random points between real and fake samples."""
    eps = torch.rand(real.shape[0], 1, device=real.device, dtype=real.dtype)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
    return (grad.norm(2, dim=1) - 1).pow(2).mean()


def d_loss(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, adv_loss: str, *, gp_weight: float = 10.0,
           d_reg: float = 1.0) -> torch.Tensor:
    """The discriminator's loss (minimised) on teacher (``real``) and student (``fake``) softmax outputs."""
    if adv_loss == "wgan":
        loss = D(fake).mean() - D(real).mean()
        return loss + gp_weight * gradient_penalty(D, real, fake) if gp_weight > 0 else loss
    if adv_loss == "bce":
        out_r, out_f = D(real), D(fake)
        bce = F.binary_cross_entropy_with_logits
        loss = bce(out_r, torch.ones_like(out_r)) + bce(out_f, torch.zeros_like(out_f))
        return loss + d_reg * bce(out_f, torch.ones_like(out_f)) if d_reg > 0 else loss
    raise ValueError(f"adv_loss must be one of {ADV_LOSSES}, got {adv_loss!r}")


def g_adv_loss(D: nn.Module, fake: torch.Tensor, adv_loss: str) -> torch.Tensor:
    """The generator's (student's) adversarial loss."""
    out = D(fake)
    if adv_loss == "wgan":
        return -out.mean()
    return F.binary_cross_entropy_with_logits(out, torch.ones_like(out))


class MaskFista:
    """FISTA proximal steps on non-negative soft masks, with the sparsity ``λ‖s‖₁`` as the proximal term.

    Step k (``grad`` = ∇ of the smooth loss at the current masks ``x_k``; GAL's variant, which evaluates it at
    ``x_k`` rather than at the extrapolated point)::

        t_{k+1} = (1 + √(1 + 4 t_k²)) / 2
        y       = x_k + ((t_k − 1) / t_{k+1}) · (x_k − x_{k−1})
        x_{k+1} = max(0, sign(z) · max(|z| − lr·λ, 0)),   z = y − lr · grad

    The first step and a restart use ``t = 1`` and ``y = x_k`` (no momentum). ``step`` restarts by itself when
    ``lr`` changed since the previous step (a decay), and on ``restart=True``.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, lam: float):
        self.params = list(params)
        self.lr, self.lam = float(lr), float(lam)
        self.t = 1.0
        self.prev: list[torch.Tensor] | None = None
        self.last_lr: float | None = None
        self.steps = 0
        self.restarts = 0

    @torch.no_grad()
    def step(self, restart: bool = False) -> bool:
        """One proximal step on every mask; returns whether it restarted."""
        restart = restart or self.prev is None or (self.last_lr is not None and self.lr != self.last_lr)
        if restart:
            self.t = 1.0
            self.prev = [p.detach().clone() for p in self.params]
            coef = 0.0
            self.restarts += 1
        else:
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * self.t ** 2)) / 2.0
            coef = (self.t - 1.0) / t_next
            self.t = t_next
        shrink = self.lr * self.lam
        assert self.prev is not None
        for p, prev in zip(self.params, self.prev):
            x = p.detach().clone()
            y = x + coef * (x - prev)
            z = y - self.lr * (p.grad if p.grad is not None else torch.zeros_like(p))
            p.copy_((torch.sign(z) * (z.abs() - shrink).clamp_min(0.0)).clamp_min(0.0) + 0.0)  # no -0.0
            prev.copy_(x)
        self.last_lr = self.lr
        self.steps += 1
        return restart

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "prev": None if self.prev is None else [p.clone() for p in self.prev], "lr": self.lr,
                "lam": self.lam, "last_lr": self.last_lr, "steps": self.steps, "restarts": self.restarts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.lr, self.lam = float(state["t"]), float(state["lr"]), float(state["lam"])
        self.last_lr, self.steps, self.restarts = state["last_lr"], int(state["steps"]), int(state["restarts"])
        prev = state["prev"]
        if prev is not None and [tuple(p.shape) for p in prev] != [tuple(p.shape) for p in self.params]:
            raise CheckpointError("the saved mask optimiser holds masks of other shapes; resume with the genotype "
                                  "and settings the run was started with")
        self.prev = None if prev is None else [p.to(q.device) for p, q in zip(prev, self.params)]


class GalPruner:
    """GAL pruning of ``student`` (a masked network) against the fixed ``teacher``; one ``train_epoch`` per call.

    ``settings`` is the ``dartsgal`` config section (or anything with its attribute names): ``lr``,
    ``momentum``, ``weight_decay``, ``lr_decay_step``, ``prune_epochs``, ``prune_batch_size``, ``lam``, ``miu``,
    ``adv_loss``, ``n_critic``, ``gp_weight``, ``d_reg``, ``mask_step``, ``mask_lr``, ``threshold``, ``teacher_bn``.
    ``data`` is a ``ClassifyData`` (its ``train`` part is used; labels only for the reported accuracy).
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, data: Any, settings: Any, *,
                 device: torch.device, precision: Any = None):
        self.s = settings
        self.device, self.precision = device, precision
        self.teacher = teacher.to(device)
        self.teacher.train(getattr(settings, "teacher_bn", "batch") == "batch")
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.student = student.to(device)
        self.data = data
        num_classes = self.student.num_classes
        self.D = Discriminator(num_classes).to(device)
        s = settings
        self.opt_g = torch.optim.SGD(self.student.weight_parameters(), lr=s.lr, momentum=s.momentum,
                                     weight_decay=s.weight_decay)
        self.opt_d = torch.optim.SGD(self.D.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
        self.sched_g = torch.optim.lr_scheduler.StepLR(self.opt_g, s.lr_decay_step, 0.1)
        self.sched_d = torch.optim.lr_scheduler.StepLR(self.opt_d, s.lr_decay_step, 0.1)
        self.fista = MaskFista(self.student.masks(), s.mask_lr, s.lam)
        self.epoch = 0
        self.iteration = 0
        self.g_steps = 0
        self.g_steps_at_mask = 0

    @property
    def epochs(self) -> int:
        return int(self.s.prune_epochs)

    @property
    def done(self) -> bool:
        return self.epoch >= self.epochs

    def mask_lr_at(self, epoch: int) -> float:
        return float(self.s.mask_lr) * 0.1 ** (epoch // int(self.s.lr_decay_step))

    def _forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return at_least_float32(classifier_logits(model, x, self.precision)[0])

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training part: a D step per batch, a G step every ``n_critic`` batches, a mask step
        every ``mask_step`` batches. Returns the epoch's mean losses, accuracies, lr, and mask-step counts."""
        s = self.s
        self.student.train()
        self.D.train()
        self.fista.lr = self.mask_lr_at(self.epoch)
        lr = float(self.opt_g.param_groups[0]["lr"])
        sums = {"d_loss": 0.0, "g_loss": 0.0, "data_loss": 0.0}
        counts = {"d": 0, "g": 0}
        hits = None  # (correct, agreeing with the teacher) on the device: read once, after the epoch
        seen = mask_steps = restarts = 0
        for x, y in self.data.train_batches(s.prune_batch_size):
            self.iteration += 1
            g_turn = self.iteration % s.n_critic == 0
            with torch.no_grad():
                real = F.softmax(self._forward(self.teacher, x), 1)
            with torch.set_grad_enabled(g_turn):
                fake = F.softmax(self._forward(self.student, x), 1)
            # (1) D step: G and the masks fixed
            self.D.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d = d_loss(self.D, real, fake.detach(), s.adv_loss, gp_weight=s.gp_weight, d_reg=s.d_reg)
            value = loss_d.item()
            if not math.isfinite(value):
                raise TrainingDiverged(f"the discriminator loss became {value} while pruning; lower dartsgal.lr")
            loss_d.backward()
            self.opt_d.step()
            sums["d_loss"] += value
            counts["d"] += 1
            # (2) G step: D fixed; the masks get the gradient of this step
            if g_turn:
                self.D.requires_grad_(False)
                self.opt_g.zero_grad(set_to_none=True)
                for m in self.student.masks():
                    m.grad = None
                adv = g_adv_loss(self.D, fake, s.adv_loss)
                dat = data_loss(real, fake)
                loss_g = adv + s.miu * dat
                adv_v, dat_v, loss_v = torch.stack([adv.detach(), dat.detach(), loss_g.detach()]).tolist()
                if not math.isfinite(loss_v):
                    raise TrainingDiverged(f"the student's loss became {loss_v} while pruning; lower dartsgal.lr")
                loss_g.backward()
                self.opt_g.step()
                self.g_steps += 1
                sums["g_loss"] += adv_v
                sums["data_loss"] += dat_v
                counts["g"] += 1
            # (3) mask step: the proximal step (the only place λ acts), with a gradient no mask step used yet
            if self.iteration % s.mask_step == 0 and self.g_steps > self.g_steps_at_mask:
                restarts += int(self.fista.step())
                mask_steps += 1
                self.g_steps_at_mask = self.g_steps
            pred = fake.detach().argmax(1)
            batch_hits = torch.stack([(pred == y).sum(), (pred == real.argmax(1)).sum()])
            hits = batch_hits if hits is None else hits + batch_hits
            seen += int(y.numel())
        correct, agree = hits.tolist() if hits is not None else (0, 0)
        self.sched_g.step()
        self.sched_d.step()
        self.epoch += 1
        masks = self.student.mask_table()
        return {"epoch": self.epoch, "d_loss": sums["d_loss"] / max(1, counts["d"]),
                "g_loss": sums["g_loss"] / max(1, counts["g"]) if counts["g"] else math.nan,
                "data_loss": sums["data_loss"] / max(1, counts["g"]) if counts["g"] else math.nan,
                "train_acc": correct / max(1, seen), "teacher_agreement": agree / max(1, seen), "lr": lr,
                "mask_lr": self.fista.lr, "mask_steps": mask_steps, "mask_restarts": restarts,
                "g_steps": counts["g"], "mask_mean": float(sum(map(sum, masks)) / max(1, sum(map(len, masks))))}

    def live_nodes(self) -> int:
        """Masks above the threshold (before the pruning closes the cells)."""
        return sum(v > self.s.threshold for m in self.student.mask_table() for v in m)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"student": self.student.state_dict(), "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "sched_g": self.sched_g.state_dict(),
                "sched_d": self.sched_d.state_dict(), "fista": self.fista.state_dict(), "epoch": self.epoch,
                "iteration": self.iteration, "g_steps": self.g_steps,
                "g_steps_at_mask": self.g_steps_at_mask, "sampling": capture_sampling_state(self.data)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.student.load_state_dict(state["student"])
            self.D.load_state_dict(state["D"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.sched_g.load_state_dict(state["sched_g"])
            self.sched_d.load_state_dict(state["sched_d"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"the pruning checkpoint does not match this network ({exc}); resume with the "
                                  "genotype and settings the run was started with") from None
        self.fista.load_state_dict(state["fista"])
        self.epoch, self.iteration, self.g_steps = int(state["epoch"]), int(state["iteration"]), int(state["g_steps"])
        self.g_steps_at_mask = int(state["g_steps_at_mask"])
        restore_sampling_state(state["sampling"], self.data)
