from . import backbones, heads  # noqa: F401  (registration)
