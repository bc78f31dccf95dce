"""Where everything that registers itself (methods, spaces, networks, figures) gets imported."""


def load_plugins() -> None:
    """placeholder until the plugin loader lands"""
