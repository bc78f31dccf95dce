"""raynas' version, in a leaf module: run provenance records it without importing the ``raynas`` package's
``__init__`` (which configures the process); ``raynas.__version__`` re-exports it."""

__version__ = "0.1.0"
