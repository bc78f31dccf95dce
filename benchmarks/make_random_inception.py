"""Write a Kaiming-initialised torch-fidelity Inception state dict (for throughput runs offline).

Timing does not depend on weight values, so machines without the real Inception weights (no network)
can still measure metric throughput. Never use this file for reported IS/FID numbers.

    python benchmarks/make_random_inception.py /tmp/random-inception.pth
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from raynas.metrics.extractors import build_inception_skeleton


def main(path: str) -> None:
    torch.manual_seed(0)
    net = build_inception_skeleton("cpu")
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    torch.save(net.state_dict(), path)
    print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "random-inception.pth")
