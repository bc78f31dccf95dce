"""Take a network away: ``raynas.model`` (a ``torch.nn.Module`` from a genotype or a run), ``raynas export``
(a ``torch.export`` program, an ONNX file or a plain state dict), ``raynas sample`` (images from a GAN run),
the model card that goes with each, and the EMA generator of a checkpoint for ``raynas metrics checkpoint:PATH``
(``api.load_generator``).

This package is torch-free at import: the torch parts live in ``api``, ``formats``, ``card`` and ``sample``,
imported when used. Methods tell it which files a finished search leaves (``register_run_outputs``, called by
the method registry), so no method is named here.
"""

from __future__ import annotations

FORMATS = ("pt2", "onnx", "state_dict")  # what ``raynas export`` writes (raynas.export.formats)
_RUN_OUTPUTS: dict[str, tuple[str, ...]] = {}


def register_run_outputs(method: str, files: tuple[str, ...]) -> None:
    """What a finished ``method`` search leaves in its run directory, the network it found first (e.g.
    ``best_G.json`` before ``alpha.json``): ``raynas.model(RUN)`` builds the first genotype file that fits."""
    _RUN_OUTPUTS[method] = tuple(files)


def run_outputs(method: str) -> tuple[str, ...]:
    """The files ``method``'s searches leave (empty for a method that registered none)."""
    if method not in _RUN_OUTPUTS:
        from raynas.plugins import load_plugins

        load_plugins()
    return _RUN_OUTPUTS.get(method, ())
