"""High-level entry points used by ``tools/`` (no registration side effects)."""
from .feature_extraction import (ClipFeatureExtractor, TooShortVideoError,
                                 build_extractor_from_config, extract_videos, list_videos)

__all__ = ['ClipFeatureExtractor', 'TooShortVideoError', 'build_extractor_from_config',
           'extract_videos', 'list_videos']
