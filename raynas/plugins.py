"""Loading the packages that register methods, spaces, figures and result columns."""

from __future__ import annotations


def load_plugins() -> None:
    """placeholder until the plugin loader lands"""
