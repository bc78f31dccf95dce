"""Named evaluation protocols, so that every number in a results table says how it was measured.

A protocol fixes the sample count and the IS/KID split settings. ``search`` is the cheap proxy used to
rank candidates during architecture search; ``paper`` is the 50k-sample protocol of the GAN literature
(IS with 10 splits, FID against the real statistics); ``quick`` exists for CPU quickstarts and tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from raynas.errors import MetricsError


@dataclass(frozen=True)
class Protocol:
    """How many samples to draw and how to split them for IS and KID."""

    name: str
    num_samples: int
    isc_splits: int
    kid_subsets: int
    kid_subset_size: int
    description: str = ""


PROTOCOLS: dict[str, Protocol] = {
    "search": Protocol("search", num_samples=5_000, isc_splits=10, kid_subsets=100, kid_subset_size=1000,
                       description="fast proxy for ranking candidates during search"),
    "paper": Protocol("paper", num_samples=50_000, isc_splits=10, kid_subsets=100, kid_subset_size=1000,
                      description="the 50k-sample protocol used to report final numbers"),
    # One IS split: 1,000 samples cut into 10 splits of 100 bias IS low; a single split is the less
    # biased estimate (its std is then 0). KID subsets of 500 keep some spread between subsets.
    "quick": Protocol("quick", num_samples=1_000, isc_splits=1, kid_subsets=50, kid_subset_size=500,
                      description="CPU quickstart and smoke tests; not comparable to published numbers"),
}


def get_protocol(name: str | Protocol) -> Protocol:
    """Look a protocol up by name; a ``Protocol`` instance passes through."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise MetricsError(f"unknown metrics protocol {name!r}; valid protocols: "
                           f"{', '.join(PROTOCOLS)}") from None
