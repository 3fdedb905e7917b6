"""vmae2_mm: VideoMAE V2 on the OpenMMLab video stack.

``import vmae2_mm`` applies the stack compatibility fixes and registers every component in
mmaction2's registries (and mmdet's where a detector needs them). Configs pull it in with
``custom_imports = dict(imports=['vmae2_mm'], allow_failed_imports=False)``.
"""
from .utils.compat import apply_compat_patches

apply_compat_patches()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
