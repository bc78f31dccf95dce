"""Data-parallel training of one network over several processes: plain ``torch.distributed``, no Ray.

Ray Train (``trainables/data_parallel.py``) starts the processes and their process group; the trainers only
see a :class:`Replicas`, the group as they need it. ``Replicas()`` (one process) changes nothing, so every
trainer keeps its one-process path and numbers.

The semantics, chosen so that N processes compute what one process computes at the same global batch:

- every process draws the same **global batch** (same seed, same sampler, same latents: the RNG streams stay in
  lockstep) and trains on its fixed slice :meth:`Replicas.part` of it: no image is seen twice, none is skipped,
  and the order is the one-process order;
- each process backpropagates its mean loss times its share ``n_k / n`` of the batch, and the gradients are
  summed over the processes (:meth:`Replicas.reduce_grads`): the gradient of the global batch's mean loss. The
  learning rate, schedule and gradient clipping (on the summed gradient) are unchanged;
- BatchNorm normalises each slice by its own statistics unless ``train.sync_bn`` replaces every BatchNorm layer
  by :class:`SyncBatchNorm` (statistics of the global batch, as one process computes them);
- the non-finite-loss check reads the summed loss, so every process raises ``TrainingDiverged`` at the same step.

Results agree with one process up to the order of floating-point sums (the tests bound the difference).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from raynas.errors import ConfigError


def _group_ready() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


class Replicas:
    """This process's place among the processes that train one network: ``rank`` of ``size``.

    ``Replicas()`` is one process: every method is then a no-op or the identity."""

    def __init__(self, rank: int = 0, size: int = 1) -> None:
        if not 0 <= rank < size:
            raise ValueError(f"rank {rank} outside 0..{size - 1}")
        self.rank, self.size = int(rank), int(size)

    @classmethod
    def current(cls) -> Replicas:
        """The initialised default process group (Ray Train's), else one process."""
        if not _group_ready():
            return cls()
        import torch.distributed as dist

        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def parallel(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that scores, writes rows, samples and checkpoints."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Replicas(rank={self.rank}, size={self.size})"

    # ------------------------------------------------------------------ sharding
    def bounds(self, n: int) -> tuple[int, int]:
        """``[start, stop)`` of this process's slice of ``n`` items: contiguous slices in rank order, sizes
        differing by at most one (the first ``n % size`` ranks take one more)."""
        base, extra = divmod(int(n), self.size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)

    def share(self, n: int) -> float:
        """This process's fraction of a batch of ``n``: the weight of its mean loss."""
        start, stop = self.bounds(n)
        return (stop - start) / n if n else 0.0

    def part(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This process's slice (along dim 0) of each tensor of one global batch."""
        if not self.parallel:
            return tensors
        start, stop = self.bounds(len(tensors[0]))
        return tuple(t[start:stop] for t in tensors)

    def check_batch(self, batch_size: int, key: str) -> None:
        """A global batch the processes share equally, else a ConfigError that says what to change."""
        if batch_size % self.size:
            raise ConfigError(f"{key}={batch_size} is not divisible by {self.size} workers: the global batch stays "
                              f"{key} and each worker takes an equal slice; pick a multiple of {self.size} or "
                              "another --num-workers")

    def check_last_batch(self, n: int, batch_size: int, what: str) -> None:
        """The last, smaller batch of an epoch over ``n`` items must still give every process an image."""
        last = n % batch_size
        if self.parallel and 0 < last < self.size:
            raise ConfigError(f"{what} holds {n} images: its last batch of {last} cannot be split across "
                              f"{self.size} workers; change data.limit / data.fraction or the batch size so that "
                              f"{n} % batch is 0 or at least {self.size}")

    # ------------------------------------------------------------------ collectives
    def reduce_grads(self, params: Iterable[nn.Parameter], *values: torch.Tensor) -> list[float]:
        """Sum the gradients of ``params`` over the processes in one all-reduce (gradients already weighted by
        :meth:`share`), and the scalars ``values`` with them; returns the summed ``values`` as floats.

        A parameter without a gradient here counts as zero and gets the summed gradient if any process had
        one (the layout of the reduced buffer is the same on every process)."""
        params = [p for p in params if p.requires_grad]
        if not self.parallel:
            return [float(v) for v in values]
        import torch.distributed as dist

        ref = next((p for p in params if p.grad is not None), params[0] if params else None)
        device = ref.device if ref is not None else torch.device("cpu")
        dtype = torch.float64 if any(p.dtype == torch.float64 for p in params) else torch.float32
        has = torch.tensor([p.grad is not None for p in params], dtype=dtype, device=device)
        flat = torch.cat([*(p.grad.detach().reshape(-1).to(dtype) if p.grad is not None
                            else torch.zeros(p.numel(), dtype=dtype, device=device) for p in params),
                          has, *(v.detach().reshape(1).to(device, dtype) for v in values)])
        dist.all_reduce(flat)
        numel = sum(p.numel() for p in params)
        offset = 0
        for p, any_grad in zip(params, flat[numel:numel + len(params)].tolist()):
            grad = flat[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
            if p.grad is not None:
                p.grad.copy_(grad)
            elif any_grad > 0:
                p.grad = grad.to(p.dtype).clone()
        return flat[-len(values):].tolist() if values else []

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes (epoch statistics: losses, counts)."""
        if not self.parallel:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor(list(values), dtype=torch.float64, device=_wire_device())
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, value: object) -> list:
        """Every process's ``value`` (picklable), in rank order, on every process: e.g. where each one runs."""
        if not self.parallel:
            return [value]
        import torch.distributed as dist

        values: list = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def broadcast(self, tensors: Iterable[torch.Tensor], src: int = 0) -> None:
        """Overwrite ``tensors`` in place with rank ``src``'s (one flat broadcast per dtype)."""
        if not self.parallel:
            return
        import torch.distributed as dist

        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for dtype, group in by_dtype.items():
            wire = torch.uint8 if dtype == torch.bool else dtype
            flat = torch.cat([t.detach().reshape(-1).to(_wire_device(), wire) for t in group])
            dist.broadcast(flat, src)
            offset = 0
            for t in group:
                with torch.no_grad():
                    t.copy_(flat[offset:offset + t.numel()].view_as(t).to(dtype))
                offset += t.numel()

    def broadcast_module(self, module: nn.Module, src: int = 0) -> None:
        """Rank ``src``'s parameters and buffers everywhere (the same start even if seeding differed)."""
        self.broadcast([*module.parameters(), *module.buffers()], src)

    def broadcast_rng(self, src: int = 0) -> None:
        """Rank ``src``'s global CPU (and CUDA) RNG state everywhere: after rank 0 alone scored or drew samples,
        every process draws the same next global batch again."""
        if not self.parallel:
            return
        state = torch.get_rng_state()
        self.broadcast([state], src)
        torch.set_rng_state(state)
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            cuda = torch.cuda.get_rng_state()
            self.broadcast([cuda], src)
            torch.cuda.set_rng_state(cuda)


SINGLE = Replicas()


def _wire_device() -> torch.device:
    """Where a collective's tensor must live: the current GPU under NCCL, else the CPU (gloo)."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ---------------------------------------------------------------------------------------- BatchNorm
class _AllReduceSum(torch.autograd.Function):
    """A sum over the processes that backpropagates: the gradient of every process's input is the sum of the
    output gradients of all processes (each process's loss depends on every process's input)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd's signature
        import torch.distributed as dist

        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        import torch.distributed as dist

        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch of all processes, on CPU (gloo) as on GPU: the batch mean and variance
    come from sums over every process's slice, in one differentiable all-reduce a layer (so the backward pass
    sums the statistics' gradients too, one more), what one process computes on the whole batch. The sums are
    taken around the running mean, the same on every process, so the variance keeps its digits. Outside
    training, or in one process, it is plain BatchNorm. (``torch.nn.SyncBatchNorm`` runs on GPUs only.)"""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _group_ready()):
            return super().forward(x)
        import torch.distributed as dist

        if dist.get_world_size() == 1:
            return super().forward(x)
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, channels] + [1] * (x.dim() - 2)
        xf = x if x.dtype in (torch.float32, torch.float64) else x.float()  # bf16 autocast: statistics in fp32
        pivot = (self.running_mean.detach().to(xf.dtype) if self.running_mean is not None
                 else xf.new_zeros(channels))
        d = xf - pivot.view(shape)
        count = xf.new_tensor([x.numel() // max(1, channels)])
        totals = _AllReduceSum.apply(torch.cat([d.sum(dims), d.pow(2).sum(dims), count]))
        n = totals[-1]
        shift = totals[:channels] / n
        var = (totals[channels:2 * channels] / n - shift * shift).clamp(min=0)
        mean = pivot + shift
        centred = xf - mean.view(shape)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                unbiased = var * (n / (n - 1).clamp(min=1))
                self.running_mean.mul_(1 - momentum).add_(mean.to(self.running_mean.dtype), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.to(self.running_var.dtype), alpha=momentum)
        return out.to(x.dtype)


def convert_sync_bn(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm layer replaced by :class:`SyncBatchNorm` (same weights and statistics);
    a BatchNorm ``module`` itself is returned replaced."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        new = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
        with torch.no_grad():
            if module.affine:
                new.weight, new.bias = module.weight, module.bias
            if module.track_running_stats:
                new.running_mean, new.running_var = module.running_mean, module.running_var
                new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        converted = convert_sync_bn(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
