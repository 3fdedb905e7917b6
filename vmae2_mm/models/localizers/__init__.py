from .actionformer import ActionFormer
from .actionformer_backbone import ActionFormerBackbone
from .fpn_identity import FPNIdentity
from .point_generator import TemporalPointGenerator
from .soft_nms import batched_soft_nms_1d, segment_voting, soft_nms_1d
from .tad_preprocessor import TADDataPreprocessor

__all__ = ['ActionFormer', 'ActionFormerBackbone', 'FPNIdentity', 'TemporalPointGenerator',
           'TADDataPreprocessor', 'soft_nms_1d', 'batched_soft_nms_1d', 'segment_voting']
