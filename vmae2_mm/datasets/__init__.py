from .bad_samples import BadSampleError, BadSampleHook
from .recognition_video_dataset import (BadVideoError, RecognitionVideoDataset,
                                        VideoDatasetChecked)
from . import transforms  # noqa: F401  (registration)
from .pretrain_dataset import UnlabeledHybridDataset
from .tad_feature_dataset import (FineActionFeatureDataset, TADFeatureDataset,
                                  Thumos14FeatureDataset)
from .model_checks import DatasetModelCheckHook

__all__ = ['TADFeatureDataset', 'Thumos14FeatureDataset', 'FineActionFeatureDataset',
           'RecognitionVideoDataset', 'VideoDatasetChecked', 'BadVideoError', 'BadSampleError',
           'BadSampleHook', 'DatasetModelCheckHook', 'UnlabeledHybridDataset']
from .ava_keyframe_dataset import (AVADatasetChecked, AVAKeyframeDataset,  # noqa: F401,E402
                                   AVAKineticsDatasetChecked, AVAKineticsKeyframeDataset,
                                   BadAVASampleError)
