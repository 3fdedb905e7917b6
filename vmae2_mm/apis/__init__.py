"""High-level entry points used by ``tools/`` (no registration side effects)."""
from .feature_extraction import (ClipFeatureExtractor, TooShortVideoError,
                                 build_extractor_from_config, extract_videos, list_videos)
from .inference_recognizer import VideoTooShortError, WindowRecognizer, build_recognizer
from .inference_recognizer import infer_video as infer_recognizer_video
from .inference_localizer import VideoLocalizer, build_localizer, localize_videos

__all__ = ['ClipFeatureExtractor', 'TooShortVideoError', 'build_extractor_from_config',
           'extract_videos', 'list_videos', 'VideoTooShortError', 'WindowRecognizer',
           'build_recognizer', 'infer_recognizer_video', 'VideoLocalizer', 'build_localizer',
           'localize_videos']
