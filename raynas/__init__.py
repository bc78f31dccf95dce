"""raynas: Ray-based neural architecture search for GANs and image classifiers."""

__version__ = "0.1.0"

import raynas.methods  # noqa: E402,F401  (registers every method's config section before any config is read)
