from .decoder import DECODER_SETTINGS, VideoMAEv2Decoder
from .targets import masked_mse, patchify, pixel_targets
from .videomaev2_pretrainer import VideoMAEv2Pretrainer

__all__ = ['VideoMAEv2Pretrainer', 'VideoMAEv2Decoder', 'DECODER_SETTINGS', 'patchify',
           'pixel_targets', 'masked_mse']
