from .masking import FrameMasking, RandomMasking, RunningCellMasking, TubeMasking
from .rand_augment import VideoRandAugment
from .tad_feature_standardize import StandardizeTADFeatures
from .tad_transforms import (DropOutsideTADSegments, LoadTADFeatures, PackTADInputs,
                             RandomTruncateTADFeatures, ResizeTADFeatures)

__all__ = [
    'LoadTADFeatures', 'ResizeTADFeatures', 'DropOutsideTADSegments', 'RandomTruncateTADFeatures',
    'PackTADInputs', 'StandardizeTADFeatures',
    'TubeMasking', 'RunningCellMasking', 'RandomMasking', 'FrameMasking',
    'VideoRandAugment',
]
