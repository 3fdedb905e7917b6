"""Workarounds for the pinned stack (mmaction2 1.2.0, mmengine 0.10.7, torch 2.13, numpy 2).

Every fix is a small named function, guarded by a feature check so that it acts only while the
upstream problem exists, logs one line when it acts, and can be deleted when upstream is fixed.
:func:`apply_compat_patches` applies them all; it is idempotent and runs on ``import vmae2_mm``.
Each fix has a test in ``tests/unit/utils/test_compat.py`` that fails without it.
"""
import importlib
import importlib.machinery
import importlib.util
import logging
import pickle
import sys
import types

import numpy as np
import torch

logger = logging.getLogger('vmae2_mm.compat')

_applied = False


def _log(msg: str) -> None:
    logger.info('[vmae2_mm.compat] %s', msg)


def stub_missing_mmaction_drn() -> bool:
    """Provide ``mmaction.models.localizers.drn`` when the installed wheel lacks it.

    mmaction2 1.2.0's wheel omits ``localizers/drn`` (no ``__init__.py``, so ``find_packages``
    skips it) while ``localizers/__init__.py`` imports ``DRN`` from it, so ``import
    mmaction.models`` fails (open-mmlab/mmaction2#2714, fix PR #2721 unmerged). The stub
    defines a ``DRN`` that raises when built. Remove once a fixed mmaction2 release is pinned.

    Returns:
        bool: True if the stub was installed.
    """
    name = 'mmaction.models.localizers.drn'
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    import os
    root = spec.submodule_search_locations[0]
    if os.path.exists(os.path.join(root, 'models', 'localizers', 'drn', '__init__.py')):
        return False

    class DRN:  # noqa: D401 - placeholder with a clear error
        """Placeholder: the mmaction2 1.2.0 wheel does not ship DRN."""

        def __init__(self, *args, **kwargs):
            raise ImportError('mmaction2 1.2.0 from PyPI does not ship the DRN localizer '
                              '(open-mmlab/mmaction2#2714); vmae2_mm installed a stub.')

    pkg = types.ModuleType(name)
    pkg.__path__ = []  # a package, so `from .drn import DRN` resolves the submodule below
    pkg.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    sub = types.ModuleType(name + '.drn')
    sub.__spec__ = importlib.machinery.ModuleSpec(name + '.drn', None)
    sub.DRN = DRN
    pkg.DRN = DRN
    pkg.drn = sub
    sys.modules[name] = pkg
    sys.modules[name + '.drn'] = sub
    _log('stubbed mmaction.models.localizers.drn (missing from the mmaction2 1.2.0 wheel)')
    return True


def alias_importlib_metadata() -> bool:
    """Alias the stdlib ``importlib.metadata`` as ``importlib_metadata`` when it is missing.

    ``mmaction/utils/dependency.py`` imports the backport ``importlib_metadata``, which the
    mmaction2 1.2.0 wheel does not declare. We also declare it in ``requirements/runtime.txt``;
    this alias keeps ``import mmaction.models`` working in environments installed without it.
    Remove when mmaction2 declares the dependency.

    Returns:
        bool: True if the alias was installed.
    """
    if 'importlib_metadata' in sys.modules:
        return False
    try:
        importlib.import_module('importlib_metadata')
        return False
    except ModuleNotFoundError:
        import importlib.metadata as stdlib_metadata
        sys.modules['importlib_metadata'] = stdlib_metadata
        _log('aliased importlib_metadata -> importlib.metadata (undeclared mmaction2 dependency)')
        return True


def _history_buffer_getattr(obj, name: str):
    """``getattr`` as mmengine's ``HistoryBuffer`` pickles its statistics methods, and only that.

    ``HistoryBuffer.__getstate__`` keeps ``statistics_methods`` ({name: function}), which pickle
    as ``getattr(HistoryBuffer, 'min')``; a general ``builtins.getattr`` would let a pickle reach
    any attribute of an allow-listed object.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    # default statistics, plus any registered with HistoryBuffer.register_statistics
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'weights-only load: getattr({obj!r}, {name!r}) is not allowed '
                                 '(only HistoryBuffer statistics methods)')


def torch_load_safe_globals() -> bool:
    """Let ``torch.load(weights_only=True)`` (torch >= 2.6's default) read mmengine checkpoints.

    mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; Runner checkpoints hold
    ``HistoryBuffer`` objects (with their statistics methods) and numpy scalars / arrays /
    dtypes in ``message_hub`` and ``meta``, so resume and ``tools/test.py`` fail with
    "Unsupported global" (open-mmlab/mmengine#1655). Instead of turning ``weights_only`` off for
    the process, exactly these globals are allow-listed; any other global in a pickle (code a
    ``__reduce__`` would run) is still refused. Remove once an mmengine release with #1670 is
    pinned.

    Returns:
        bool: True if the allow-list was registered.
    """
    from packaging.version import Version
    if Version(torch.__version__.split('+')[0]) < Version('2.6'):
        return False
    import collections

    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.logging.message_hub import MessageHub
    try:
        from numpy._core.multiarray import _reconstruct, scalar
        prefix = 'numpy._core.multiarray'
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
        prefix = 'numpy.core.multiarray'
    dtype_classes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith('DType')]
    torch.serialization.add_safe_globals([
        HistoryBuffer, MessageHub, collections.OrderedDict, collections.defaultdict, bytes,
        np.ndarray, np.dtype, *dtype_classes,
        (_reconstruct, f'{prefix}._reconstruct'), (scalar, f'{prefix}.scalar'),
        (_history_buffer_getattr, 'builtins.getattr'),
        (_history_buffer_getattr, '__builtin__.getattr'),
    ])
    _log('torch.load (weights_only) accepts mmengine checkpoints: HistoryBuffer, numpy '
         'scalars/arrays/dtypes allow-listed')
    return True


def numpy2_removed_aliases() -> bool:
    """Restore ``np.NAN`` (removed in numpy 2), used by mmaction2's AVA evaluation code.

    ``mmaction/evaluation/functional/ava_evaluation/metrics.py`` returns ``np.NAN`` for a
    class with detections but no ground truth; under numpy 2 that raises AttributeError.
    Remove when mmaction2 uses ``np.nan``.

    Returns:
        bool: True if an alias was added.
    """
    added = False
    for alias, value in (('NAN', np.nan), ('Inf', np.inf)):
        if not hasattr(np, alias):
            setattr(np, alias, value)
            added = True
    if added:
        _log('restored numpy 2 removed aliases np.NAN / np.Inf used by mmaction2')
    return added


def disable_mmaction_multimodal_without_timm() -> bool:
    """Keep mmaction2's VindLU models unregistered when their undeclared ``timm`` is missing.

    ``mmaction.models.multimodal`` imports VindLU whenever ``transformers>=4.28`` is installed
    (we install it as the HF VideoMAE reference), and VindLU imports ``timm``, which mmaction2
    does not declare and which would pull a torchvision that cannot import beside the CPU torch.
    Without this, ``import mmaction.models`` fails with ``No module named 'timm'``. With it,
    mmaction2 registers its usual VindLU placeholders. Remove when mmaction2 declares timm or
    guards the import.

    Returns:
        bool: True if multimodal models were disabled.
    """
    if 'mmaction.models.multimodal' in sys.modules:
        return False
    if importlib.util.find_spec('timm') is not None:
        return False
    dependency = importlib.import_module('mmaction.utils.dependency')
    if not dependency.WITH_MULTIMODAL:
        return False
    dependency.WITH_MULTIMODAL = False
    _log('disabled mmaction2 multimodal (VindLU) models: transformers is installed but timm '
         'is not')
    return True


def apply_compat_patches() -> None:
    """Apply every workaround once (idempotent). Called on ``import vmae2_mm``."""
    global _applied
    if _applied:
        return
    alias_importlib_metadata()
    stub_missing_mmaction_drn()
    disable_mmaction_multimodal_without_timm()
    torch_load_safe_globals()
    numpy2_removed_aliases()
    _applied = True
