"""Write a network as a ``torch.export`` program (``pt2``), an ONNX file or a plain state dict, and check what was
written: the exported program, run on a seeded random batch of another size than it was traced with, must give
the eager network's output within ``TOLERANCES`` (a state dict, reloaded into the network, exactly).

The exported programs are of the network in eval mode (BN running statistics, no dropout/drop-path, spectral
norm without power iterations), with a dynamic batch dimension. A classifier's program returns its logits only
(the auxiliary head is a training-time output). A ``pt2`` file loads in plain PyTorch without raynas:
``torch.export.load(path).module()(x)``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raynas.errors import ConfigError, ExportError
from raynas.export import FORMATS
from raynas.export.api import Network

__all__ = ["FORMATS", "TOLERANCES", "ExportCheck", "export_network"]
#: (rtol, atol) of the self-check, per format: float32 programs may reorder sums (pt2 decomposes ops, ONNX
#: runtimes pick other kernels); a saved state dict reloads bit for bit.
TOLERANCES = {"pt2": (1e-4, 1e-5), "onnx": (1e-3, 1e-4), "state_dict": (0.0, 0.0)}
MAX_BATCH = 4096
CHECK_BATCH = 3  # the check runs a batch of another size than the one traced (2): the batch really is dynamic
ONNX_PACKAGES = ("onnx", "onnxscript")


@dataclasses.dataclass(frozen=True)
class ExportCheck:
    """What the self-check found: the largest absolute difference to the eager output, and the tolerance."""

    format: str
    path: Path
    max_abs_diff: float
    max_abs_output: float  # the scale the difference is measured against (rtol applies to it)
    rtol: float
    atol: float
    batch: int
    runtime: str  # what ran the exported file

    def message(self) -> str:
        return (f"checked: the {self.format} output on a random batch of {self.batch} ({self.runtime}) equals the "
                f"eager network's (max |diff| {self.max_abs_diff:.3g} on outputs up to {self.max_abs_output:.3g}; "
                f"tolerance rtol {self.rtol:g}, atol {self.atol:g})")


class Logits(nn.Module):
    """The exported face of a network: a classifier's ``(logits, aux)`` becomes its logits."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.network(x)
        return y[0] if isinstance(y, tuple) else y


class FixedNoise(nn.Module):
    """A StyleGAN2 generator with its per-pixel noise inputs fixed (drawn once from a seed, stored as buffers) and
    its modulated convs in their unfused form (no group count that depends on the batch): an exported program
    is a function of z alone for any batch, and the export's check compares like with like."""

    def __init__(self, generator: nn.Module, seed: int = 0):
        super().__init__()
        self.generator = copy.deepcopy(generator)
        for m in self.generator.modules():  # the batch-free form of the modulated convs (same function)
            if hasattr(m, "fused"):
                m.fused = False
        gen = torch.Generator().manual_seed(seed)
        sides = [4] + [4 * 2 ** (1 + k // 2) for k in range(generator.num_noises - 1)]  # conv0, then 2 per size
        for k, side in enumerate(sides):
            self.register_buffer(f"noise{k}", torch.randn(1, 1, side, side, generator=gen))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z, noise=[getattr(self, f"noise{k}") for k in range(self.generator.num_noises)])


def exportable(net: Network) -> Network:
    """The network an exported program holds: a StyleGAN2 generator with fixed noise, anything else as it is."""
    if hasattr(net.module, "num_noises") and not isinstance(net.module, FixedNoise):
        return dataclasses.replace(net, module=FixedNoise(net.module).eval())
    return net


def eager_output(net: Network, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return Logits(net.module).eval()(x)


def export_network(net: Network, fmt: str, out: str | Path) -> ExportCheck:
    """Write ``net`` to ``out`` in format ``fmt`` and check the file against the eager network."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file path, e.g. {out / ('model.' + fmt.replace('_', '.'))}")
    if fmt == "onnx":
        missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
        if missing:
            raise ExportError(f"ONNX export needs the {' and '.join(missing)} package(s); install them with "
                              "pip install 'raynas[export]' (or pip install onnx onnxscript), or export --format pt2")
    net.module.eval()
    if fmt != "state_dict":
        net = exportable(net)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return {"pt2": _pt2, "onnx": _onnx, "state_dict": _state_dict}[fmt](net, out)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror or exc}); give a path in a folder you "
                          "can write to") from None


def batch_multiple(net: Network) -> int:
    """The batch sizes an exported program takes are multiples of this: a StyleGAN2 D's minibatch-std group."""
    return int(getattr(net.module, "stddev_group", 1))


def check_batch(net: Network) -> int:
    return CHECK_BATCH * batch_multiple(net)


def _traced(net: Network) -> tuple[nn.Module, torch.Tensor, Any]:
    k = batch_multiple(net)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH // k)
    dynamic = ({0: batch if k == 1 else k * batch},)
    return Logits(net.module).eval(), net.example_input(2 * k, seed=0), dynamic


def _export_program(net: Network) -> torch.export.ExportedProgram:
    module, x, dynamic = _traced(net)
    try:
        with torch.no_grad():
            return torch.export.export(module, (x,), dynamic_shapes=dynamic)
    except Exception as exc:  # an op torch.export cannot trace: a limitation of this network, said once
        raise ExportError(f"torch.export cannot trace this {net.family} {net.kind}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from None


def _compare(fmt: str, out: Path, expected: torch.Tensor, got: Any, runtime: str) -> ExportCheck:
    got = torch.as_tensor(got).to(expected.dtype)
    rtol, atol = TOLERANCES[fmt]
    diff = float((got - expected).abs().max()) if got.shape == expected.shape else float("inf")
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=rtol, atol=atol):
        raise ExportError(f"the exported {fmt} file {out} computes something else than the network (output shape "
                          f"{tuple(got.shape)} vs {tuple(expected.shape)}, max |diff| {diff:.3g} > atol {atol:g} + "
                          f"rtol {rtol:g}); it was written, but do not use it")
    return ExportCheck(fmt, out, diff, float(expected.abs().max()), rtol, atol, expected.shape[0], runtime)


def _pt2(net: Network, out: Path) -> ExportCheck:
    program = _export_program(net)
    torch.export.save(program, str(out))
    x = net.example_input(check_batch(net), seed=1)
    loaded = torch.export.load(str(out)).module()
    with torch.no_grad():
        got = loaded(x)
    return _compare("pt2", out, eager_output(net, x), got, "torch.export.load")


def _onnx(net: Network, out: Path) -> ExportCheck:
    import onnx

    module, x, dynamic = _traced(net)
    try:  # the exporter prints its progress: keep the command's output to raynas' own lines
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(module, (x,), str(out), dynamo=True, dynamic_shapes=dynamic, input_names=["input"],
                              output_names=["output"], verbose=False, external_data=False)
    except OSError:
        raise
    except Exception as exc:
        raise ExportError(f"torch's ONNX exporter cannot convert this {net.family} {net.kind}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from None
    onnx.checker.check_model(str(out))
    x = net.example_input(check_batch(net), seed=1)
    feed = x.detach().cpu().numpy()
    runtime = "onnxruntime" if importlib.util.find_spec("onnxruntime") is not None else "onnx.reference"
    try:
        if runtime == "onnxruntime":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            got = session.run(None, {"input": feed})[0]
        else:
            from onnx.reference import ReferenceEvaluator

            got = ReferenceEvaluator(str(out)).run(None, {"input": feed})[0]
    except Exception as exc:  # the file converted but does not run: a limitation of this network in ONNX
        raise ExportError(f"the exported ONNX file {out} of this {net.family} {net.kind} does not run in {runtime} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); it was "
                          "written, but do not use it; export --format pt2 instead") from None
    return _compare("onnx", out, eager_output(net, x), torch.from_numpy(got), runtime)


def _state_dict(net: Network, out: Path) -> ExportCheck:
    state = {k: v.detach().cpu() for k, v in net.module.state_dict().items()}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    torch.save(state, str(tmp))
    os.replace(tmp, out)
    clone = copy.deepcopy(net.module)
    with torch.no_grad():
        for v in clone.state_dict().values():
            v.zero_()  # nothing of the original survives unless the file brings it back
    clone.load_state_dict(torch.load(str(out), weights_only=True), strict=True)
    x = net.example_input(check_batch(net), seed=1)
    return _compare("state_dict", out, eager_output(net, x), eager_output(dataclasses.replace(net, module=clone), x),
                    "torch.load + load_state_dict")
