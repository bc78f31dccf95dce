"""raynas: Ray-based neural architecture search for GANs and image classifiers."""

__version__ = "0.1.0"
