"""Spatio-temporal action detection: make the stack's AVA detector parts available.

The AVA detector configs use mmdet's ``FastRCNN`` with mmaction2's ``AVARoIHead``,
``SingleRoIExtractor3D``, ``BBoxHeadAVA`` and ``MaxIoUAssignerAVA``. mmaction2 registers those
into **mmdet's** registries inside ``try/except ImportError: pass`` and only when
``mmaction.models`` is imported, so without mmcv's compiled ops they vanish silently and the
config fails far away with "AVARoIHead is not in the registry".
:func:`check_ava_detector_cfg` is called where a model is built from a config (``tools/train.py``,
``tools/test.py``, the inference APIs): for a detector config it imports the parts and turns a
missing piece into an error that names the cause (e.g. mmcv without compiled ops), before
anything else is built; other configs do not need mmcv ops and are not checked.
"""
import importlib
from typing import Any

from .patch_pad_data_preprocessor import PatchPadDataPreprocessor


def check_ava_detector_registered() -> None:
    """Raise ImportError naming what is missing if the AVA detector parts did not register."""
    try:
        import mmcv.ops  # noqa: F401  (RoIAlign CPU/CUDA kernels)
    except (ImportError, OSError) as e:
        raise ImportError('AVA detection needs mmcv with compiled ops (mmcv._ext), e.g. '
                          '`MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0`; '
                          f'mmcv.ops failed to import: {e}') from e
    importlib.import_module('mmdet.models')
    importlib.import_module('mmaction.models')
    from mmdet.registry import MODELS, TASK_UTILS
    missing = [name for name in ('FastRCNN', 'AVARoIHead', 'SingleRoIExtractor3D',
                                 'BBoxHeadAVA') if MODELS.get(name) is None]
    missing += [name for name in ('MaxIoUAssignerAVA', 'RandomSampler')
                if TASK_UTILS.get(name) is None]
    if missing:
        raise ImportError(f'AVA detector parts not registered in mmdet: {missing}; '
                          'mmaction.models.roi_heads failed to import (check mmcv ops and '
                          'mmdet versions)')


#: config ``type`` names that need the AVA detector parts
AVA_DETECTOR_TYPES = frozenset({'FastRCNN', 'AVARoIHead', 'SingleRoIExtractor3D', 'BBoxHeadAVA',
                                'MaxIoUAssignerAVA'})


def _types(node: Any):
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield node['type'].split('.')[-1]
        for value in node.values():
            yield from _types(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _types(value)


def check_ava_detector_cfg(model_cfg: Any) -> bool:
    """For a model config that uses the AVA detector parts, check they are registered (raises
    ImportError with the cause, see :func:`check_ava_detector_registered`); returns whether the
    config is such a detector."""
    if not AVA_DETECTOR_TYPES & set(_types(model_cfg)):
        return False
    check_ava_detector_registered()
    return True


__all__ = ['check_ava_detector_registered', 'check_ava_detector_cfg', 'AVA_DETECTOR_TYPES',
           'PatchPadDataPreprocessor']
