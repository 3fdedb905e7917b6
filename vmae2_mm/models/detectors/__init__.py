"""Spatio-temporal action detection: make the stack's AVA detector parts available.

The AVA detector configs use mmdet's ``FastRCNN`` with mmaction2's ``AVARoIHead``,
``SingleRoIExtractor3D``, ``BBoxHeadAVA`` and ``MaxIoUAssignerAVA``. mmaction2 registers those
into **mmdet's** registries inside ``try/except ImportError: pass`` and only when
``mmaction.models`` is imported, so without mmcv's compiled ops they vanish silently and the
config fails far away with "AVARoIHead is not in the registry". Importing them here, on
``import vmae2_mm``, registers them up front; :func:`check_ava_detector_registered` turns a
missing piece into an error that names the cause.
"""
import importlib
import logging

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


try:
    check_ava_detector_registered()
    AVA_DETECTOR_ERROR = None
except ImportError as err:  # recognition/TAD stay usable without mmcv ops
    AVA_DETECTOR_ERROR = err
    logging.getLogger('vmae2_mm').warning('AVA detection unavailable: %s', err)

__all__ = ['check_ava_detector_registered', 'AVA_DETECTOR_ERROR', 'PatchPadDataPreprocessor']
