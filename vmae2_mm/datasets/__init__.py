from .video_dataset_checked import BadVideoError, VideoDatasetChecked
from . import transforms  # noqa: F401  (registration)
from .pretrain_dataset import UnlabeledHybridDataset
from .tad_feature_dataset import (FineActionFeatureDataset, TADFeatureDataset,
                                  Thumos14FeatureDataset)

__all__ = ['TADFeatureDataset', 'Thumos14FeatureDataset', 'FineActionFeatureDataset',
           'VideoDatasetChecked', 'BadVideoError', 'UnlabeledHybridDataset']
from .ava_dataset import (AVADatasetChecked, AVAKineticsDatasetChecked,  # noqa: F401,E402
                          BadAVASampleError)
